/*
 * The gateway: listeners, worker threads, and the per-worker state that
 * clients, pools and cancel lookups live in.
 */
#ifndef PGW_GATEWAY_H
#define PGW_GATEWAY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/tls.h"
#include "net/worker.h"
#include "pooler/pool.h"

typedef enum pool_mode { POOL_MODE_TRANSACTION = 0, POOL_MODE_SESSION } pool_mode;

#define GW_MAX_LISTEN 8

typedef struct gateway_config {
	char *listen[GW_MAX_LISTEN]; /* HOST:PORT */
	int nlisten;
	char *socket_dir;
	int unix_port; /* the port in .s.PGSQL.<port>; the first TCP port by default */
	int workers;
	pool_mode mode;
	int max_clients;
	uint32_t max_message; /* cap on a client message, bytes */
	double login_timeout; /* seconds from connect to logged in */
	tls_config tls;	      /* cert_file NULL: no TLS, SSLRequest gets 'N' */
	char *hba_file;	      /* NULL: the built-in rules (see hba_load_default) */
	char *auth_file;      /* users' secrets; NULL: none */
	char *auth_user;      /* who reads pg_authid for the others; NULL: nobody */
	char *auth_database;
	pool_config pool;     /* pool_size here is the total for each (database, user) */
	char *topology_file;  /* --topology: databases -> multipooler addresses */
	char *pooler;	      /* --pooler HOST:PORT: every database to one multipooler */
	struct topology_source *topology; /* set: queries go to multipoolers, not --backend */
} gateway_config;

typedef struct gateway gateway;
typedef struct client client;

/* What each worker owns. */
typedef struct gw_worker {
	worker w; /* first */
	gateway *gw;
	pool_config pool_cfg; /* this worker's share of the pool size */
	struct router *router; /* where this worker's sessions are served */
	ev_io listen_io[GW_MAX_LISTEN + 1];
	int nlisten;
	client *clients; /* all of this worker's clients */
	client *closed;	 /* closed this iteration, freed at its end */
	struct authq_entry *authq_cache;
	uint32_t next_conn_id;
	int nclients;
} gw_worker;

struct gateway {
	gateway_config cfg;
	gw_worker *workers;
	int nworkers;
	int listen_fds[GW_MAX_LISTEN]; /* per worker when SO_REUSEPORT; see listen.c */
	int unix_fd;
	char unix_path[108];
	int total_clients; /* approximate, for the connection limit */
	SSL_CTX *tls_ctx;  /* shared by the workers; NULL without TLS */
	struct hba_rules *hba;
	struct authfile *users;
	uint8_t mock_secret[16]; /* for SCRAM exchanges with unknown users */
	uint8_t cb_data[64];	 /* tls-server-end-point of our certificate */
	size_t cb_len;		 /* 0: no SCRAM-SHA-256-PLUS */
};

int gateway_start(gateway *gw);
void gateway_stop(gateway *gw);

#endif
