/*-------------------------------------------------------------------------
 *
 * buf.c
 *	  A growable text buffer for the messages and request bodies of
 *	  emissions_relay, with JSON string quoting, and reading a whole file.
 *
 * A buffer is reused from event to event (buf_reset keeps its memory), so
 * the hot path allocates only when an event is larger than any before it.
 * Running out of memory ends the program: there is nothing sensible left
 * to do, and nothing is acknowledged that was not confirmed.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

/* Make room for n more bytes and a terminating NUL. */
static void
buf_reserve(Buf *b, size_t n)
{
	size_t		need = b->len + n + 1;

	if (need <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 1024;
	while (b->cap < need)
		b->cap *= 2;
	b->data = realloc(b->data, b->cap);
	if (b->data == NULL)
		relay_fatal("out of memory");
}

/* Empty the buffer, keeping its memory. */
void
buf_reset(Buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Release the buffer's memory. */
void
buf_free(Buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* Append n bytes of s. */
void
buf_append(Buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Append a NUL-terminated string. */
void
buf_puts(Buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/*
 * Append printf-formatted text: formatted once into the room the buffer
 * has, and again only when it did not fit.
 */
void
buf_printf(Buf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	buf_reserve(b, 64);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		relay_fatal("could not format a message");
	if ((size_t) n >= b->cap - b->len)
	{
		buf_reserve(b, (size_t) n);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t) n;
}

/* Append v in decimal. */
void
buf_put_int(Buf *b, long long v)
{
	char		digits[24];
	char	   *p = digits + sizeof(digits);
	unsigned long long u = v < 0 ? -(unsigned long long) v : (unsigned long long) v;

	do
	{
		*--p = (char) ('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		*--p = '-';
	buf_append(b, p, digits + sizeof(digits) - p);
}

/* Append s as a JSON string, quoted and escaped: plain runs at once. */
void
buf_json_string(Buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	while (*s)
	{
		size_t		run = 0;
		unsigned char c;

		while ((c = (unsigned char) s[run]) != '\0' && c >= 0x20 &&
			   c != '"' && c != '\\')
			run++;
		buf_append(b, s, run);
		s += run;
		if (*s == '\0')
			break;
		c = (unsigned char) *s++;
		if (c == '"' || c == '\\')
		{
			char		esc[2] = {'\\', (char) c};

			buf_append(b, esc, 2);
		}
		else
			buf_printf(b, "\\u%04x", c);
	}
	buf_append(b, "\"", 1);
}

/*
 * Read a whole file into a NUL-terminated string (its length in *len when
 * len is not NULL); exits with a message when it cannot be read.
 */
char *
relay_read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	Buf			b = {0};
	char		chunk[4096];
	size_t		n;

	if (f == NULL)
		relay_fatal("could not open \"%s\": %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f))
		relay_fatal("could not read \"%s\": %s", path, strerror(errno));
	fclose(f);
	buf_reserve(&b, 0);
	if (len)
		*len = b.len;
	return b.data;
}
