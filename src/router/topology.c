/*
 * The static topology: a list of (database, role, address) read once.
 */
#include "router/topology.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct topo_entry {
	char *database;
	topology_role role;
	char *address;
} topo_entry;

typedef struct static_topology {
	topology_source base; /* first */
	topo_entry *entries;
	size_t n;
} static_topology;

static const char *static_lookup(const topology_source *src, const char *database, topology_role role,
				 unsigned nth)
{
	const static_topology *t = (const static_topology *)src;
	/* A database named in the file takes its own entries; '*' only
	 * serves the others. */
	for (int pass = 0; pass < 2; pass++) {
		const char *want = pass == 0 ? database : "*";
		size_t count = 0;
		for (size_t i = 0; i < t->n; i++)
			if (t->entries[i].role == role && strcmp(t->entries[i].database, want) == 0)
				count++;
		if (!count)
			continue;
		size_t k = nth % count;
		for (size_t i = 0; i < t->n; i++)
			if (t->entries[i].role == role && strcmp(t->entries[i].database, want) == 0 && k-- == 0)
				return t->entries[i].address;
	}
	return NULL;
}

static void static_free(topology_source *src)
{
	static_topology *t = (static_topology *)src;
	for (size_t i = 0; i < t->n; i++) {
		free(t->entries[i].database);
		free(t->entries[i].address);
	}
	free(t->entries);
	free(t);
}

static static_topology *static_new(void)
{
	static_topology *t = calloc(1, sizeof *t);
	if (t) {
		t->base.lookup = static_lookup;
		t->base.free = static_free;
	}
	return t;
}

static int add_entry(static_topology *t, const char *db, topology_role role, const char *addr)
{
	topo_entry *e = realloc(t->entries, (t->n + 1) * sizeof *e);
	if (!e)
		return -1;
	t->entries = e;
	e[t->n] = (topo_entry){strdup(db), role, strdup(addr)};
	if (!e[t->n].database || !e[t->n].address) {
		free(e[t->n].database);
		free(e[t->n].address);
		return -1;
	}
	t->n++;
	return 0;
}

topology_source *topology_single(const char *address)
{
	static_topology *t = static_new();
	if (!t || add_entry(t, "*", TOPOLOGY_PRIMARY, address) != 0) {
		if (t)
			static_free(&t->base);
		return NULL;
	}
	return &t->base;
}

topology_source *topology_load_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open topology file \"%s\"", path);
		return NULL;
	}
	static_topology *t = static_new();
	if (!t) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	char line[1024];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char db[256], role[32], addr[512], extra[2];
		int n = sscanf(line, "%255s %31s %511s %1s", db, role, addr, extra);
		if (n <= 0)
			continue;
		topology_role r;
		if (n != 3) {
			snprintf(err, errlen, "%s:%d: want DATABASE primary|replica HOST:PORT", path, lineno);
			goto fail;
		}
		if (strcmp(role, "primary") == 0)
			r = TOPOLOGY_PRIMARY;
		else if (strcmp(role, "replica") == 0)
			r = TOPOLOGY_REPLICA;
		else {
			snprintf(err, errlen, "%s:%d: role \"%s\" is neither primary nor replica", path, lineno,
				 role);
			goto fail;
		}
		if (addr[0] != '/' && !strchr(addr, ':')) {
			snprintf(err, errlen, "%s:%d: address \"%s\" is not HOST:PORT or a socket path", path,
				 lineno, addr);
			goto fail;
		}
		if (add_entry(t, db, r, addr) != 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	fclose(f);
	if (t->n == 0) {
		snprintf(err, errlen, "%s: no pooler listed", path);
		static_free(&t->base);
		return NULL;
	}
	return &t->base;
fail:
	fclose(f);
	static_free(&t->base);
	return NULL;
}
