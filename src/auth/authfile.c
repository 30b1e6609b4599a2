/*
 * The auth file: a sorted array of (user, secret) searched by name.
 * Quoting as in PgBouncer: double quotes around each field, "" inside
 * stands for one quote.
 */
#include "auth/authfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct authfile_entry {
	char *user;
	char *secret;
} authfile_entry;

struct authfile {
	authfile_entry *entries;
	size_t n;
};

/* One quoted field at *pp; returns a malloc'd copy or NULL. */
static char *quoted(const char **pp)
{
	const char *p = *pp;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '"')
		return NULL;
	p++;
	size_t cap = strlen(p) + 1, n = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	for (;;) {
		if (!*p) {
			free(out);
			return NULL;
		}
		if (*p == '"') {
			if (p[1] != '"')
				break;
			p++;
		}
		out[n++] = *p++;
	}
	out[n] = '\0';
	*pp = p + 1;
	return out;
}

static int by_user(const void *a, const void *b)
{
	return strcmp(((const authfile_entry *)a)->user, ((const authfile_entry *)b)->user);
}

authfile *authfile_load(const char *path, char *err, size_t errcap)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errcap, "could not open auth file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	authfile *f = calloc(1, sizeof *f);
	size_t cap = 0;
	char line[8192];
	int lineno = 0;
	while (f && fgets(line, sizeof line, fp)) {
		lineno++;
		const char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\r' || *p == '\0' || *p == ';' || *p == '#')
			continue;
		char *user = quoted(&p), *secret = user ? quoted(&p) : NULL;
		while (secret && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
		if (!user || !secret || *p || !user[0]) {
			snprintf(err, errcap, "%s:%d: want \"user\" \"secret\"", path, lineno);
			free(user);
			free(secret);
			authfile_free(f);
			f = NULL;
			break;
		}
		if (f->n == cap) {
			cap = cap ? cap * 2 : 16;
			authfile_entry *e = realloc(f->entries, cap * sizeof *e);
			if (!e) {
				free(user);
				free(secret);
				authfile_free(f);
				f = NULL;
				snprintf(err, errcap, "out of memory");
				break;
			}
			f->entries = e;
		}
		f->entries[f->n++] = (authfile_entry){user, secret};
	}
	fclose(fp);
	if (f)
		qsort(f->entries, f->n, sizeof f->entries[0], by_user);
	else if (!err[0])
		snprintf(err, errcap, "out of memory");
	return f;
}

void authfile_free(authfile *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->entries[i].user);
		/* secrets do not linger in freed memory */
		memset(f->entries[i].secret, 0, strlen(f->entries[i].secret));
		free(f->entries[i].secret);
	}
	free(f->entries);
	free(f);
}

const char *authfile_secret(const authfile *f, const char *user)
{
	if (!f)
		return NULL;
	authfile_entry key = {(char *)user, NULL};
	authfile_entry *e = bsearch(&key, f->entries, f->n, sizeof key, by_user);
	return e ? e->secret : NULL;
}
