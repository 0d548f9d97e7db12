/*-------------------------------------------------------------------------
 *
 * event_stream.h
 *	  An append-only byte log that spills to a temporary file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMISSIONS_EVENT_STREAM_H
#define EMISSIONS_EVENT_STREAM_H

#include "storage/buffile.h"

/*
 * Bytes [0, mem_base) live in the file, bytes [mem_base, mem_base + mem_len)
 * in memory.  Offsets are positions in the log, never in the file or in the
 * memory block.
 */
typedef struct EventStream
{
	MemoryContext cxt;			/* owns mem and the BufFile */
	char	   *mem;
	Size		mem_len;
	Size		mem_cap;
	uint64		mem_base;
	BufFile    *file;			/* NULL until the first spill */
	uint64		spilled_bytes;	/* bytes ever written to the file */
	uint64		file_size;		/* bytes the file holds, buffered or not */
} EventStream;

extern void emissions_event_stream_init(EventStream *stream, MemoryContext cxt);
extern void emissions_event_stream_append(EventStream *stream, const void *const *parts,
										  const Size *lens, int nparts, Size limit);
extern void emissions_event_stream_read(EventStream *stream, uint64 offset, void *dst,
										Size len);
extern void emissions_event_stream_truncate(EventStream *stream, uint64 end);
extern void emissions_event_stream_close(EventStream *stream);

static inline uint64
event_stream_end(const EventStream *stream)
{
	return stream->mem_base + stream->mem_len;
}

#endif							/* EMISSIONS_EVENT_STREAM_H */
