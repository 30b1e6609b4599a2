/*
 * Session settings kept by the gateway; see session.h. The replay text is
 * rebuilt only when a setting changes, so the hot path compares a hash.
 */
#include "pooler/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

static void entry_free(session_entry *e)
{
	free(e->name);
	free(e->text);
}

static void list_clear(session_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		entry_free(&l->items[i]);
	l->n = 0;
}

static void list_free(session_list *l)
{
	list_clear(l);
	free(l->items);
	l->items = NULL;
	l->cap = 0;
}

static session_entry *list_find(session_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].name && strcmp(l->items[i].name, name) == 0)
			return &l->items[i];
	return NULL;
}

static void list_remove(session_list *l, const char *name)
{
	for (size_t i = 0; i < l->n;)
		if (strcmp(l->items[i].name, name) == 0) {
			entry_free(&l->items[i]);
			memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof l->items[0]);
			l->n--;
		} else {
			i++;
		}
}

static int list_append(session_list *l, const char *name, const char *text, size_t text_len,
		       bool is_sql)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		session_entry *items = realloc(l->items, cap * sizeof *items);
		if (!items)
			return -1;
		l->items = items;
		l->cap = cap;
	}
	session_entry e = {name ? strdup(name) : NULL, text ? strndup(text, text_len) : NULL, is_sql};
	if ((name && !e.name) || (text && !e.text)) {
		entry_free(&e);
		return -1;
	}
	l->items[l->n++] = e;
	return 0;
}

/* Replace or add name's entry, keeping first-set order. */
static int list_put(session_list *l, const char *name, const char *text, size_t text_len,
		    bool is_sql)
{
	session_entry *e = list_find(l, name);
	if (!e)
		return list_append(l, name, text, text_len, is_sql);
	char *t = strndup(text, text_len);
	if (!t)
		return -1;
	free(e->text);
	e->text = t;
	e->is_sql = is_sql;
	return 0;
}

void session_init(session *s)
{
	memset(s, 0, sizeof *s);
}

void session_free(session *s)
{
	list_free(&s->startup);
	list_free(&s->sets);
	list_free(&s->block);
	free(s->sync_sql);
	s->sync_sql = NULL;
}

int session_add_startup(session *s, const char *name, const char *value)
{
	s->stale = true;
	return list_put(&s->startup, name, value, strlen(value), false);
}

bool session_is_startup_param(const session *s, const char *name)
{
	return list_find((session_list *)&s->startup, name) != NULL;
}

static bool is_role_param(const char *name)
{
	return strcmp(name, "role") == 0 || strcmp(name, "session_authorization") == 0;
}

static int apply(session *s, session_op_kind kind, const char *name, const char *stmt,
		 size_t stmt_len)
{
	s->stale = true;
	switch (kind) {
	case SESSION_OP_SET:
		/* A DateStyle SET may change only half of the value, so each
		 * one is replayed in order; for the rest the last one wins.
		 * SET SESSION AUTHORIZATION also resets the role, so a role
		 * kept is always one set after it and replays after it. */
		if (strcmp(name, "session_authorization") == 0)
			list_remove(&s->sets, "role");
		if (strcmp(name, "datestyle") == 0)
			return list_append(&s->sets, name, stmt, stmt_len, true);
		return list_put(&s->sets, name, stmt, stmt_len, true);
	case SESSION_OP_RESET:
		list_remove(&s->sets, name);
		if (strcmp(name, "session_authorization") == 0)
			list_remove(&s->sets, "role");
		return 0;
	case SESSION_OP_RESET_ALL:
		list_clear(&s->sets);
		return 0;
	}
	return 0;
}

int session_change(session *s, session_op_kind kind, const char *name, const char *stmt,
		   size_t stmt_len, bool in_block)
{
	if (!in_block)
		return apply(s, kind, name, stmt, stmt_len);
	/* Held back until COMMIT; the op kind rides in is_sql's place. */
	if (list_append(&s->block, name, stmt, stmt_len, false) != 0)
		return -1;
	s->block.items[s->block.n - 1].is_sql = false;
	/* Encode the kind in the entry: name NULL means RESET ALL, text NULL
	 * means RESET. */
	if (kind == SESSION_OP_RESET_ALL) {
		free(s->block.items[s->block.n - 1].name);
		s->block.items[s->block.n - 1].name = NULL;
	}
	if (kind != SESSION_OP_SET) {
		free(s->block.items[s->block.n - 1].text);
		s->block.items[s->block.n - 1].text = NULL;
	}
	return 0;
}

void session_block_end(session *s, bool committed)
{
	if (committed)
		for (size_t i = 0; i < s->block.n; i++) {
			session_entry *e = &s->block.items[i];
			if (!e->name)
				apply(s, SESSION_OP_RESET_ALL, NULL, NULL, 0);
			else if (!e->text)
				apply(s, SESSION_OP_RESET, e->name, NULL, 0);
			else
				apply(s, SESSION_OP_SET, e->name, e->text, strlen(e->text));
		}
	list_clear(&s->block);
}

/* Append a SQL string literal for value. */
static void put_literal(char **buf, size_t *len, size_t *cap, const char *v);

static int grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	char *nb = realloc(*buf, ncap);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

static void put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (!*buf && n == 0)
		return;
	if (grow(buf, cap, *len + n + 1) != 0)
		return;
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static void put_literal(char **buf, size_t *len, size_t *cap, const char *v)
{
	put(buf, len, cap, "E'", 2);
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			put(buf, len, cap, p, 1);
		put(buf, len, cap, p, 1);
	}
	put(buf, len, cap, "'", 1);
}

int session_refresh(session *s)
{
	if (!s->stale)
		return 0;
	s->stale = false;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	s->role_changed = false;
	/* Startup parameters first, then SETs, which override them. A
	 * startup value is the raw setting, as PostgreSQL applies it: for a
	 * list (search_path "a,b") SET would take one quoted string as one
	 * element, set_config parses it as the server does at startup. */
	for (size_t i = 0; i < s->startup.n; i++) {
		session_entry *e = &s->startup.items[i];
		put(&buf, &len, &cap, "SELECT pg_catalog.set_config(", 29);
		put_literal(&buf, &len, &cap, e->name);
		put(&buf, &len, &cap, ", ", 2);
		put_literal(&buf, &len, &cap, e->text);
		put(&buf, &len, &cap, ", false);", 9);
	}
	for (size_t i = 0; i < s->sets.n; i++) {
		session_entry *e = &s->sets.items[i];
		put(&buf, &len, &cap, e->text, strlen(e->text));
		put(&buf, &len, &cap, ";", 1);
		s->role_changed |= is_role_param(e->name);
	}
	if (len && !buf)
		return -1;
	free(s->sync_sql);
	s->sync_sql = buf;
	s->sync_len = len;
	/* 0 is kept for "nothing set". */
	uint64_t h = 0;
	if (len) {
		h = pgw_hash(buf, len);
		if (h == 0)
			h = 1;
	}
	s->hash = h;
	return 0;
}

const char *session_sync_prefix(const session *s, bool have_role)
{
	/* RESET ALL leaves a role change in place, so that is undone first. */
	return have_role || s->role_changed ? "SET SESSION AUTHORIZATION DEFAULT;RESET ALL;"
					    : "RESET ALL;";
}
