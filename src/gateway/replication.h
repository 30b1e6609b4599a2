/*
 * Replication connections (startup parameter replication=true or
 * replication=database): after the gateway's own login, a server
 * connection of their own, outside every pool, and the bytes relayed
 * unchanged both ways.
 */
#ifndef PGW_REPLICATION_H
#define PGW_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgw/codec.h"
#include "pooler/backend.h"

typedef struct client client;
typedef struct backend backend;

typedef enum repl_mode {
	REPL_NONE = 0, /* an ordinary connection (replication=false, or absent) */
	REPL_PHYSICAL, /* replication=true: a WAL sender, no database */
	REPL_LOGICAL,  /* replication=database: a WAL sender on a database */
} repl_mode;

typedef struct repl_conn {
	repl_mode mode;
	backend *be;	      /* the client's own server connection, once opened */
	uint8_t *startup;     /* "name\0value\0" pairs for its startup packet */
	size_t startup_len;
	bool draining;	      /* the server is gone: what is queued goes, then the close */
} repl_conn;

/* The replication parameter read as PostgreSQL reads it: "database", or a
 * boolean as parse_bool takes it. False: not a value it accepts. */
bool repl_parse_mode(const char *value, repl_mode *mode);

/* Note that cl replicates, and what its server connection's startup packet
 * carries besides user and database: the client's parameters (replication
 * and options among them), protocol options left out. 0, or -1 without
 * memory. */
int repl_init(client *cl, repl_mode mode, const pgw_array *params);

/* Authenticated: open the server connection and log in (CL_LOGIN until its
 * ReadyForQuery has been relayed). */
void repl_start(client *cl);

/* Relay what the client sent to its server connection, stopping the
 * client's reads while the server side is backed up. */
void repl_client_input(client *cl);

/* The client's output drained below the low mark. */
void repl_client_drained(client *cl);

/* A CancelRequest with the right key: passed to the server connection;
 * done(arg) as backend_cancel says. */
void repl_cancel(client *cl, backend_cancel_done done, void *arg);

/* The client is closing: close its server connection, free the rest. */
void repl_free(client *cl);

#endif
