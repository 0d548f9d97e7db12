/*-------------------------------------------------------------------------
 *
 * row_json.h
 *	  Table rows as JSON, as to_jsonb() renders them, without its lookups.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_ROW_JSON_H
#define EMISSIONS_ROW_JSON_H

#include "executor/tuptable.h"
#include "utils/jsonb.h"

typedef struct RowJson RowJson;

extern RowJson *row_json_create(TupleDesc desc, List *columns,
								MemoryContext cxt);
extern JsonbValue *row_json_push(RowJson *conv, TupleTableSlot *slot,
								 JsonbParseState **state);

#endif							/* EMISSIONS_ROW_JSON_H */
