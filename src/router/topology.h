/*
 * Where each database's poolers are: a primary and replicas, by address.
 * One small interface so that another source (etcd, in multigres's key
 * layout) can stand in for the static file later. A source is read-only
 * once loaded and shared by every worker.
 */
#ifndef PGW_TOPOLOGY_H
#define PGW_TOPOLOGY_H

#include <stddef.h>

typedef enum topology_role { TOPOLOGY_PRIMARY = 0, TOPOLOGY_REPLICA } topology_role;

typedef struct topology_source topology_source;
struct topology_source {
	/* The address of a pooler serving database in role, NULL when none.
	 * nth picks among several (replicas); it wraps around. */
	const char *(*lookup)(const topology_source *src, const char *database, topology_role role,
			      unsigned nth);
	void (*free)(topology_source *src);
};

/*
 * The static file: one pooler per line, '#' starts a comment:
 *     DATABASE  primary|replica  HOST:PORT
 * DATABASE '*' serves databases not named elsewhere. Returns NULL with
 * err filled on a malformed file.
 */
topology_source *topology_load_file(const char *path, char *err, size_t errlen);
/* Every database to one pooler (the --pooler flag). */
topology_source *topology_single(const char *address);

static inline const char *topology_lookup(const topology_source *s, const char *database,
					  topology_role role, unsigned nth)
{
	return s->lookup(s, database, role, nth);
}

#endif
