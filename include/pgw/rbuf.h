/*
 * Read buffer for a connection: pooled, grown to fit the message being
 * read, and handed back to the pool as soon as nothing is left in it, so
 * an idle connection holds no memory.
 */
#ifndef PGW_RBUF_H
#define PGW_RBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgw_rbuf {
	uint8_t *data;
	size_t cap;
	size_t head; /* first unconsumed byte */
	size_t tail; /* end of the bytes read */
} pgw_rbuf;

#define PGW_RBUF_INIT {NULL, 0, 0, 0}

/*
 * Room to read into: at least min_free bytes (more when the block has
 * them), keeping the unconsumed bytes. total_hint, when larger than what
 * is buffered, is the size of the message being assembled, so the buffer
 * grows once to fit it. NULL when out of memory.
 */
uint8_t *pgw_rbuf_space(pgw_rbuf *b, size_t min_free, size_t total_hint, size_t *avail);
static inline void pgw_rbuf_produced(pgw_rbuf *b, size_t n)
{
	b->tail += n;
}
static inline const uint8_t *pgw_rbuf_data(const pgw_rbuf *b)
{
	return b->data + b->head;
}
static inline size_t pgw_rbuf_len(const pgw_rbuf *b)
{
	return b->tail - b->head;
}
/* Views into the consumed bytes die here. */
void pgw_rbuf_consume(pgw_rbuf *b, size_t n);
void pgw_rbuf_release(pgw_rbuf *b);

#endif
