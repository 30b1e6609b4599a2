/*
 * libFuzzer/AFL++ target: a client's byte stream through the frontend
 * stream decoder.
 *
 * Input: one control byte (the starting phase = the pgw_phase value, taken
 * modulo the 7 frontend phases; its higher digits choose the server's auth
 * request and how the stream is cut, see fuzz_common.h), then the bytes
 * the client sent. The stream goes through a pgw_rbuf in pieces and is
 * decoded until NEED_MORE, a lost_sync error or the end of the
 * connection; ERROR-level body errors are skipped like a server does.
 * After StartupMessage the decoder moves on like a server would.
 *
 * Every message must re-encode to its own bytes, keep its views inside
 * itself, iterate its arrays to exactly their end and count, and decode
 * the same from an exactly sized copy.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_run_stream(PGW_FRONTEND, data, size);
	return 0;
}
