/*-------------------------------------------------------------------------
 *
 * jsonb_writer.h
 *	  Writing jsonb objects in their binary form, value by value, when the
 *	  keys are known in advance.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_JSONB_WRITER_H
#define EMISSIONS_JSONB_WRITER_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* The keys of an object, in jsonb's order, ready to be copied. */
typedef struct JsonbKeys
{
	int			nkeys;
	JEntry	   *entries;		/* the keys' JEntries */
	char	   *data;			/* the keys' bytes, one after the other */
	uint32		datalen;
} JsonbKeys;

/* An object being written into a StringInfo. */
typedef struct JsonbObjectWriter
{
	StringInfo	buf;
	int			base;			/* where the object starts, padding included */
	int			entries;		/* offset of its JEntry array */
	int			npairs;
	int			nvalues;		/* values written so far */
	uint32		datalen;		/* bytes of keys and values written so far */
} JsonbObjectWriter;

extern int	emissions_jsonb_key_compare(const char *a, int alen, const char *b, int blen);
extern JsonbKeys *emissions_jsonb_keys_make(const char *const *names, int n);

extern void emissions_jsonb_begin_root(JsonbObjectWriter *w, StringInfo buf,
									   const JsonbKeys *keys);
extern Jsonb *emissions_jsonb_end_root(JsonbObjectWriter *w);
extern void emissions_jsonb_begin_nested(JsonbObjectWriter *parent,
										 JsonbObjectWriter *w, const JsonbKeys *keys);
extern void emissions_jsonb_end_nested(JsonbObjectWriter *parent, JsonbObjectWriter *w);

extern void emissions_jsonb_put_null(JsonbObjectWriter *w);
extern void emissions_jsonb_put_bool(JsonbObjectWriter *w, bool value);
extern void emissions_jsonb_put_string(JsonbObjectWriter *w, const char *s, Size len);
extern void emissions_jsonb_put_numeric(JsonbObjectWriter *w, Numeric num);
extern void emissions_jsonb_put_jsonb(JsonbObjectWriter *w, const Jsonb *jb);

#endif							/* EMISSIONS_JSONB_WRITER_H */
