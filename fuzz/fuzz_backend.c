/*
 * libFuzzer/AFL++ target: a server's byte stream through the backend
 * stream decoder.
 *
 * Input: one control byte (the starting phase = the pgw_phase value:
 * SSL_ANSWER 7, GSSENC_ANSWER 8, BACKEND 9; other values are mapped onto
 * these with a modulo; its higher digits choose how the stream is cut, see
 * fuzz_common.h), then the bytes the server sent. Decoded through a
 * pgw_rbuf until NEED_MORE, a lost_sync error or a TLS answer; 'N' to
 * SSLRequest/GSSENCRequest moves on to BACKEND like a client would.
 *
 * The same checks as fuzz_frontend apply to every message.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_run_stream(PGW_BACKEND, data, size);
	return 0;
}
