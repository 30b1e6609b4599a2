/*
 * Write buffer for encoders: pooled memory that grows by size class.
 * Writers never check each call; a failure (out of memory, or a message
 * over the cap) sticks in `failed` and the caller checks once at the end.
 */
#ifndef PGW_WBUF_H
#define PGW_WBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pgw_wbuf {
	uint8_t *data;
	size_t cap;
	size_t len;
	bool failed;
} pgw_wbuf;

#define PGW_WBUF_INIT {NULL, 0, 0, false}

/* Make room for n more bytes; false (and failed set) when impossible. */
bool pgw_wbuf_reserve(pgw_wbuf *w, size_t n);
/* Drop the first n bytes (sent); the block goes back when empty. */
void pgw_wbuf_consume(pgw_wbuf *w, size_t n);
void pgw_wbuf_release(pgw_wbuf *w);

static inline void pgw_w_bytes(pgw_wbuf *w, const void *src, size_t n)
{
	if (n == 0 || !pgw_wbuf_reserve(w, n))
		return;
	memcpy(w->data + w->len, src, n);
	w->len += n;
}

static inline void pgw_w_u8(pgw_wbuf *w, uint8_t v)
{
	if (!pgw_wbuf_reserve(w, 1))
		return;
	w->data[w->len++] = v;
}

static inline void pgw_w_i16(pgw_wbuf *w, int16_t v)
{
	if (!pgw_wbuf_reserve(w, 2))
		return;
	w->data[w->len++] = (uint8_t)((uint16_t)v >> 8);
	w->data[w->len++] = (uint8_t)v;
}

static inline void pgw_w_i32(pgw_wbuf *w, int32_t v)
{
	if (!pgw_wbuf_reserve(w, 4))
		return;
	uint32_t u = (uint32_t)v;
	w->data[w->len++] = (uint8_t)(u >> 24);
	w->data[w->len++] = (uint8_t)(u >> 16);
	w->data[w->len++] = (uint8_t)(u >> 8);
	w->data[w->len++] = (uint8_t)u;
}

/* A String: the bytes and a terminating NUL. */
static inline void pgw_w_cstr(pgw_wbuf *w, const void *s, size_t n)
{
	pgw_w_bytes(w, s, n);
	pgw_w_u8(w, 0);
}

/* A length-prefixed value; len < 0 writes NULL. */
static inline void pgw_w_value(pgw_wbuf *w, const void *v, int32_t len)
{
	pgw_w_i32(w, len < 0 ? -1 : len);
	if (len > 0)
		pgw_w_bytes(w, v, (size_t)len);
}

/*
 * Start a message: the type byte (0 for a startup packet) and a length
 * placeholder. Returns where the length lives, for pgw_w_end.
 */
size_t pgw_w_begin(pgw_wbuf *w, uint8_t type);
/* Patch the length; false when the buffer failed on the way. */
bool pgw_w_end(pgw_wbuf *w, size_t at);

#endif
