/*
 * pg_hba.conf rules: the tokenizer and line parser follow PostgreSQL 15's
 * hba.c (same tokens, same checks in the same order, same messages), and
 * refuse what the gateway cannot enforce; hba_check is check_hba().
 */
#include "auth/hba.h"

#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Larger than any sane rule file; stops us from slurping a wrong path
 * like /dev/zero into memory. */
#define HBA_MAX_FILE_SIZE (16 * 1024 * 1024)

typedef enum name_kind {
	NAME_LITERAL,
	NAME_ALL,
	NAME_SAMEUSER,	  /* database field only */
	NAME_REPLICATION, /* database field only */
} name_kind;

typedef struct hba_name {
	name_kind kind;
	char *name; /* NAME_LITERAL only */
} hba_name;

typedef enum addr_cmp {
	ADDR_ALL,
	ADDR_MASK,
	ADDR_SAMEHOST,
	ADDR_SAMENET,
} addr_cmp;

typedef enum clientcert_mode {
	CLIENTCERT_NONE,
	CLIENTCERT_CA,
	CLIENTCERT_FULL,
} clientcert_mode;

typedef struct hba_rule {
	int line;
	hba_conn_type conn;
	hba_name *dbs;
	size_t ndbs;
	hba_name *users;
	size_t nusers;
	addr_cmp cmp;
	struct sockaddr_storage addr; /* ADDR_MASK */
	struct sockaddr_storage mask;
	hba_method method;
	clientcert_mode clientcert;
} hba_rule;

struct hba_rules {
	hba_rule *rules;
	size_t n;
};

