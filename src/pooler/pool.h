/*
 * The embedded pooler's pools: one per (database, user) on each worker,
 * with a wait queue with a timeout, idle and lifetime limits. The size
 * limit is for the whole process: the workers' pools of one (database,
 * user) form a group that counts connections together, and a worker with
 * clients waiting is handed idle connections by the others (the one rare
 * event where threads meet, through worker_post). This is the core the
 * multipooler service will serve over gRPC.
 */
#ifndef PGW_POOL_H
#define PGW_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stdint.h>

#include "net/worker.h"
#include "pgw/codec.h"
#include "pooler/stmtcache.h"

typedef struct backend backend;
typedef struct pool pool;

/* Where the PostgreSQL server is and how the pooler logs in to it. */
typedef struct pool_config {
	char *host;	   /* name, address, or a Unix socket directory (starts with '/') */
	int port;
	struct sockaddr_storage addr; /* resolved once, at start */
	socklen_t addrlen;
	char *password;	   /* for password, md5 and SCRAM logins; NULL: trust only */
	int pool_size;	   /* per (database, user), all workers together */
	int min_idle;	   /* kept open even when idle */
	double wait_timeout;  /* seconds a client waits for a connection */
	double idle_timeout;  /* seconds an idle connection is kept (0: forever) */
	double lifetime;      /* seconds before a connection is retired (0: forever) */
	double connect_timeout;
	int max_prepared;     /* prepared statements kept on one server connection */
	/* Session mode: each client holds a server connection of its own, so
	 * the server's refusal of one (53300) is that client's, as directly. */
	bool refusals_to_client;
	struct remote_link *remote; /* set: connections go through this multipooler link */
} pool_config;

/*
 * What the pooler logs in to PostgreSQL with for one user, learned from
 * the client's own login: SCRAM keys recovered from its proof, the md5
 * hash stored for it, or its cleartext password. Better than none: the
 * configured --backend password.
 */
typedef struct pool_credentials {
	bool have_keys;
	uint8_t client_key[32];
	uint8_t server_key[32];
	bool have_md5;
	char md5[36]; /* "md5" + 32 hex, as pg_authid stores it */
	const char *password;
} pool_credentials;

typedef struct pool_waiter pool_waiter;
/*
 * The answer to pool_acquire: a backend, or the reason there is none.
 * login_error/len: the server's own ErrorResponse when it refused the
 * login (role or database missing...), to hand to the client as is.
 */
typedef void (*pool_grant_fn)(pool_waiter *wt, backend *be, const pgw_error *err,
			      const uint8_t *login_error, size_t login_error_len);

struct pool_waiter {
	pool_waiter *next, *prev;
	pool *pool;
	ev_timer timer;
	pool_grant_fn granted;
	bool queued;
};

#define POOL_MAX_WORKERS 128

/* The workers' pools of one (database, user). */
typedef struct pool_group {
	char *database;
	char *user;
	int limit;
	int owner; /* a remote pool's worker (each has its own group); -1: shared */
	/* A lower limit the server enforces (a role's or database's CONNECTION
	 * LIMIT, max_connections), learned from its 53300 refusals while
	 * connections of the group were open: 0 when none is known. Both
	 * atomic; forgotten at learned_until (ms, ev_time clock), so a raised
	 * limit is found again. */
	int learned;
	int64_t learned_until;
	int logged; /* the learned limit was logged (atomic; reset when forgotten) */
	int open;		      /* connections open or opening, all workers (atomic) */
	int waiting[POOL_MAX_WORKERS]; /* each worker's queued clients (atomic) */
	int workers_waiting;	       /* how many of those are above 0 (atomic) */
	pool *pools[POOL_MAX_WORKERS];	/* set once by each worker */
	worker *workers[POOL_MAX_WORKERS];
	struct pool_group *next;
} pool_group;

