/*
 * bufpool: power-of-two buffers with a free list per thread, so a busy
 * connection reuses memory without a malloc per read and an idle one
 * holds nothing. Blocks above the largest class come from malloc.
 */
#ifndef PGW_BUFPOOL_H
#define PGW_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#define BUFPOOL_MIN_SHIFT 9  /* 512 B */
#define BUFPOOL_MAX_SHIFT 20 /* 1 MiB */
#define BUFPOOL_CLASSES (BUFPOOL_MAX_SHIFT - BUFPOOL_MIN_SHIFT + 1)

typedef struct bufpool_stats {
	uint64_t gets;	    /* blocks handed out */
	uint64_t puts;	    /* blocks given back */
	uint64_t mallocs;   /* blocks that had to come from malloc */
	uint64_t cached;    /* blocks on this thread's free lists now */
	int64_t in_use;     /* gets minus puts on this thread (a block may be put on another) */
} bufpool_stats;

/* A block of at least want bytes (*cap says how many); NULL when out of
 * memory. */
void *bufpool_get(size_t want, size_t *cap);
/* Give a block back; cap must be what bufpool_get reported. */
void bufpool_put(void *block, size_t cap);
/* The calling thread's counters. */
bufpool_stats bufpool_thread_stats(void);
/* Free the calling thread's cached blocks (at thread exit, in tests). */
void bufpool_thread_trim(void);

#endif
