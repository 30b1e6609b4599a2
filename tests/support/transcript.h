/*
 * Captured conversations (the .pgwt files in tests/data): "PGWTRAN1", then records of
 * a direction byte ('F' client->server, 'B' server->client), a 4-byte
 * big-endian length and the bytes of one recv().
 */
#ifndef PGW_TRANSCRIPT_H
#define PGW_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgw_chunk {
	char dir; /* 'F' or 'B' */
	const uint8_t *ptr;
	uint32_t len;
} pgw_chunk;

typedef struct pgw_transcript {
	uint8_t *file;
	pgw_chunk *chunks;
	size_t nchunks;
	/* Each direction's bytes, concatenated. */
	uint8_t *stream[2]; /* [0] frontend, [1] backend */
	size_t stream_len[2];
} pgw_transcript;

/* 0 on success; -1 with a message on stderr. */
int pgw_transcript_load(const char *path, pgw_transcript *t);
void pgw_transcript_free(pgw_transcript *t);

#endif