struct pool {
	worker *w;
	pool_group *group;
	const pool_config *cfg;
	char *database;
	char *user;
	int open;	 /* connections open or opening */
	int connecting;
	int idle_count;
	backend *idle;	 /* most recently used first */
	backend *busy;
	pool_waiter *wait_head, *wait_tail;
	int nwaiting;
	ev_timer maintenance;
	ev_timer donate_soon;
	/* template0/template1: no connection is kept idle there, since
	 * CREATE DATABASE copies template1 only when nobody else is in it. */
	bool keep_none;
	ev_timer close_soon;
	uint64_t next_backend_id;
	pool_credentials cred; /* password owned (strdup) */
	pool *next; /* the worker's list of pools */
};

/* This worker's pool of (database, user) under cfg (see pool_registry). */
pool *pool_new(worker *w, const pool_config *cfg, const char *database, const char *user);
void pool_free(pool *p);

/*
 * The one place a worker finds the pool of a (database, user): the
 * gateway's embedded pools, each multipooler link of the router and the
 * multipooler's own pools are each one registry of one config.
 */
typedef struct pool_registry {
	worker *w;
	const pool_config *cfg;
	pool *pools;
} pool_registry;

void pool_registry_init(pool_registry *r, worker *w, const pool_config *cfg);
/* The pool of (database, user), made on first use; NULL: out of memory. */
pool *pool_registry_get(pool_registry *r, const char *database, const char *user);
/* Free every pool (and so every connection) of the registry. */
void pool_registry_clear(pool_registry *r);
/* After every worker's pools are freed, at exit. */
void pool_groups_free(void);

/*
 * Get a backend: returned at once when one is idle; otherwise NULL, and
 * `granted` is called later from the loop (never from inside this call,
 * so callers need not fear re-entry).
 */
backend *pool_acquire(pool *p, pool_waiter *wt, pool_grant_fn granted);
/* The same, preferring an idle backend whose settings_hash is this one
 * (whose settings then need not be set up again). */
backend *pool_acquire_matching(pool *p, pool_waiter *wt, pool_grant_fn granted, uint64_t settings_hash);
/* Stop waiting (the client left). */
void pool_cancel_wait(pool_waiter *wt);
/*
 * Give a backend back. One still answering requests, or in a transaction,
 * is cleaned up first (its answers swallowed, then ROLLBACK, or DISCARD
 * ALL when `discard`); it rejoins the idle list only when clean.
 */
void pool_release(backend *be, bool discard);
/* Close a backend that cannot be trusted any more. */
void pool_drop(backend *be);

/*
 * A statement's plan went stale for good (the server said "cached plan must
 * not change result type": its result columns changed): every server
 * connection of the group, on every worker, forgets the statement it holds
 * for that key, so the next Parse of it is planned afresh as PostgreSQL
 * would. The server statements stay until DISCARD ALL or the connection
 * ends.
 */
void pool_forget_statement(pool *p, const uint8_t *key, uint32_t len);
/* be's statement e went stale: forgotten on be and, for a pooled server
 * connection (not a remote one), everywhere as pool_forget_statement. */
void pool_forget_stale(backend *be, stmtcache_entry *e);

/*
 * CREATE, DROP and ALTER DATABASE need no other session in the database
 * they copy or change: close the idle server connections to `database`
 * (NULL: to every database but `except`) in every pool of every worker,
 * each on its own thread; done(arg) then runs on w's thread, from its
 * loop (never from inside this call). Connections in use stay. NULL: out
 * of memory, and done never runs.
 */
typedef struct pool_sweep pool_sweep;
pool_sweep *pool_close_idle(worker *w, const char *database, const char *except,
			    void (*done)(void *arg), void *arg);
/* Its caller is gone: done will not run (on w's thread, before it has). */
void pool_sweep_abandon(pool_sweep *s);

/* Remember how to log in as this pool's user (fills what is missing). */
void pool_set_credentials(pool *p, const pool_credentials *c);

/* Called by backends. */
void pool_on_ready(backend *be);
void pool_on_failed(backend *be, const pgw_error *err);
void pool_on_closed(backend *be);
/* An orphan finished a request: continue its cleanup. */
void pool_on_orphan_progress(backend *be);

#endif
