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
#include "jsonb_writer.h"

typedef struct RowJson RowJson;

extern RowJson *emissions_row_json_create(TupleDesc desc, List *columns,
										  MemoryContext cxt);
extern void emissions_row_json_put(RowJson *conv, TupleTableSlot *slot,
								   JsonbObjectWriter *parent);
extern Jsonb *emissions_row_json_jsonb(RowJson *conv, TupleTableSlot *slot,
									   StringInfo buf);

#endif							/* EMISSIONS_ROW_JSON_H */
