/*
 * Replays a captured conversation through two stream decoders, one per
 * direction, moving their phases the way a gateway and a pooler would
 * (SSL answer, authentication exchange, COPY FROM STDIN), and hands every
 * decoded message to a callback.
 */
#ifndef PGW_FOLLOW_H
#define PGW_FOLLOW_H

#include "pgw/codec.h"
#include "transcript.h"

typedef int (*pgw_follow_fn)(void *arg, pgw_direction dir, const pgw_msg *msg);

typedef struct pgw_follow_result {
	size_t messages[2];
	size_t leftover[2]; /* bytes not making a whole message at the end */
	int failed;	    /* a decode error: details in err */
	pgw_direction failed_dir;
	pgw_error err;
} pgw_follow_result;

/*
 * Feed each direction in pieces of at most `piece` bytes (0: as recorded),
 * through pooled read buffers. Returns 0, or the callback's non-zero value.
 */
int pgw_follow(const pgw_transcript *t, size_t piece, pgw_follow_fn fn, void *arg,
	       pgw_follow_result *res);

#endif
