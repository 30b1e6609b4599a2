/*
 * The remote hold's shortcuts: statements that need no reservation, and
 * the gateway's settings replay read back into a settings map (see
 * remote_hold.h). Both are conservative: what is not recognised takes the
 * long way, which is always correct.
 */
#include "pooler/remote_hold.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hash.h"
#include "sql/stmt.h"

#define PLAIN_MAX_STMTS 16

bool rhold_plain(const char *sql, size_t len)
{
	stmt_info st[PLAIN_MAX_STMTS];
	size_t total = stmt_classify(sql, len, st, PLAIN_MAX_STMTS);
	if (total == 0 || total > PLAIN_MAX_STMTS)
		return false;
	for (size_t i = 0; i < total; i++) {
		if (st[i].flags & (STMT_F_TEMP_OBJECT | STMT_F_ADVISORY_LOCK | STMT_F_ADVISORY_UNLOCK |
				   STMT_F_WITH_HOLD | STMT_F_UNTERMINATED | STMT_F_AND_CHAIN | STMT_F_SET_CONFIG |
				   STMT_F_SESSION_DEFAULTS))
			return false;
		switch (st[i].kind) {
		case STMT_EMPTY:
		case STMT_OTHER:
		case STMT_ALTER_DATABASE:
		case STMT_COMMIT:
		case STMT_ROLLBACK:
		case STMT_SAVEPOINT_OP:
		case STMT_SET_LOCAL:
		case STMT_SET_CONSTRAINTS:
		case STMT_NOTIFY:
		case STMT_DECLARE_CURSOR:
		case STMT_FETCH:
		case STMT_CLOSE_CURSOR:
			break;
		default:
			return false;
		}
	}
	return true;
}

bool rhold_is_reset(const char *sql, size_t len)
{
	static const char reset[] = "RESET ALL;";
	return len == sizeof reset - 1 && memcmp(sql, reset, len) == 0;
}

/* E'...' as the gateway quotes: ' and \ doubled. Returns the text after
 * the literal, or NULL; *out gets a copy of the value. */
static const char *take_literal(const char *p, const char *end, char **out)
{
	if (end - p < 3 || p[0] != 'E' || p[1] != '\'')
		return NULL;
	p += 2;
	char *v = malloc((size_t)(end - p) + 1);
	if (!v)
		return NULL;
	size_t n = 0;
	while (p < end) {
		if (*p == '\'' || *p == '\\') {
			if (p + 1 < end && p[1] == *p) {
				v[n++] = *p;
				p += 2;
				continue;
			}
			if (*p == '\\')
				break; /* a lone backslash: not the gateway's */
			v[n] = '\0';
			*out = v;
			return p + 1;
		}
		v[n++] = *p++;
	}
	free(v);
	return NULL;
}

/* Encoding names as the server reports them (pg_encoding_to_char). */
static bool canonical_encoding(const char *v)
{
	static const char *const names[] = {
		"UTF8",	  "SQL_ASCII", "LATIN1",  "LATIN2",  "LATIN3",	"LATIN4",  "LATIN5",  "LATIN6",
		"LATIN7", "LATIN8",    "LATIN9",  "LATIN10", "WIN1250", "WIN1251", "WIN1252", "WIN1253",
		"WIN1254", "WIN1255",  "WIN1256", "WIN1257", "WIN1258", "WIN866",  "WIN874",  "EUC_JP",
		"EUC_CN", "EUC_KR",    "EUC_TW",  "SJIS",    "BIG5",	"GBK",	   "UHC",     "GB18030",
		"KOI8R",  "KOI8U",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(v, names[i]) == 0)
			return true;
	return false;
}

bool rhold_reported(const char *name)
{
	return strcmp(name, "application_name") == 0 || strcmp(name, "client_encoding") == 0;
}

