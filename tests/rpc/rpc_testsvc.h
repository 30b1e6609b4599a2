/*
 * A test subset of MultiPoolerService on src/rpc, shared by the unit tests
 * and the interop tool: answers derived from the requests so they can be checked.
 */
#ifndef PGW_RPC_TESTSVC_H
#define PGW_RPC_TESTSVC_H

#include <stddef.h>

#include "rpc.h"

#define TESTSVC_PREFIX "/multipoolerservice.MultiPoolerService/"

typedef struct testsvc_stats {
	int cancels;	      /* on_cancel calls */
	int finished;	      /* calls finished by the service */
	int unwritable;	      /* times rpc_call_writable said no */
	size_t max_queued;    /* most response bytes queued on one call */
	size_t msg_size;      /* size of the last streamed message */
	int bidi_messages;    /* request messages seen by CopyBidiExecute */
} testsvc_stats;

extern testsvc_stats testsvc;
extern const rpc_method testsvc_methods[];
extern const size_t testsvc_nmethods;

/* The byte at offset k of streamed message i (StreamExecute payloads). */
static inline unsigned char testsvc_byte(unsigned long i, size_t k)
{
	return (unsigned char)((i * 31 + k) & 0xff);
}

#endif
