/*
 * The multipooler's executor: runs one RPC's request on a pooled or
 * reserved server connection and turns the server's answers into the
 * protobuf-c response messages of multipoolerservice, streamed on the
 * call as they come (rows as raw DataRow bytes, never re-encoded).
 */
#ifndef PGW_MP_EXEC_H
#define PGW_MP_EXEC_H

#include <protobuf-c/protobuf-c.h>

#include "clustermetadata.pb-c.h"
#include "multipooler/mp.h"
#include "multipoolerservice.pb-c.h"

typedef enum mpx_kind {
	MPX_STREAM = 0, /* StreamExecute */
	MPX_UNARY,	/* ExecuteQuery */
	MPX_PORTAL,	/* PortalStreamExecute */
	MPX_DESCRIBE,	/* Describe */
	MPX_CONCLUDE,	/* ConcludeTransaction */
	MPX_AUTH,	/* GetAuthCredentials */
	MPX_COPY,	/* CopyBidiExecute */
} mpx_kind;

/* Run a request (it is copied); the call is always ended, with a status,
 * by the executor. */
void mpx_start(mp_worker *mw, rpc_call *call, mpx_kind kind, const ProtobufCMessage *req);
/* The call is over from the client's side (cancel, deadline, lost). */
void mpx_cancel(rpc_call *call);
/* CopyBidiExecute: every request message, and the end of them. */
void mpx_copy_message(mp_worker *mw, rpc_call *call, const ProtobufCMessage *msg);
void mpx_copy_half_close(rpc_call *call);
/* ReleaseReservedConnection. */
void mpx_release(mp_worker *mw, rpc_call *call,
		 const Multipoolerservice__ReleaseReservedConnectionRequest *req);

/* Reservations: the idle-timeout sweep, and everything at shutdown. */
void mpx_resv_sweep(mp_worker *mw);
void mpx_resv_free_all(mp_worker *mw);

/* This pooler's id, for answers. */
void mpx_pooler_id(const mp_worker *mw, Clustermetadata__ID *id);

#endif
