/* Test vectors generated from the grammar (see gen/pgw_gen.py). */
#ifndef PGW_VECTORS_H
#define PGW_VECTORS_H

#include "pgw/codec.h"

typedef struct pgw_vector {
	const char *name;
	pgw_msg_id id;
	pgw_direction direction;
	pgw_phase phase;
	const uint8_t *bytes;
	uint32_t len;
	bool ok;
	pgw_severity severity; /* when !ok */
	const char *sqlstate;
	const char *message;
} pgw_vector;

extern const pgw_vector pgw_vectors[];
extern const size_t pgw_vector_count;

#endif
