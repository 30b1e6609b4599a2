/*
 * Buffer pool: size classes from 512 B to 1 MiB, each with a free list
 * owned by the calling thread. Nothing is shared between threads, so no
 * locks: a block freed on another thread simply joins that thread's list.
 */
#include "pgw/bufpool.h"

#include <stdlib.h>

typedef struct free_block {
	struct free_block *next;
} free_block;

typedef struct thread_cache {
	free_block *head[BUFPOOL_CLASSES];
	uint32_t count[BUFPOOL_CLASSES];
	bufpool_stats stats;
} thread_cache;

static _Thread_local thread_cache cache;

/* Keep at most about 1 MiB, and never fewer than 4 blocks, per class. */
static uint32_t class_keep(int cls)
{
	uint32_t keep = 1u << (BUFPOOL_MAX_SHIFT - BUFPOOL_MIN_SHIFT - cls);
	return keep < 4 ? 4 : keep;
}

static int class_of(size_t want)
{
	int cls = 0;
	while (cls < BUFPOOL_CLASSES && ((size_t)1 << (BUFPOOL_MIN_SHIFT + cls)) < want)
		cls++;
	return cls; /* == BUFPOOL_CLASSES: larger than any class */
}

void *bufpool_get(size_t want, size_t *cap)
{
	int cls = class_of(want ? want : 1);
	void *block;

	if (cls == BUFPOOL_CLASSES) {
		block = malloc(want);
		if (!block)
			return NULL;
		*cap = want;
		cache.stats.mallocs++;
	} else if (cache.head[cls]) {
		free_block *fb = cache.head[cls];
		cache.head[cls] = fb->next;
		cache.count[cls]--;
		cache.stats.cached--;
		block = fb;
		*cap = (size_t)1 << (BUFPOOL_MIN_SHIFT + cls);
	} else {
		*cap = (size_t)1 << (BUFPOOL_MIN_SHIFT + cls);
		block = malloc(*cap);
		if (!block)
			return NULL;
		cache.stats.mallocs++;
	}
	cache.stats.gets++;
	cache.stats.in_use++;
	return block;
}

void bufpool_put(void *block, size_t cap)
{
	if (!block)
		return;
	cache.stats.puts++;
	cache.stats.in_use--;
	int cls = class_of(cap);
	if (cls == BUFPOOL_CLASSES || ((size_t)1 << (BUFPOOL_MIN_SHIFT + cls)) != cap ||
	    cache.count[cls] >= class_keep(cls)) {
		free(block);
		return;
	}
	free_block *fb = block;
	fb->next = cache.head[cls];
	cache.head[cls] = fb;
	cache.count[cls]++;
	cache.stats.cached++;
}

bufpool_stats bufpool_thread_stats(void)
{
	return cache.stats;
}

void bufpool_thread_trim(void)
{
	for (int cls = 0; cls < BUFPOOL_CLASSES; cls++) {
		while (cache.head[cls]) {
			free_block *fb = cache.head[cls];
			cache.head[cls] = fb->next;
			free(fb);
		}
		cache.count[cls] = 0;
	}
	cache.stats.cached = 0;
}
