/*
 * Users' secrets fetched from PostgreSQL itself: pg_authid read over a
 * pooled server connection as the --auth-user, cached for a few seconds
 * per worker, so users created in PostgreSQL log in through the gateway
 * with their own passwords.
 */
#ifndef PGW_AUTHQUERY_H
#define PGW_AUTHQUERY_H

typedef struct client client;
typedef struct gw_worker gw_worker;
typedef struct authq authq;

#define AUTHQ_CACHE_SECONDS 10.0

/* Look cl's user up; client_auth_secret(cl, ...) is called with the
 * outcome, now (from the cache) or later. */
void authq_start(client *cl);
/* The client left before the answer came. */
void authq_cancel(authq *q);
void authq_cache_free(gw_worker *gw);

#endif
