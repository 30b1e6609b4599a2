/*
 * multipooler: multigres's MultiPoolerService served over the embedded
 * pooler core. Each worker thread owns one loop, one gRPC server (all on
 * one port with SO_REUSEPORT), its share of the pools, and the
 * reservations (server connections pinned to a gateway session) made on it.
 */
#ifndef PGW_MP_H
#define PGW_MP_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/worker.h"
#include "pooler/pool.h"
#include "rpc/rpc.h"

/* multipoolerservice.ReservationReason bits. */
enum {
	MP_RESERVE_TRANSACTION = 1,
	MP_RESERVE_TEMP_TABLE = 2,
	MP_RESERVE_PORTAL = 4,
	MP_RESERVE_COPY = 8,
	MP_RESERVE_LISTEN = 16,
	MP_RESERVE_SESSION = 32, /* a gateway's hold: its own end cleans what it leaves */
};
/* Reasons that only the server's own state decides (recomputed after
 * every call); the others stay until the reservation is released. */
#define MP_RESERVE_DERIVED (MP_RESERVE_TRANSACTION | MP_RESERVE_PORTAL | MP_RESERVE_COPY)
/* Reasons whose session state must be wiped before the connection is
 * pooled again. */
#define MP_RESERVE_STICKY (~(uint32_t)MP_RESERVE_DERIVED) /* kept until released */
#define MP_RESERVE_DISCARD (MP_RESERVE_STICKY & ~(uint32_t)MP_RESERVE_SESSION)

#define MP_SERVICE "/multipoolerservice.MultiPoolerService/"

typedef struct mp_config {
	pool_config pool;
	char *listen;		 /* gRPC address, HOST:PORT or a Unix socket path */
	int workers;
	double reserved_timeout; /* an unused reservation is rolled back after this */
	char *cell;		 /* pooler_id: cell and name */
	char *name;
	char *database;		 /* what health reports on; the default database */
	char *user;		 /* the --backend user: default user, pg_authid reader */
	size_t max_result_bytes; /* ExecuteQuery answers are bounded */
	double probe_interval;	 /* seconds between health probes */
} mp_config;

typedef struct mp_server mp_server;
typedef struct mp_job mp_job;
typedef struct mp_health mp_health;

/* A NotificationResponse that came between calls. */
typedef struct mp_notify {
	struct mp_notify *next;
	int32_t pid;
	char *channel;
	char *payload;
} mp_notify;

/* Notifications kept for the next call, at most; older ones are dropped
 * past this (a LISTEN session that stops calling must not grow us). */
#define MP_NOTIFY_MAX 10000

/* A server connection pinned across calls. */
typedef struct mp_resv {
	uint64_t id;
	backend *be;
	uint32_t reasons;
	mp_job *job;	    /* the call running on it now, or NULL */
	/* A call that came while a cancelled call still winds down on the
	 * server: it runs once that one is done (the gateway sends one call
	 * at a time, so one slot is enough). */
	mp_job *waiting;
	bool release_pending; /* released while a cancelled call winds down */
	/* Notifications heard between calls, oldest first: the next
	 * streaming call delivers them before its own results. */
	mp_notify *notify_head, *notify_tail;
	size_t notify_count;
	/* A StreamExecute with await_notifications: they go out on it as
	 * they come, while no other call uses the reservation. */
	mp_job *awaiter;
	char *portal;	    /* a suspended portal's name, or NULL */
	bool flush_mode;    /* that portal lives in an implicit transaction: no Sync sent */
	bool settings_dirty; /* statements ran that may have changed settings */
	ev_tstamp last_used;
	struct mp_resv *next;
} mp_resv;

typedef struct mp_worker {
	worker w; /* first */
	mp_server *srv;
	pool_config pool_cfg;
	pool_registry pools; /* one per (database, user) */
	rpc_server *rpc;
	mp_resv *resvs;
	uint64_t next_resv;
	ev_timer resv_timer;
	/* Health: watchers streaming it, and the probe that feeds them. */
	rpc_method methods[9]; /* this worker's table: arg is the worker */
	mp_health *health;
	ev_timer probe_timer;
	ev_io probe_io;
	int probe_fd;
	int serving; /* -1 unknown, 0 no, 1 yes */
	char reason[160];
} mp_worker;

struct mp_server {
	mp_config cfg;
	mp_worker *workers;
	int nworkers;
	int port; /* the port bound (useful with :0) */
};

/* service.c */
int mp_server_start(mp_server *s);
void mp_server_stop(mp_server *s);

#endif