const char *hba_strerror(int status)
{
	switch ((hba_status)status) {
	case HBA_OK:
		return "success";
	case HBA_ERR_CONFIG:
		return "invalid authentication rules";
	case HBA_ERR_IO:
		return "cannot read the authentication rules file";
	case HBA_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown hba status";
}

const char *hba_method_name(hba_method m)
{
	switch (m) {
	case HBA_TRUST:
		return "trust";
	case HBA_REJECT:
		return "reject";
	case HBA_SCRAM:
		return "scram-sha-256";
	case HBA_MD5:
		return "md5";
	case HBA_PASSWORD:
		return "password";
	case HBA_CERT:
		return "cert";
	}
	return "unknown";
}

/* ---- errors */

typedef struct parse_ctx {
	const char *file;
	int line;
	char *err;
	size_t errcap;
} parse_ctx;

static void hba_set_err(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void hba_set_err(char *err, size_t cap, const char *fmt, ...)
{
	if (err == NULL || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

/* A config error on the current line, with PostgreSQL's CONTEXT wording
 * appended so one string says what and where. Returns HBA_ERR_CONFIG. */
static int hba_line_err(parse_ctx *pc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int hba_line_err(parse_ctx *pc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	hba_set_err(pc->err, pc->errcap, "%s (line %d of configuration file \"%s\")", msg, pc->line,
		    pc->file);
	return HBA_ERR_CONFIG;
}

/* ---- tokenizer: a logical line into fields, each a list of tokens */

typedef struct hba_token {
	char *s;
	bool quoted; /* began with a quote: never a keyword, never @file */
} hba_token;

typedef struct hba_field {
	hba_token *tok;
	size_t n;
} hba_field;

typedef struct hba_line {
	hba_field *fields;
	size_t n;
	size_t cap;
} hba_line;

static void hba_line_free(hba_line *ln)
{
	for (size_t i = 0; i < ln->n; i++) {
		for (size_t j = 0; j < ln->fields[i].n; j++)
			free(ln->fields[i].tok[j].s);
		free(ln->fields[i].tok);
	}
	free(ln->fields);
	memset(ln, 0, sizeof *ln);
}

/* pg_isblank: \r counts, so CRLF files and stray CRs tokenize alike. */
static bool hba_is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * PostgreSQL's next_token(): one token from *lp into buf (room for the rest
 * of the line), up to unquoted whitespace, an unquoted comma (reported in
 * *comma, not stored) or a comment. Quotes are dropped, "" inside quotes is
 * a quote. Returns false at the end of the line.
 */
static bool hba_next_token(const char **lp, char *buf, bool *initial_quote, bool *comma)
{
	int c;
	size_t len = 0;
	bool in_quote = false, was_quote = false, saw_quote = false;

	*initial_quote = false;
	*comma = false;
	while ((c = (unsigned char)*(*lp)++) != '\0' && (hba_is_blank(c) || c == ','))
		;
	while (c != '\0' && (!hba_is_blank(c) || in_quote)) {
		if (c == '#' && !in_quote) {
			while ((c = (unsigned char)*(*lp)++) != '\0')
				;
			break;
		}
		if (c == ',' && !in_quote) {
			*comma = true;
			break;
		}
		if (c != '"' || was_quote)
			buf[len++] = (char)c;
		if (in_quote && c == '"')
			was_quote = !was_quote;
		else
			was_quote = false;
		if (c == '"') {
			in_quote = !in_quote;
			saw_quote = true;
			if (len == 0)
				*initial_quote = true;
		}
		c = (unsigned char)*(*lp)++;
	}
	/* Back onto the character that ended the token (maybe the NUL). */
	(*lp)--;
	buf[len] = '\0';
	return saw_quote || len > 0;
}

/* One field: tokens joined by commas (next_field_expand without @file). */
static int hba_next_field(parse_ctx *pc, const char **lp, char *buf, hba_field *f)
{
	bool quoted, comma;
	memset(f, 0, sizeof *f);
	do {
		if (!hba_next_token(lp, buf, &quoted, &comma))
			break;
		if (!quoted && buf[0] == '@' && buf[1] != '\0')
			return hba_line_err(pc,
					    "secondary authentication file \"%s\" is not supported by "
					    "this gateway",
					    buf);
		hba_token *t = realloc(f->tok, (f->n + 1) * sizeof *t);
		if (t == NULL)
			return HBA_ERR_NOMEM;
		f->tok = t;
		t[f->n].s = strdup(buf);
		if (t[f->n].s == NULL)
			return HBA_ERR_NOMEM;
		t[f->n].quoted = quoted;
		f->n++;
	} while (comma);
	return HBA_OK;
}

static int hba_tokenize_line(parse_ctx *pc, const char *text, hba_line *ln)
{
	size_t len = strlen(text);
	char *buf = malloc(len + 1);
	if (buf == NULL)
		return HBA_ERR_NOMEM;
	const char *lp = text;
	int rc = HBA_OK;
	while (*lp != '\0') {
		hba_field f;
		rc = hba_next_field(pc, &lp, buf, &f);
		if (rc == HBA_OK && f.n > 0 && ln->n == ln->cap) {
			size_t cap = ln->cap ? ln->cap * 2 : 8;
			hba_field *nf = realloc(ln->fields, cap * sizeof *nf);
			if (nf == NULL)
				rc = HBA_ERR_NOMEM;
			else {
				ln->fields = nf;
				ln->cap = cap;
			}
		}
		if (rc != HBA_OK || f.n == 0) {
			for (size_t j = 0; j < f.n; j++)
				free(f.tok[j].s);
			free(f.tok);
			if (rc != HBA_OK)
				break;
			continue;
		}
		ln->fields[ln->n++] = f;
	}
	free(buf);
	return rc;
}

/* ---- line parser (parse_hba_line) */

static bool hba_is_keyword(const hba_token *t, const char *kw)
{
	return !t->quoted && strcmp(t->s, kw) == 0;
}

static void hba_rule_free(hba_rule *r)
{
	for (size_t i = 0; i < r->ndbs; i++)
		free(r->dbs[i].name);
	free(r->dbs);
	for (size_t i = 0; i < r->nusers; i++)
		free(r->users[i].name);
	free(r->users);
}

/* The database or user field. Keywords are resolved here, once; what the
 * gateway cannot evaluate is refused rather than left never matching. */
static int hba_parse_names(parse_ctx *pc, const hba_field *f, bool is_db, hba_name **out,
			   size_t *nout)
{
	hba_name *names = calloc(f->n, sizeof *names);
	if (names == NULL)
		return HBA_ERR_NOMEM;
	*out = names;
	for (size_t i = 0; i < f->n; i++) {
		const hba_token *t = &f->tok[i];
		const char *what = is_db ? "database" : "user";
		/* PostgreSQL 16 reads a leading slash as a regular expression,
		 * 15 as part of the name: neither guess is safe. */
		if (t->s[0] == '/')
			return hba_line_err(pc,
					    "regular expression \"%s\" in the %s field is not "
					    "supported by this gateway",
					    t->s, what);
		if (hba_is_keyword(t, "all")) {
			names[i].kind = NAME_ALL;
		} else if (is_db && hba_is_keyword(t, "sameuser")) {
			names[i].kind = NAME_SAMEUSER;
		} else if (is_db && hba_is_keyword(t, "replication")) {
			names[i].kind = NAME_REPLICATION;
		} else if (is_db && (hba_is_keyword(t, "samerole") || hba_is_keyword(t, "samegroup"))) {
			return hba_line_err(pc,
					    "database keyword \"%s\" is not supported by this gateway "
					    "(it cannot check role membership)",
					    t->s);
		} else if (!is_db && !t->quoted && t->s[0] == '+') {
			return hba_line_err(pc,
					    "group membership \"%s\" in the user field is not "
					    "supported by this gateway",
					    t->s);
		} else {
			names[i].kind = NAME_LITERAL;
			names[i].name = strdup(t->s);
			if (names[i].name == NULL)
				return HBA_ERR_NOMEM;
		}
		(*nout)++;
	}
	return HBA_OK;
}

/* pg_sockaddr_cidr_mask: numbits NULL means all ones. */
static int hba_cidr_mask(struct sockaddr_storage *mask, const char *numbits, int family)
{
	long bits;
	if (numbits == NULL) {
		bits = family == AF_INET ? 32 : 128;
	} else {
		char *end;
		errno = 0;
		bits = strtol(numbits, &end, 10);
		if (*numbits == '\0' || *end != '\0' || errno != 0)
			return -1;
	}
	memset(mask, 0, sizeof *mask);
	if (family == AF_INET) {
		if (bits < 0 || bits > 32)
			return -1;
		struct sockaddr_in *m4 = (struct sockaddr_in *)mask;
		/* bits == 0 separately: a shift by 32 is undefined. */
		uint32_t m = bits > 0 ? 0xffffffffu << (32 - bits) : 0;
		m4->sin_family = AF_INET;
		m4->sin_addr.s_addr = htonl(m);
		return 0;
	}
	if (family == AF_INET6) {
		if (bits < 0 || bits > 128)
			return -1;
		struct sockaddr_in6 *m6 = (struct sockaddr_in6 *)mask;
		m6->sin6_family = AF_INET6;
		for (int i = 0; i < 16; i++) {
			if (bits <= 0)
				m6->sin6_addr.s6_addr[i] = 0;
			else if (bits >= 8)
				m6->sin6_addr.s6_addr[i] = 0xff;
			else
				m6->sin6_addr.s6_addr[i] = (uint8_t)((0xff << (8 - bits)) & 0xff);
			bits -= 8;
		}
		return 0;
	}
	return -1;
}

/* A numeric address as PostgreSQL reads one: getaddrinfo with
 * AI_NUMERICHOST, so "10.1" and the like mean what they mean there. */
static int hba_numeric_addr(const char *s, struct sockaddr_storage *out)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST;
	hints.ai_family = AF_UNSPEC;
	int ret = getaddrinfo(s, NULL, &hints, &res);
	if (ret == 0 && res == NULL)
		ret = EAI_NONAME;
	if (ret == 0) {
		if (res->ai_addrlen > sizeof *out ||
		    (res->ai_family != AF_INET && res->ai_family != AF_INET6))
			ret = EAI_FAMILY;
		else {
			memset(out, 0, sizeof *out);
			memcpy(out, res->ai_addr, res->ai_addrlen);
		}
	}
	if (res != NULL)
		freeaddrinfo(res);
	return ret;
}

static const char *hba_conn_name(hba_conn_type c)
{
	switch (c) {
	case HBA_LOCAL:
		return "local";
	case HBA_HOST:
		return "host";
	case HBA_HOSTSSL:
		return "hostssl";
	case HBA_HOSTNOSSL:
		return "hostnossl";
	case HBA_HOSTGSSENC:
		return "hostgssenc";
	case HBA_HOSTNOGSSENC:
		return "hostnogssenc";
	}
	return "?";
}

/* The address field, and the netmask field after it when there is one;
 * *fi is left on the last field used. */
static int hba_parse_address(parse_ctx *pc, const hba_line *ln, size_t *fi, hba_rule *r)
{
	if (++*fi >= ln->n)
		return hba_line_err(pc, "end-of-line before IP address specification");
	const hba_field *f = &ln->fields[*fi];
	if (f->n > 1)
		return hba_line_err(pc, "multiple values specified for host address");
	const hba_token *t = &f->tok[0];
	if (hba_is_keyword(t, "all")) {
		r->cmp = ADDR_ALL;
		return HBA_OK;
	}
	if (hba_is_keyword(t, "samehost")) {
		r->cmp = ADDR_SAMEHOST;
		return HBA_OK;
	}
	if (hba_is_keyword(t, "samenet")) {
		r->cmp = ADDR_SAMENET;
		return HBA_OK;
	}
	r->cmp = ADDR_MASK;
	char *str = strdup(t->s);
	if (str == NULL)
		return HBA_ERR_NOMEM;
	char *slash = strchr(str, '/');
	if (slash != NULL)
		*slash = '\0';
	int ret = hba_numeric_addr(str, &r->addr);
	if (ret == EAI_NONAME) {
		/* PostgreSQL would take it for a host name and resolve the
		 * client's address at every login; we do no DNS on the login
		 * path. */
		int rc = hba_line_err(pc,
				      "invalid IP address \"%s\": host names are not supported by "
				      "this gateway",
				      t->s);
		free(str);
		return rc;
	}
	if (ret != 0) {
		int rc = hba_line_err(pc, "invalid IP address \"%s\": %s", str, gai_strerror(ret));
		free(str);
		return rc;
	}
	if (slash != NULL) {
		int bad = hba_cidr_mask(&r->mask, slash + 1, r->addr.ss_family);
		free(str);
		if (bad)
			return hba_line_err(pc, "invalid CIDR mask in address \"%s\"", t->s);
		return HBA_OK;
	}
	free(str);

	if (++*fi >= ln->n)
		return hba_line_err(pc, "end-of-line before netmask specification");
	f = &ln->fields[*fi];
	if (f->n > 1)
		return hba_line_err(pc, "multiple values specified for netmask");
	t = &f->tok[0];
	ret = hba_numeric_addr(t->s, &r->mask);
	if (ret != 0)
		return hba_line_err(pc, "invalid IP mask \"%s\": %s", t->s, gai_strerror(ret));
	if (r->addr.ss_family != r->mask.ss_family)
		return hba_line_err(pc, "IP address and mask do not match");
	return HBA_OK;
}

static int hba_parse_method(parse_ctx *pc, const hba_field *f, hba_rule *r)
{
	static const char *const unsupported[] = {"ident", "peer", "gss",  "sspi",
						   "pam",   "bsd",  "ldap", "radius"};
	if (f->n > 1)
		return hba_line_err(pc, "multiple values specified for authentication type");
	const char *s = f->tok[0].s;
	if (strcmp(s, "trust") == 0)
		r->method = HBA_TRUST;
	else if (strcmp(s, "reject") == 0)
		r->method = HBA_REJECT;
	else if (strcmp(s, "scram-sha-256") == 0)
		r->method = HBA_SCRAM;
	else if (strcmp(s, "md5") == 0)
		r->method = HBA_MD5;
	else if (strcmp(s, "password") == 0)
		r->method = HBA_PASSWORD;
	else if (strcmp(s, "cert") == 0)
		r->method = HBA_CERT;
	else {
		for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
			if (strcmp(s, unsupported[i]) == 0)
				return hba_line_err(pc,
						    "authentication method \"%s\" is not supported by "
						    "this gateway",
						    s);
		return hba_line_err(pc, "invalid authentication method \"%s\"", s);
	}
	if (r->method == HBA_CERT && r->conn != HBA_HOSTSSL)
		return hba_line_err(pc,
				    "cert authentication is only supported on hostssl connections");
	return HBA_OK;
}

/* parse_hba_auth_opt for the one option the gateway acts on. */
static int hba_parse_option(parse_ctx *pc, const char *name, const char *val, hba_rule *r)
{
	/* Options PostgreSQL 15 knows; each needs something the gateway
	 * lacks (an ident map, a directory, a certificate DN match). */
	static const char *const unsupported[] = {
		"map",		     "clientname",	 "pamservice",	     "pam_use_hostname",
		"ldaptls",	     "ldapscheme",	 "ldapserver",	     "ldapport",
		"ldapbinddn",	     "ldapbindpasswd",	 "ldapsearchattribute", "ldapsearchfilter",
		"ldapbasedn",	     "ldapprefix",	 "ldapsuffix",	     "ldapurl",
		"krb_realm",	     "include_realm",	 "compat_realm",     "upn_username",
		"radiusservers",     "radiusserver",	 "radiussecrets",    "radiussecret",
		"radiusidentifiers", "radiusidentifier", "radiusports",	     "radiusport",
	};
	if (strcmp(name, "clientcert") == 0) {
		if (r->conn != HBA_HOSTSSL)
			return hba_line_err(pc,
					    "clientcert can only be configured for \"hostssl\" rows");
		if (strcmp(val, "verify-full") == 0) {
			r->clientcert = CLIENTCERT_FULL;
		} else if (strcmp(val, "verify-ca") == 0) {
			if (r->method == HBA_CERT)
				return hba_line_err(pc,
						    "clientcert only accepts \"verify-full\" when "
						    "using \"cert\" authentication");
			r->clientcert = CLIENTCERT_CA;
		} else {
			return hba_line_err(pc, "invalid value for clientcert: \"%s\"", val);
		}
		return HBA_OK;
	}
	for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
		if (strcmp(name, unsupported[i]) == 0)
			return hba_line_err(pc,
					    "authentication option \"%s\" is not supported by this "
					    "gateway",
					    name);
	return hba_line_err(pc, "unrecognized authentication option name: \"%s\"", name);
}

static int hba_parse_line(parse_ctx *pc, const hba_line *ln, hba_rule *r)
{
	size_t fi = 0;
	const hba_field *f = &ln->fields[0];
	memset(r, 0, sizeof *r);
	r->line = pc->line;

	if (f->n > 1)
		return hba_line_err(pc, "multiple values specified for connection type");
	const char *ct = f->tok[0].s;
	static const hba_conn_type types[] = {HBA_LOCAL,     HBA_HOST,	      HBA_HOSTSSL,
					      HBA_HOSTNOSSL, HBA_HOSTGSSENC, HBA_HOSTNOGSSENC};
	size_t k = 0;
	while (k < sizeof types / sizeof types[0] && strcmp(ct, hba_conn_name(types[k])) != 0)
		k++;
	if (k == sizeof types / sizeof types[0])
		return hba_line_err(pc, "invalid connection type \"%s\"", ct);
	r->conn = types[k];

	if (++fi >= ln->n)
		return hba_line_err(pc, "end-of-line before database specification");
	int rc = hba_parse_names(pc, &ln->fields[fi], true, &r->dbs, &r->ndbs);
	if (rc != HBA_OK)
		return rc;
	if (++fi >= ln->n)
		return hba_line_err(pc, "end-of-line before role specification");
	rc = hba_parse_names(pc, &ln->fields[fi], false, &r->users, &r->nusers);
	if (rc != HBA_OK)
		return rc;

	if (r->conn != HBA_LOCAL) {
		rc = hba_parse_address(pc, ln, &fi, r);
		if (rc != HBA_OK)
			return rc;
	}

	if (++fi >= ln->n)
		return hba_line_err(pc, "end-of-line before authentication method");
	rc = hba_parse_method(pc, &ln->fields[fi], r);
	if (rc != HBA_OK)
		return rc;

	while (++fi < ln->n) {
		f = &ln->fields[fi];
		for (size_t i = 0; i < f->n; i++) {
			const char *tok = f->tok[i].s;
			const char *eq = strchr(tok, '=');
			if (eq == NULL)
				return hba_line_err(
					pc, "authentication option not in name=value format: %s", tok);
			char *name = strndup(tok, (size_t)(eq - tok));
			if (name == NULL)
				return HBA_ERR_NOMEM;
			rc = hba_parse_option(pc, name, eq + 1, r);
			free(name);
			if (rc != HBA_OK)
				return rc;
		}
	}
	/* cert is a client certificate check with the name compared. */
	if (r->method == HBA_CERT)
		r->clientcert = CLIENTCERT_FULL;
	return HBA_OK;
}

/* ---- loading */

static int hba_add_rule(hba_rules *rs, size_t *cap, const hba_rule *r)
{
	if (rs->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		hba_rule *nr = realloc(rs->rules, ncap * sizeof *nr);
		if (nr == NULL)
			return HBA_ERR_NOMEM;
		rs->rules = nr;
		*cap = ncap;
	}
	rs->rules[rs->n++] = *r;
	return HBA_OK;
}

/*
 * The next logical line from *pos into buf (room for the rest of the text):
 * line ends stripped (pg_strip_crlf), and a line ending in a backslash
 * joined to the next one without the backslash, as PostgreSQL 14+ does,
 * even inside quotes or comments. Returns the physical lines consumed.
 */
static int hba_next_logical_line(const char **pos, char *buf)
{
	const char *p = *pos;
	size_t len = 0, last_backslash_len = 0;
	int lines = 0;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		memcpy(buf + len, p, n);
		len += n;
		p += n + (nl ? 1 : 0);
		lines++;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		/* The length check stops "\\" + an empty line from eating a
		 * backslash that was not at the end of a physical line. */
		if (len > last_backslash_len && buf[len - 1] == '\\') {
			len--;
			last_backslash_len = len;
			continue;
		}
		break;
	}
	buf[len] = '\0';
	*pos = p;
	return lines;
}

int hba_load_string(const char *text, const char *name_for_errors, hba_rules **out, char *err,
		    size_t errcap)
{
	*out = NULL;
	hba_set_err(err, errcap, "%s", "");
	parse_ctx pc = {name_for_errors ? name_for_errors : "(string)", 1, err, errcap};
	hba_rules *rs = calloc(1, sizeof *rs);
	char *buf = malloc(strlen(text) + 1);
	if (rs == NULL || buf == NULL) {
		free(rs);
		free(buf);
		hba_set_err(err, errcap, "%s", hba_strerror(HBA_ERR_NOMEM));
		return HBA_ERR_NOMEM;
	}
	size_t cap = 0;
	int rc = HBA_OK;
	const char *pos = text;
	while (*pos != '\0') {
		int lines = hba_next_logical_line(&pos, buf);
		hba_line ln = {0};
		rc = hba_tokenize_line(&pc, buf, &ln);
		if (rc == HBA_OK && ln.n > 0) {
			hba_rule r;
			rc = hba_parse_line(&pc, &ln, &r);
			if (rc == HBA_OK)
				rc = hba_add_rule(rs, &cap, &r);
			if (rc != HBA_OK)
				hba_rule_free(&r);
		}
		hba_line_free(&ln);
		if (rc != HBA_OK)
			break;
		pc.line += lines;
	}
	free(buf);
	/* No rules would reject every login: surely not what was meant. */
	if (rc == HBA_OK && rs->n == 0) {
		hba_set_err(err, errcap, "configuration file \"%s\" contains no entries", pc.file);
		rc = HBA_ERR_CONFIG;
	}
	if (rc != HBA_OK) {
		if (rc == HBA_ERR_NOMEM)
			hba_set_err(err, errcap, "%s", hba_strerror(HBA_ERR_NOMEM));
		hba_free(rs);
		return rc;
	}
	*out = rs;
	return HBA_OK;
}

int hba_load_file(const char *path, hba_rules **out, char *err, size_t errcap)
{
	*out = NULL;
	FILE *fp = fopen(path, "rb");
	if (fp == NULL) {
		hba_set_err(err, errcap, "could not open configuration file \"%s\": %s", path,
			    strerror(errno));
		return HBA_ERR_IO;
	}
	size_t cap = 4096, len = 0;
	char *text = malloc(cap);
	int rc = HBA_OK;
	while (text != NULL) {
		if (len + 1 == cap) {
			if (cap >= HBA_MAX_FILE_SIZE) {
				hba_set_err(err, errcap,
					    "configuration file \"%s\" is larger than %d bytes", path,
					    HBA_MAX_FILE_SIZE);
				rc = HBA_ERR_CONFIG;
				break;
			}
			char *nt = realloc(text, cap * 2);
			if (nt == NULL) {
				free(text);
				text = NULL;
				break;
			}
			text = nt;
			cap *= 2;
		}
		size_t got = fread(text + len, 1, cap - 1 - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (text == NULL) {
		hba_set_err(err, errcap, "%s", hba_strerror(HBA_ERR_NOMEM));
		rc = HBA_ERR_NOMEM;
	} else if (rc == HBA_OK && ferror(fp)) {
		hba_set_err(err, errcap, "could not read configuration file \"%s\": %s", path,
			    strerror(errno));
		rc = HBA_ERR_IO;
	}
	fclose(fp);
	if (rc != HBA_OK) {
		free(text);
		return rc;
	}
	text[len] = '\0';
	/* A NUL would silently end the text early: the rules after it would
	 * vanish without a word. */
	const char *nul = memchr(text, '\0', len);
	if (nul != NULL) {
		int line = 1;
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		hba_set_err(err, errcap,
			    "configuration file contains a NUL byte (line %d of configuration file "
			    "\"%s\")",
			    line, path);
		free(text);
		return HBA_ERR_CONFIG;
	}
	rc = hba_load_string(text, path, out, err, errcap);
	free(text);
	return rc;
}

int hba_load_default(hba_rules **out)
{
	static const char default_rules[] =
		"local all         all              trust\n"
		"host  all         all 127.0.0.1/32 trust\n"
		"host  all         all ::1/128      trust\n"
		"host  all         all all          scram-sha-256\n"
		"local replication all              trust\n"
		"host  replication all 127.0.0.1/32 trust\n"
		"host  replication all ::1/128      trust\n"
		"host  replication all all          scram-sha-256\n";
	return hba_load_string(default_rules, "(built-in default)", out, NULL, 0);
}

void hba_free(hba_rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		hba_rule_free(&r->rules[i]);
	free(r->rules);
	free(r);
}

size_t hba_rule_count(const hba_rules *r)
{
	return r ? r->n : 0;
}

/* ---- matching (check_hba) */

/*
 * The client's address, or false when there is none usable. An
 * IPv4-mapped IPv6 address (what a dual-stack listener reports for IPv4
 * clients) becomes the IPv4 address: PostgreSQL never sees those (its IPv6
 * sockets are IPV6_V6ONLY), and matching them as IPv6 would let an IPv4
 * client slip past every IPv4 rule, "reject" lines included.
 */
static bool hba_client_addr(const hba_request *req, struct sockaddr_storage *out)
{
	const struct sockaddr *sa = req->addr;
	memset(out, 0, sizeof *out);
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET && req->addrlen >= (socklen_t)sizeof(struct sockaddr_in)) {
		memcpy(out, sa, sizeof(struct sockaddr_in));
		return true;
	}
	if (sa->sa_family == AF_INET6 && req->addrlen >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)out;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			memcpy(out, sa, sizeof(struct sockaddr_in6));
		}
		return true;
	}
	return false;
}

/* pg_range_sockaddr behind check_ip: families must agree. */
static bool hba_addr_in(const struct sockaddr_storage *client, const struct sockaddr *net,
			const struct sockaddr *mask)
{
	if (client->ss_family != net->sa_family || mask->sa_family != net->sa_family)
		return false;
	if (net->sa_family == AF_INET) {
		uint32_t c = ((const struct sockaddr_in *)client)->sin_addr.s_addr;
		uint32_t n = ((const struct sockaddr_in *)net)->sin_addr.s_addr;
		uint32_t m = ((const struct sockaddr_in *)mask)->sin_addr.s_addr;
		return ((c ^ n) & m) == 0;
	}
	if (net->sa_family == AF_INET6) {
		const uint8_t *c = ((const struct sockaddr_in6 *)client)->sin6_addr.s6_addr;
		const uint8_t *n = ((const struct sockaddr_in6 *)net)->sin6_addr.s6_addr;
		const uint8_t *m = ((const struct sockaddr_in6 *)mask)->sin6_addr.s6_addr;
		for (int i = 0; i < 16; i++)
			if ((c[i] ^ n[i]) & m[i])
				return false;
		return true;
	}
	return false;
}

static bool hba_mask_is_zero(const struct sockaddr *m)
{
	if (m->sa_family == AF_INET)
		return ((const struct sockaddr_in *)m)->sin_addr.s_addr == 0;
	if (m->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)m)->sin6_addr);
	return true;
}

