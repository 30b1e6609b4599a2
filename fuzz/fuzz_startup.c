/*
 * libFuzzer/AFL++ target: startup packets (StartupMessage, SSLRequest,
 * GSSENCRequest, CancelRequest, direct TLS) decoded in the STARTUP phase
 * straight from the fuzzer's exactly sized buffer.
 *
 * Input: the raw packet bytes, no control byte. After an SSLRequest or
 * GSSENCRequest (answered 'N') the next packet is decoded too, as a
 * server would. Every packet must re-encode to its own bytes; the
 * parameters of a StartupMessage are walked with pgw_next_pair to exactly
 * the end of the array.
 */
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pgw_decoder d;
	pgw_decoder_init(&d, PGW_FRONTEND, 0);
	size_t off = 0;
	for (int packets = 0; packets < 8; packets++) {
		pgw_decoder before = d;
		pgw_msg msg;
		pgw_error err;
		size_t used = (size_t)-1;
		memset(&err, 0, sizeof err);
		pgw_status st = pgw_decode(&d, data + off, size - off, &msg, &used, &err);
		if (st == PGW_NEED_MORE) {
			FZ_CHECK(used == 0, "NEED_MORE with %zu consumed", used);
			FZ_CHECK(d.need > size - off && d.need <= PGW_STARTUP_MAX_LENGTH,
				 "NEED_MORE: need %u with %zu bytes", d.need, size - off);
			break;
		}
		if (st == PGW_ERR) {
			fz_check_error(&err);
			break;
		}
		FZ_CHECK(st == PGW_OK, "status %d", (int)st);
		FZ_CHECK(d.phase == PGW_PH_STARTUP, "the decoder moved its own phase");
		fz_check_msg(&msg);
		if (msg.id == PGW_MSG_DIRECT_TLS) {
			FZ_CHECK(used == 0 && off < size && data[off] == PGW_TLS_HANDSHAKE_BYTE,
				 "DirectTLS consumed %zu", used);
			break;
		}
		FZ_CHECK(msg.type == 0 && msg.raw == data + off && used == msg.raw_len &&
				 used >= PGW_STARTUP_MIN_LENGTH && used <= PGW_STARTUP_MAX_LENGTH &&
				 used <= size - off,
			 "%s: raw %td+%u, consumed %zu of %zu", pgw_msg_name(msg.id),
			 msg.raw - data, msg.raw_len, used, size - off);
		FZ_CHECK(msg.id == PGW_MSG_STARTUP_MESSAGE || msg.id == PGW_MSG_SSL_REQUEST ||
				 msg.id == PGW_MSG_GSSENC_REQUEST ||
				 msg.id == PGW_MSG_CANCEL_REQUEST,
			 "%s in the startup phase", pgw_msg_name(msg.id));
		if (msg.id == PGW_MSG_STARTUP_MESSAGE)
			FZ_CHECK(msg.body.startup_message.protocol >> 16 == 3,
				 "protocol %d accepted", msg.body.startup_message.protocol);
		fz_check_redecode(&before, &msg);
		if (msg.id != PGW_MSG_SSL_REQUEST && msg.id != PGW_MSG_GSSENC_REQUEST)
			break;
		off += used;
	}
	fz_end_input();
	return 0;
}
