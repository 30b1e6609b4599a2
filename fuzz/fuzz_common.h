/*
 * What the fuzz targets share: the checks every decoded message must pass
 * and the stream driver behind fuzz_frontend and fuzz_backend.
 *
 * Input layout of the stream targets (fuzz_frontend, fuzz_backend): one
 * control byte, then the byte stream of one direction. The control byte
 * b is read as
 *
 *   b % 10   the decoder's starting phase, as an index into PHASE_ORDER
 *            of gen/pgw_gen.py (== the pgw_phase enum value). Values that
 *            are not a phase of the target's direction are mapped onto
 *            one with a modulo (frontend: % 7; backend: 7 + % 3).
 *   b / 10   extra settings (0 for every generated seed):
 *            frontend: auth = (b/10) % 4 picks what the "server" asks for
 *                      after StartupMessage (0 nothing: READY, 1 password,
 *                      2 SASL, 3 GSS); piece mode = (b/10) / 4
 *            backend:  piece mode = (b/10) % 7
 *
 * Piece mode says how the stream is cut before it goes through a pgw_rbuf:
 * 0 all at once, 1 one byte at a time, m >= 2 sizes drawn from 1..2^(2m-1)
 * by a PRNG seeded from the input, so any input replays identically.
 */
#ifndef PGW_FUZZ_COMMON_H
#define PGW_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pgw/codec.h"

#define FZ_CHECK(cond, ...)                                                                \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define FZ_PHASES 10 /* PHASE_ORDER in gen/pgw_gen.py */
#define FZ_FRONTEND_PHASES 7

/*
 * The views and arrays of a decoded body: every view inside [lo, hi),
 * strings NUL-terminated with no NUL inside, every array walked with its
 * iterator to exactly its end in exactly `count` items, and the rules the
 * decoder promises (format codes, subtypes) kept.
 */
void fz_check_body(pgw_msg_id id, const pgw_msg_body *b, const uint8_t *lo, const uint8_t *hi);

/* A decoded message: its views (inside raw), and pgw_encode gives back
 * exactly raw (not for PGW_MSG_DIRECT_TLS / PGW_MSG_SSL_ANSWER). */
void fz_check_msg(const pgw_msg *m);

/* An error is well formed: severity known, 5-character SQLSTATE, text
 * NUL-terminated. */
void fz_check_error(const pgw_error *err);

/*
 * Decode msg's bytes again from an exactly sized heap copy (so ASan sees
 * any read past the end) with the decoder as it was before, and check
 * the same message comes out.
 */
void fz_check_redecode(const pgw_decoder *before, const pgw_msg *m);

/* The same for a message the stream decoder refused without losing sync:
 * its `len` bytes alone give the same error. */
void fz_check_redecode_error(const pgw_decoder *before, const uint8_t *bytes, size_t len,
			     const pgw_error *err);

/* Feed a stream through a pgw_rbuf and check every message; the control
 * byte as described above. */
void fz_run_stream(pgw_direction dir, const uint8_t *data, size_t size);

/* Give the buffer pool's cached blocks back and check nothing is still
 * handed out, so every input starts from the same state. */
void fz_end_input(void);

#endif
