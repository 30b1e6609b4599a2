/*
 * The one hash of the project: FNV-1a taken 8 bytes at a time, then a
 * final mix so that the low bits a table masks depend on every byte. For
 * our own tables and change checks (query texts, statement names,
 * settings); not collision-resistant against a chosen input.
 */
#ifndef PGW_HASH_H
#define PGW_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PGW_HASH_SEED 0xcbf29ce484222325ull

/* Fold len bytes into h (start from PGW_HASH_SEED; parts may follow). */
static inline uint64_t pgw_hash_add(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static inline uint64_t pgw_hash_end(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static inline uint64_t pgw_hash(const void *p, size_t len)
{
	return pgw_hash_end(pgw_hash_add(PGW_HASH_SEED, p, len));
}

#endif