/*
 * samehost / samenet: check_same_host_or_net over getifaddrs, read at
 * every check as PostgreSQL does, so address changes apply without a
 * reload. An interface without a usable netmask counts as a host route,
 * as in pg_foreach_ifaddr.
 */
static bool hba_same_host_or_net(const struct sockaddr_storage *client, bool net)
{
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa) < 0)
		return false;
	bool found = false;
	for (struct ifaddrs *l = ifa; l != NULL && !found; l = l->ifa_next) {
		const struct sockaddr *a = l->ifa_addr;
		if (a == NULL || (a->sa_family != AF_INET && a->sa_family != AF_INET6))
			continue;
		struct sockaddr_storage full;
		const struct sockaddr *m = net ? l->ifa_netmask : NULL;
		if (m == NULL || m->sa_family != a->sa_family || hba_mask_is_zero(m)) {
			hba_cidr_mask(&full, NULL, a->sa_family);
			m = (const struct sockaddr *)&full;
		}
		found = hba_addr_in(client, a, m);
	}
	freeifaddrs(ifa);
	return found;
}

static bool hba_db_matches(const hba_rule *r, const hba_request *req)
{
	const char *db = req->database ? req->database : "";
	const char *user = req->user ? req->user : "";
	for (size_t i = 0; i < r->ndbs; i++) {
		const hba_name *n = &r->dbs[i];
		/* A physical replication connection names no database: only
		 * the keyword can match it, and the keyword nothing else. */
		if (req->replication) {
			if (n->kind == NAME_REPLICATION)
				return true;
			continue;
		}
		switch (n->kind) {
		case NAME_ALL:
			return true;
		case NAME_SAMEUSER:
			if (req->database != NULL && req->user != NULL && strcmp(db, user) == 0)
				return true;
			break;
		case NAME_REPLICATION:
			break;
		case NAME_LITERAL:
			if (req->database != NULL && strcmp(n->name, db) == 0)
				return true;
			break;
		}
	}
	return false;
}

