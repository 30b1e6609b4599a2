/*
 * Client authentication rules in pg_hba.conf form (--hba FILE): parsed once
 * with PostgreSQL 15's syntax, then checked first-match for every login, as
 * the server's check_hba() does. Also the two FATAL texts a login gets.
 */
#ifndef PGW_AUTH_HBA_H
#define PGW_AUTH_HBA_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * What the loaders return: 0, or a negative reason; err then holds the
 * message. A file with any bad line is refused whole, as PostgreSQL
 * refuses to load it (it only reports every bad line; we stop at the first).
 */
typedef enum hba_status {
	HBA_OK = 0,
	HBA_ERR_CONFIG = -1, /* the text is not a valid rule file for this gateway */
	HBA_ERR_IO = -2,     /* the file could not be read */
	HBA_ERR_NOMEM = -3,
} hba_status;

/*
 * Connection types. hostgssenc lines load but never match: the gateway has
 * no GSSAPI encryption. By the same token (and as a PostgreSQL built
 * without GSSAPI does) hostnogssenc matches what host matches.
 */
typedef enum hba_conn_type {
	HBA_LOCAL,
	HBA_HOST,
	HBA_HOSTSSL,
	HBA_HOSTNOSSL,
	HBA_HOSTGSSENC,
	HBA_HOSTNOGSSENC,
} hba_conn_type;

/*
 * The methods the gateway can carry out. Every other method PostgreSQL
 * knows (peer, ident, gss, sspi, ldap, radius, pam, bsd) fails the load.
 */
typedef enum hba_method {
	HBA_TRUST,
	HBA_REJECT,
	HBA_SCRAM, /* scram-sha-256 */
	HBA_MD5,
	HBA_PASSWORD,
	HBA_CERT, /* hostssl only; implies clientcert=verify-full */
} hba_method;

/* Opaque; parsed once, then read-only and shared by worker threads. */
typedef struct hba_rules hba_rules;

/*
 * What the file may hold, beyond PostgreSQL 15's tokenizing rules
 * (whitespace, # comments, "quoted" tokens with "" for a quote, comma
 * lists, a backslash at the end of a line continuing it):
 *   database: all, sameuser, replication, names. samerole/samegroup fail
 *             the load, since the gateway cannot see role membership and a
 *             line that silently never matched would change which later
 *             line applies.
 *   user:     all, names. +group and /regex fail the load.
 *   address:  a.b.c.d/n, IPv6/n, a.b.c.d plus a netmask field, all,
 *             samehost, samenet (the machine's interface addresses and
 *             their subnets, read at check time as PostgreSQL does). Host
 *             names fail the load.
 *   options:  clientcert=verify-ca|verify-full (hostssl lines only). Other
 *             options fail the load.
 *   @file anywhere fails the load. A file with no rules fails too.
 * Errors read like PostgreSQL's, followed by where:
 *   invalid IP mask "x": Name or service not known (line 3 of configuration file "hba.conf")
 */
int hba_load_file(const char *path, hba_rules **out, char *err, size_t errcap);
int hba_load_string(const char *text, const char *name_for_errors, hba_rules **out, char *err,
		    size_t errcap);

/*
 * The rules without --hba:
 *   local all         all              trust
 *   host  all         all 127.0.0.1/32 trust
 *   host  all         all ::1/128      trust
 *   host  all         all all          scram-sha-256
 * and the same four lines for replication (which "all" does not cover).
 */
int hba_load_default(hba_rules **out);

void hba_free(hba_rules *r);

/* Number of rules loaded (tests, the startup log line). */
size_t hba_rule_count(const hba_rules *r);

/*
 * One login. addr is the client's address for TCP (an IPv4-mapped IPv6
 * address is matched as the IPv4 address it carries, see hba.c); it is
 * ignored when is_unix. replication means a physical replication
 * connection (replication=true in the startup packet): only the
 * "replication" database keyword matches it. A logical one
 * (replication=database) is an ordinary request for its database.
 * NULL database or user match only "all".
 */
typedef struct hba_request {
	bool is_unix;
	bool is_tls;
	const struct sockaddr *addr;
	socklen_t addrlen;
	const char *database;
	const char *user;
	bool replication;
} hba_request;

/*
 * The outcome. matched false: no line applies, and the login fails with
 * hba_format_no_entry (method is then HBA_REJECT, line 0). matched with
 * HBA_REJECT: fail with hba_format_rejected. clientcert_verify_ca is set
 * whenever a client certificate must be presented and chain to the CA
 * (verify-ca, verify-full, cert); clientcert_verify_full additionally
 * means its CN must equal the user name. line is the rule's first line.
 */
typedef struct hba_match {
	hba_method method;
	int line;
	bool clientcert_verify_full;
	bool clientcert_verify_ca;
	bool matched;
} hba_match;

/* First matching rule, as PostgreSQL does. Thread-safe. */
void hba_check(const hba_rules *r, const hba_request *req, hba_match *m);

/*
 * PostgreSQL 15's FATAL texts (SQLSTATE 28000) for no matching line and for
 * a "reject" line; the host is the numeric address as getnameinfo prints
 * it, or [local]:
 *   no pg_hba.conf entry for host "10.0.0.7", user "u", database "d", SSL encryption
 *   no pg_hba.conf entry for replication connection from host "[local]", user "u", no encryption
 *   pg_hba.conf rejects connection for host "10.0.0.7", user "u", database "d", no encryption
 *   pg_hba.conf rejects replication connection for host "::1", user "u", SSL encryption
 * buf is always NUL-terminated (cut short when cap is too small).
 */
void hba_format_no_entry(const hba_request *req, char *buf, size_t cap);
void hba_format_rejected(const hba_request *req, char *buf, size_t cap);

/* "trust", "scram-sha-256", ... as the file spells them. */
const char *hba_method_name(hba_method m);
const char *hba_strerror(int status);

#endif
