/* Loader for captured conversations; see transcript.h. */
#include "transcript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	*len = n;
	return buf;
}

int pgw_transcript_load(const char *path, pgw_transcript *t)
{
	memset(t, 0, sizeof *t);
	size_t len;
	t->file = read_file(path, &len);
	if (!t->file || len < 8 || memcmp(t->file, "PGWTRAN1", 8) != 0) {
		fprintf(stderr, "%s: not a transcript\n", path);
		pgw_transcript_free(t);
		return -1;
	}
	size_t cap = 0;
	for (size_t off = 8; off < len;) {
		if (len - off < 5 || (t->file[off] != 'F' && t->file[off] != 'B')) {
			fprintf(stderr, "%s: bad record at %zu\n", path, off);
			pgw_transcript_free(t);
			return -1;
		}
		uint32_t n = ((uint32_t)t->file[off + 1] << 24) | ((uint32_t)t->file[off + 2] << 16) |
			     ((uint32_t)t->file[off + 3] << 8) | t->file[off + 4];
		if (len - off - 5 < n) {
			fprintf(stderr, "%s: truncated record at %zu\n", path, off);
			pgw_transcript_free(t);
			return -1;
		}
		if (t->nchunks == cap) {
			cap = cap ? cap * 2 : 64;
			t->chunks = realloc(t->chunks, cap * sizeof *t->chunks);
			if (!t->chunks)
				abort();
		}
		t->chunks[t->nchunks++] = (pgw_chunk){(char)t->file[off], t->file + off + 5, n};
		t->stream_len[t->file[off] == 'B'] += n;
		off += 5 + (size_t)n;
	}
	for (int d = 0; d < 2; d++) {
		t->stream[d] = malloc(t->stream_len[d] + 1);
		if (!t->stream[d])
			abort();
		size_t at = 0;
		for (size_t i = 0; i < t->nchunks; i++)
			if ((t->chunks[i].dir == 'B') == d) {
				memcpy(t->stream[d] + at, t->chunks[i].ptr, t->chunks[i].len);
				at += t->chunks[i].len;
			}
	}
	return 0;
}

void pgw_transcript_free(pgw_transcript *t)
{
	free(t->file);
	free(t->chunks);
	free(t->stream[0]);
	free(t->stream[1]);
	memset(t, 0, sizeof *t);
}