static bool hba_user_matches(const hba_rule *r, const hba_request *req)
{
	for (size_t i = 0; i < r->nusers; i++) {
		const hba_name *n = &r->users[i];
		if (n->kind == NAME_ALL)
			return true;
		if (n->kind == NAME_LITERAL && req->user != NULL && strcmp(n->name, req->user) == 0)
			return true;
	}
	return false;
}

static bool hba_conn_matches(const hba_rule *r, const hba_request *req,
			     const struct sockaddr_storage *client, bool have_addr)
{
	if (r->conn == HBA_LOCAL)
		return req->is_unix;
	if (req->is_unix)
		return false;
	if (r->conn == HBA_HOSTSSL && !req->is_tls)
		return false;
	if (r->conn == HBA_HOSTNOSSL && req->is_tls)
		return false;
	if (r->conn == HBA_HOSTGSSENC)
		return false;
	/* A TCP request without an address is a caller bug: match no host
	 * line, so it fails closed. */
	if (!have_addr)
		return false;
	switch (r->cmp) {
	case ADDR_ALL:
		return true;
	case ADDR_MASK:
		return hba_addr_in(client, (const struct sockaddr *)&r->addr,
				   (const struct sockaddr *)&r->mask);
	case ADDR_SAMEHOST:
		return hba_same_host_or_net(client, false);
	case ADDR_SAMENET:
		return hba_same_host_or_net(client, true);
	}
	return false;
}

