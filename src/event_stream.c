/*-------------------------------------------------------------------------
 *
 * event_stream.c
 *	  An append-only byte log that keeps its tail in memory and spills the
 *	  rest to a backend-local temporary file.
 *
 * The transaction's buffer stores its encoded events here.  Appends go to
 * memory until the memory part would pass the limit
 * (emissions.max_buffer_bytes); then the memory part is written to the end
 * of the file, as logical decoding's reorder buffer does, and memory starts
 * over.  An entry larger than the limit goes straight to the file.  Entries
 * are never split between file and memory.
 *
 * Truncation (a rolled-back savepoint) only moves the logical end: it does
 * no I/O and cannot fail, so it is safe in a subtransaction abort callback.
 * Bytes of the file past the logical end are overwritten by later spills.
 *
 * The file is created under TopTransactionResourceOwner, so a subtransaction
 * abort does not close it under us; a top-level abort closes and deletes it
 * through that resource owner, and commit closes it explicitly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "compat.h"
#include "event_stream.h"

#define STREAM_INITIAL_CAPACITY 8192

/*
 * Start an empty stream whose memory lives in cxt.
 */
void
emissions_event_stream_init(EventStream *stream, MemoryContext cxt)
{
	memset(stream, 0, sizeof(EventStream));
	stream->cxt = cxt;
}

/* Write len bytes at the logical end of the file part. */
static void
file_write(EventStream *stream, const void *data, Size len)
{
	uint64		end = stream->mem_base + len;

	/*
	 * A write that would take the file past temp_file_limit is refused here,
	 * before the BufFile sees it.  PostgreSQL refuses it too, but (seen on
	 * 18) the refused block can stay in the BufFile's buffer and be written
	 * again at the next seek, failing the commit even after a rollback to a
	 * savepoint dropped the events concerned.
	 */
	if (temp_file_limit >= 0 && end > stream->file_size &&
		end > (uint64) temp_file_limit * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("temporary file size exceeds temp_file_limit (%dkB)",
						temp_file_limit),
				 errdetail("The transaction's events would take %llu bytes of emissions' spill file.",
						   (unsigned long long) end),
				 errhint("Emit fewer events per transaction, or raise temp_file_limit.")));

	if (stream->file == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(stream->cxt);
		ResourceOwner oldowner = CurrentResourceOwner;

		CurrentResourceOwner = TopTransactionResourceOwner;
		stream->file = BufFileCreateTemp(false);
		CurrentResourceOwner = oldowner;
		MemoryContextSwitchTo(oldcxt);
	}

	if (BufFileSeek(stream->file, 0, (off_t) stream->mem_base, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in emissions spill file")));
	BufFileWrite(stream->file, (void *) data, len);

	/* Only now: an error above leaves the log as it was. */
	stream->file_size = Max(stream->file_size, end);
	stream->mem_base += len;
	stream->spilled_bytes += len;
}

/* Move the memory part to the file. */
static void
spill(EventStream *stream)
{
	file_write(stream, stream->mem, stream->mem_len);
	stream->mem_len = 0;
}

/* Make room for len more bytes in memory. */
static void
reserve(EventStream *stream, Size len)
{
	Size		need = stream->mem_len + len;
	Size		cap;

	if (need <= stream->mem_cap)
		return;

	cap = Max(stream->mem_cap, STREAM_INITIAL_CAPACITY);
	while (cap < need)
		cap *= 2;

	if (stream->mem == NULL)
		stream->mem = MemoryContextAllocHuge(stream->cxt, cap);
	else
		stream->mem = repalloc_huge(stream->mem, cap);
	stream->mem_cap = cap;
}

/*
 * Append one entry made of nparts pieces.  limit is the most memory the
 * stream may hold; the entry is kept whole in one place.
 */
void
emissions_event_stream_append(EventStream *stream, const void *const *parts,
							  const Size *lens, int nparts, Size limit)
{
	Size		total = 0;
	int			i;

	for (i = 0; i < nparts; i++)
		total += lens[i];

	if (stream->mem_len > 0 && stream->mem_len + total > limit)
		spill(stream);

	if (total > limit)
	{
		for (i = 0; i < nparts; i++)
			file_write(stream, parts[i], lens[i]);
		return;
	}

	reserve(stream, total);
	for (i = 0; i < nparts; i++)
	{
		memcpy(stream->mem + stream->mem_len, parts[i], lens[i]);
		stream->mem_len += lens[i];
	}
}

/*
 * Copy len bytes starting at log offset offset into dst.  The range must lie
 * within the log.
 */
void
emissions_event_stream_read(EventStream *stream, uint64 offset, void *dst, Size len)
{
	char	   *out = dst;

	Assert(offset + len <= event_stream_end(stream));

	if (offset < stream->mem_base)
	{
		Size		from_file = Min(len, stream->mem_base - offset);

		if (BufFileSeek(stream->file, 0, (off_t) offset, SEEK_SET) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not seek in emissions spill file")));
		BufFileReadExact(stream->file, out, from_file);
		out += from_file;
		offset += from_file;
		len -= from_file;
	}

	if (len > 0)
		memcpy(out, stream->mem + (offset - stream->mem_base), len);
}

/*
 * Cut the log back to end bytes.  Does no I/O and cannot fail.
 */
void
emissions_event_stream_truncate(EventStream *stream, uint64 end)
{
	if (end >= stream->mem_base)
		stream->mem_len = end - stream->mem_base;
	else
	{
		stream->mem_len = 0;
		stream->mem_base = end;
	}
}

/*
 * Close and delete the spill file, if any; the stream is empty afterwards.
 */
void
emissions_event_stream_close(EventStream *stream)
{
	if (stream->file != NULL)
		BufFileClose(stream->file);
	stream->file = NULL;
	stream->file_size = 0;
	stream->mem_len = 0;
	stream->mem_base = 0;
}
