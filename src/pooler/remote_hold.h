/*
 * What a remote hold needs to run in as few calls as possible: which
 * statements may run without a reservation (a pooled connection serves
 * them and the pooler reserves one only if they leave it in a
 * transaction), and the gateway's settings replay turned into
 * ExecuteOptions.session_settings that ride with every call of the hold.
 */
#ifndef PGW_REMOTE_HOLD_H
#define PGW_REMOTE_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query.pb-c.h"

#define RHOLD_MAX_SETTINGS 32
#define RHOLD_MAX_KNOWN 64

/* Settings as the pooler applies them (set_config(name, value, false)). */
typedef struct rhold_settings {
	size_t n;
	char *names[RHOLD_MAX_SETTINGS];
	char *values[RHOLD_MAX_SETTINGS];
	Query__ExecuteOptions__SessionSettingsEntry ents[RHOLD_MAX_SETTINGS];
	Query__ExecuteOptions__SessionSettingsEntry *ptrs[RHOLD_MAX_SETTINGS];
} rhold_settings;

/* Settings replays the server accepted, by (database, user, text). */
typedef struct rhold_known {
	uint64_t keys[RHOLD_MAX_KNOWN];
	unsigned next;
} rhold_known;

/*
 * Can sql (a simple Query's text, or one extended statement) run on any
 * pooled connection? True when none of its statements can leave state on
 * the connection beyond an open transaction (which the pooler reserves by
 * itself): no SET, LISTEN, PREPARE, temporary object, advisory lock,
 * WITH HOLD cursor, BEGIN (a pooler that does not reserve on its own
 * would lose it), ...
 */
bool rhold_plain(const char *sql, size_t len);

/* Is sql the reset the gateway sends ahead of a settings replay? */
bool rhold_is_reset(const char *sql, size_t len);

/*
 * Parse a settings replay: only `SELECT pg_catalog.set_config(E'name',
 * E'value', false);` statements, as the gateway writes them for startup
 * parameters, with names whose effect the settings map carries exactly
 * (application_name and client_encoding among the reported parameters,
 * none of the others; no role). Returns 0 and fills s (when s is not
 * NULL), or -1.
 */
int rhold_parse(rhold_settings *s, const char *sql, size_t len);
/* Is this parsed name one the server reports with ParameterStatus? */
bool rhold_reported(const char *name);
void rhold_clear(rhold_settings *s);
/* Put s in o's session_settings (s must outlive the request). */
void rhold_fill(rhold_settings *s, Query__ExecuteOptions *o);

uint64_t rhold_key(const char *database, const char *user, const char *sql, size_t len);
bool rhold_known_has(const rhold_known *k, uint64_t key);
void rhold_known_add(rhold_known *k, uint64_t key);

#endif
