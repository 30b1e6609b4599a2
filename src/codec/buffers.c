/*
 * The read and write buffers connections use, both on the buffer pool.
 */
#include "pgw/bufpool.h"
#include "pgw/rbuf.h"
#include "pgw/wbuf.h"

uint8_t *pgw_rbuf_space(pgw_rbuf *b, size_t min_free, size_t total_hint, size_t *avail)
{
	size_t live = b->tail - b->head;
	size_t want = live + min_free;
	if (total_hint > want)
		want = total_hint;

	if (b->data && b->cap - b->tail >= min_free && b->cap >= want) {
		*avail = b->cap - b->tail;
		return b->data + b->tail;
	}
	if (b->data && b->cap >= want) {
		/* Enough room once the consumed bytes are gone. */
		memmove(b->data, b->data + b->head, live);
	} else {
		size_t cap;
		uint8_t *nd = bufpool_get(want, &cap);
		if (!nd)
			return NULL;
		if (live)
			memcpy(nd, b->data + b->head, live);
		bufpool_put(b->data, b->cap);
		b->data = nd;
		b->cap = cap;
	}
	b->head = 0;
	b->tail = live;
	*avail = b->cap - b->tail;
	return b->data + b->tail;
}

void pgw_rbuf_consume(pgw_rbuf *b, size_t n)
{
	b->head += n;
	if (b->head == b->tail)
		pgw_rbuf_release(b);
}

void pgw_rbuf_release(pgw_rbuf *b)
{
	bufpool_put(b->data, b->cap);
	b->data = NULL;
	b->cap = b->head = b->tail = 0;
}

bool pgw_wbuf_reserve(pgw_wbuf *w, size_t n)
{
	if (w->failed)
		return false;
	if (w->cap - w->len >= n)
		return true;
	size_t cap;
	uint8_t *nd = bufpool_get(w->len + n, &cap);
	if (!nd) {
		w->failed = true;
		return false;
	}
	if (w->len)
		memcpy(nd, w->data, w->len);
	bufpool_put(w->data, w->cap);
	w->data = nd;
	w->cap = cap;
	return true;
}

void pgw_wbuf_consume(pgw_wbuf *w, size_t n)
{
	if (n >= w->len) {
		pgw_wbuf_release(w);
		return;
	}
	memmove(w->data, w->data + n, w->len - n);
	w->len -= n;
}

void pgw_wbuf_release(pgw_wbuf *w)
{
	bufpool_put(w->data, w->cap);
	w->data = NULL;
	w->cap = w->len = 0;
	w->failed = false;
}

size_t pgw_w_begin(pgw_wbuf *w, uint8_t type)
{
	if (type)
		pgw_w_u8(w, type);
	size_t at = w->len;
	pgw_w_i32(w, 0);
	return at;
}

bool pgw_w_end(pgw_wbuf *w, size_t at)
{
	if (w->failed)
		return false;
	size_t n = w->len - at;
	if (n > 0x7fffffffu) {
		w->failed = true;
		return false;
	}
	w->data[at] = (uint8_t)(n >> 24);
	w->data[at + 1] = (uint8_t)(n >> 16);
	w->data[at + 2] = (uint8_t)(n >> 8);
	w->data[at + 3] = (uint8_t)n;
	return true;
}
