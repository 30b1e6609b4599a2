/*
 * The auth query: SELECT rolpassword FROM pg_authid for one user on a
 * server connection of the auth user's pool, relayed like any other
 * request, the answer cached per worker for AUTHQ_CACHE_SECONDS.
 */
#include "gateway/authquery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "gateway/client.h"
#include "router/router.h"

typedef struct authq_entry {
	struct authq_entry *next;
	char *user;
	char *secret; /* NULL: no such login role, or no password */
	ev_tstamp expires;
} authq_entry;

struct authq {
	pool_waiter waiter;
	client *cl; /* NULL once the client has gone */
	gw_worker *gw;
	pooler_handle *h;
	backend *be;
	char *user;
	char *secret;
	bool found_row;
	bool failed;
};

void client_auth_secret(client *cl, const char *secret, bool lookup_failed);

static void entry_free(authq_entry *e)
{
	free(e->user);
	if (e->secret) {
		OPENSSL_cleanse(e->secret, strlen(e->secret));
		free(e->secret);
	}
	free(e);
}

static authq_entry *cache_find(gw_worker *gw, const char *user)
{
	ev_tstamp now = ev_now(gw->w.loop);
	for (authq_entry **pp = (authq_entry **)&gw->authq_cache; *pp;) {
		authq_entry *e = *pp;
		if (e->expires < now) {
			*pp = e->next;
			entry_free(e);
			continue;
		}
		if (strcmp(e->user, user) == 0)
			return e;
		pp = &e->next;
	}
	return NULL;
}

static void cache_put(gw_worker *gw, const char *user, const char *secret)
{
	authq_entry *e = calloc(1, sizeof *e);
	if (!e)
		return;
	e->user = strdup(user);
	e->secret = secret ? strdup(secret) : NULL;
	if (!e->user || (secret && !e->secret)) {
		free(e->user);
		free(e->secret);
		free(e);
		return;
	}
	e->expires = ev_now(gw->w.loop) + AUTHQ_CACHE_SECONDS;
	e->next = gw->authq_cache;
	gw->authq_cache = e;
}

void authq_cache_free(gw_worker *gw)
{
	while (gw->authq_cache) {
		authq_entry *e = gw->authq_cache;
		gw->authq_cache = e->next;
		entry_free(e);
	}
}

static void finish(authq *q)
{
	if (q->be) {
		backend *be = q->be;
		q->be = NULL;
		backend_set_owner(be, NULL, NULL);
		q->h->ops->release(q->h, be, false);
	}
	if (!q->failed)
		cache_put(q->gw, q->user, q->secret);
	if (q->cl) {
		q->cl->auth.query = NULL;
		client_auth_secret(q->cl, q->secret, q->failed);
	}
	if (q->secret) {
		OPENSSL_cleanse(q->secret, strlen(q->secret));
		free(q->secret);
	}
	free(q->user);
	free(q);
}

static void on_message(void *owner, backend *be, pgw_msg *m)
{
	authq *q = owner;
	pgw_error err;
	(void)be;
	switch (m->type) {
	case 'D':
		if (pgw_decode_msg_body(m, &err) == PGW_OK && !q->found_row) {
			pgw_iter it = pgw_array_iter(&m->body.data_row.columns);
			pgw_value v;
			q->found_row = true;
			if (pgw_next_value(&it, &v) && v.len > 0)
				q->secret = strndup((const char *)v.ptr, (size_t)v.len);
		}
		break;
	case 'E':
		q->failed = true;
		log_warning("the auth query for user \"%s\" failed", q->user);
		break;
	case 'Z':
		finish(q);
		break;
	default:
		break;
	}
}

static void on_lost(void *owner, backend *be, const pgw_error *err)
{
	authq *q = owner;
	(void)be;
	q->be = NULL;
	q->failed = true;
	log_warning("the auth query for user \"%s\" lost its connection: %s", q->user, err->message);
	finish(q);
}

static const backend_owner_ops authq_ops = {on_message, on_lost, NULL, NULL, NULL};

static void run(authq *q, backend *be)
{
	q->be = be;
	backend_set_owner(be, &authq_ops, q);
	/* The name as an escaped literal: E'...' with ' and \ doubled. */
	size_t cap = 2 * strlen(q->user) + 256;
	char *sql = malloc(cap);
	if (!sql) {
		q->failed = true;
		finish(q);
		return;
	}
	size_t n = (size_t)snprintf(sql, cap, "SELECT rolpassword FROM pg_catalog.pg_authid WHERE "
						"rolcanlogin AND (rolvaliduntil IS NULL OR "
						"rolvaliduntil > now()) AND rolname = E'");
	for (const char *p = q->user; *p; p++) {
		if (*p == '\'' || *p == '\\')
			sql[n++] = *p;
		sql[n++] = *p;
	}
	sql[n++] = '\'';
	sql[n] = '\0';
	backend_send_query(be, sql, n, false);
	free(sql);
}

static void on_granted(pool_waiter *wt, backend *be, const pgw_error *err,
		       const uint8_t *login_error, size_t login_error_len)
{
	authq *q = (authq *)wt;
	(void)login_error;
	(void)login_error_len;
	if (!be) {
		q->failed = true;
		log_warning("no server connection for the auth query: %s", err->message);
		finish(q);
		return;
	}
	run(q, be);
}

void authq_start(client *cl)
{
	gw_worker *gw = cl->gw;
	gateway_config *cfg = &gw->gw->cfg;
	authq_entry *e = cache_find(gw, cl->user);
	if (e) {
		client_auth_secret(cl, e->secret, false);
		return;
	}
	authq *q = calloc(1, sizeof *q);
	pooler_handle *h = router_route(gw->router, cfg->auth_database, cfg->auth_user);
	if (!q || !h || !(q->user = strdup(cl->user))) {
		free(q);
		client_auth_secret(cl, NULL, true);
		return;
	}
	q->cl = cl;
	q->gw = gw;
	q->h = h;
	cl->auth.query = q;
	backend *be = h->ops->acquire(h, &q->waiter, on_granted);
	if (be)
		run(q, be);
}

void authq_cancel(authq *q)
{
	q->cl = NULL;
}