void hba_check(const hba_rules *r, const hba_request *req, hba_match *m)
{
	memset(m, 0, sizeof *m);
	m->method = HBA_REJECT;
	if (r == NULL)
		return;
	struct sockaddr_storage client;
	bool have_addr = !req->is_unix && hba_client_addr(req, &client);
	for (size_t i = 0; i < r->n; i++) {
		const hba_rule *rule = &r->rules[i];
		if (!hba_conn_matches(rule, req, &client, have_addr) || !hba_db_matches(rule, req) ||
		    !hba_user_matches(rule, req))
			continue;
		m->matched = true;
		m->method = rule->method;
		m->line = rule->line;
		m->clientcert_verify_ca = rule->clientcert != CLIENTCERT_NONE;
		m->clientcert_verify_full = rule->clientcert == CLIENTCERT_FULL;
		return;
	}
}

/* ---- messages (ClientAuthentication, uaReject and uaImplicitReject) */

/* pg_getnameinfo_all with NI_NUMERICHOST: "[local]" for Unix sockets,
 * "???" when the address cannot be printed. */
static void hba_host_text(const hba_request *req, char *host, size_t cap)
{
	if (req->is_unix) {
		snprintf(host, cap, "[local]");
		return;
	}
	if (req->addr == NULL ||
	    getnameinfo(req->addr, req->addrlen, host, (socklen_t)cap, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, cap, "???");
}

static void hba_format(const hba_request *req, bool rejected, char *buf, size_t cap)
{
	char host[NI_MAXHOST];
	if (buf == NULL || cap == 0)
		return;
	hba_host_text(req, host, sizeof host);
	const char *user = req->user ? req->user : "";
	const char *db = req->database ? req->database : "";
	const char *enc = req->is_tls ? "SSL encryption" : "no encryption";
	if (rejected && req->replication)
		snprintf(buf, cap,
			 "pg_hba.conf rejects replication connection for host \"%s\", user \"%s\", %s",
			 host, user, enc);
	else if (rejected)
		snprintf(buf, cap,
			 "pg_hba.conf rejects connection for host \"%s\", user \"%s\", database "
			 "\"%s\", %s",
			 host, user, db, enc);
	else if (req->replication)
		snprintf(buf, cap,
			 "no pg_hba.conf entry for replication connection from host \"%s\", user "
			 "\"%s\", %s",
			 host, user, enc);
	else
		snprintf(buf, cap,
			 "no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", %s",
			 host, user, db, enc);
}

void hba_format_no_entry(const hba_request *req, char *buf, size_t cap)
{
	hba_format(req, false, buf, cap);
}

void hba_format_rejected(const hba_request *req, char *buf, size_t cap)
{
	hba_format(req, true, buf, cap);
}