/*
 * Names the map carries exactly. A reported parameter (GUC_REPORT) owes
 * the gateway a ParameterStatus with the server's spelling of the value,
 * known only for application_name in plain ASCII and client_encoding in
 * its canonical name; a role changes who later statements run as, which
 * a replay must order.
 */
static bool name_ok(const char *name, const char *value)
{
	static const char *const refused[] = {
		"datestyle", "default_transaction_read_only", "in_hot_standby",
		"integer_datetimes",	       "intervalstyle", "is_superuser", "server_encoding",
		"server_version",	       "session_authorization", "standard_conforming_strings", "timezone",
		"role",
	};
	if (!name[0])
		return false;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (strcasecmp(name, refused[i]) == 0)
			return false;
	if (strcasecmp(name, "client_encoding") == 0)
		return strcmp(name, "client_encoding") == 0 && canonical_encoding(value);
	if (strcasecmp(name, "application_name") == 0) {
		if (strcmp(name, "application_name") != 0)
			return false;
		size_t n = strlen(value);
		if (n >= 64)
			return false;
		for (size_t i = 0; i < n; i++)
			if (value[i] < 32 || value[i] > 126)
				return false;
	}
	return true;
}

int rhold_parse(rhold_settings *s, const char *sql, size_t len)
{
	static const char head[] = "SELECT pg_catalog.set_config(";
	const char *p = sql, *end = sql + len;
	rhold_settings tmp = {0};
	if (len == 0)
		return -1;
	while (p < end) {
		char *name = NULL, *value = NULL;
		if ((size_t)(end - p) < sizeof head - 1 || memcmp(p, head, sizeof head - 1) != 0)
			goto fail;
		p += sizeof head - 1;
		p = take_literal(p, end, &name);
		if (!p)
			goto fail;
		if (end - p < 2 || p[0] != ',' || p[1] != ' ') {
			free(name);
			goto fail;
		}
		p = take_literal(p + 2, end, &value);
		if (!p || (size_t)(end - p) < 9 || memcmp(p, ", false);", 9) != 0 ||
		    tmp.n == RHOLD_MAX_SETTINGS || !name_ok(name, value)) {
			free(name);
			free(value);
			goto fail;
		}
		p += 9;
		tmp.names[tmp.n] = name;
		tmp.values[tmp.n] = value;
		tmp.n++;
	}
	if (s) {
		rhold_clear(s);
		*s = tmp;
	} else {
		rhold_clear(&tmp);
	}
	return 0;
fail:
	rhold_clear(&tmp);
	return -1;
}

void rhold_clear(rhold_settings *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->names[i]);
		free(s->values[i]);
	}
	s->n = 0;
}

void rhold_fill(rhold_settings *s, Query__ExecuteOptions *o)
{
	for (size_t i = 0; i < s->n; i++) {
		query__execute_options__session_settings_entry__init(&s->ents[i]);
		s->ents[i].key = s->names[i];
		s->ents[i].value = s->values[i];
		s->ptrs[i] = &s->ents[i];
	}
	o->n_session_settings = s->n;
	o->session_settings = s->n ? s->ptrs : NULL;
}

uint64_t rhold_key(const char *database, const char *user, const char *sql, size_t len)
{
	uint64_t h = pgw_hash_add(PGW_HASH_SEED, database, strlen(database) + 1);
	h = pgw_hash_add(h, user, strlen(user) + 1);
	h = pgw_hash_end(pgw_hash_add(h, sql, len));
	return h ? h : 1;
}

bool rhold_known_has(const rhold_known *k, uint64_t key)
{
	for (unsigned i = 0; i < RHOLD_MAX_KNOWN; i++)
		if (k->keys[i] == key)
			return true;
	return false;
}

void rhold_known_add(rhold_known *k, uint64_t key)
{
	if (rhold_known_has(k, key))
		return;
	k->keys[k->next] = key;
	k->next = (k->next + 1) % RHOLD_MAX_KNOWN;
}
