/*
 * pg_hba.conf rules (src/auth/hba.c): every accepted and refused form with
 * its exact message and line, first-match semantics, address ranges at
 * their edges, and the two FATAL texts PostgreSQL 15 sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/hba.h"

#define FILE_NAME "hba.conf"

/* A request with the address it points to. */
typedef struct client {
	struct sockaddr_storage ss;
	hba_request req;
} client;

static void test_client_tcp(client *c, const char *ip, const char *db, const char *user,
			    bool tls)
{
	memset(c, 0, sizeof *c);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&c->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		c->req.addrlen = sizeof *s4;
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(40000);
		c->req.addrlen = sizeof *s6;
	} else {
		fail_msg("bad test address %s", ip);
	}
	c->req.addr = (const struct sockaddr *)&c->ss;
	c->req.is_tls = tls;
	c->req.database = db;
	c->req.user = user;
}

static void test_client_unix(client *c, const char *db, const char *user)
{
	memset(c, 0, sizeof *c);
	struct sockaddr_un *su = (struct sockaddr_un *)&c->ss;
	su->sun_family = AF_UNIX;
	c->req.addr = (const struct sockaddr *)&c->ss;
	c->req.addrlen = sizeof *su;
	c->req.is_unix = true;
	c->req.database = db;
	c->req.user = user;
}

static hba_rules *test_load(int line, const char *text)
{
	hba_rules *r = NULL;
	char err[512];
	int rc = hba_load_string(text, FILE_NAME, &r, err, sizeof err);
	if (rc != HBA_OK)
		fail_msg("line %d: load failed (%d): %s", line, rc, err);
	assert_non_null(r);
	return r;
}
#define LOAD(text) test_load(__LINE__, text)

/* The load fails with exactly msg on the given line of hba.conf. */
static void test_load_fails(int line, const char *text, const char *msg, int at)
{
	hba_rules *r = (hba_rules *)1;
	char err[512], want[768];
	int rc = hba_load_string(text, FILE_NAME, &r, err, sizeof err);
	if (rc != HBA_ERR_CONFIG)
		fail_msg("line %d: expected HBA_ERR_CONFIG, got %d for:\n%s", line, rc, text);
	if (r != NULL)
		fail_msg("line %d: *out not NULL after a failed load", line);
	snprintf(want, sizeof want, "%s (line %d of configuration file \"" FILE_NAME "\")", msg,
		 at);
	if (strcmp(err, want) != 0)
		fail_msg("line %d:\n  want: %s\n  got:  %s", line, want, err);
}
#define FAILS(text, msg, at) test_load_fails(__LINE__, text, msg, at)

/* The rule on file line `want` matches (0: none does). */
static void test_expect_line(int line, const hba_rules *r, const client *c, int want)
{
	hba_match m;
	memset(&m, 0x5a, sizeof m);
	hba_check(r, &c->req, &m);
	if (want == 0) {
		if (m.matched || m.line != 0 || m.method != HBA_REJECT || m.clientcert_verify_ca ||
		    m.clientcert_verify_full)
			fail_msg("line %d: expected no match, got line %d (%s)", line, m.line,
				 hba_method_name(m.method));
		return;
	}
	if (!m.matched)
		fail_msg("line %d: expected rule line %d, got no match", line, want);
	if (m.line != want)
		fail_msg("line %d: expected rule line %d, got %d", line, want, m.line);
}
#define EXPECT_LINE(r, c, want) test_expect_line(__LINE__, r, c, want)

static hba_match test_check(const hba_rules *r, const client *c)
{
	hba_match m;
	hba_check(r, &c->req, &m);
	return m;
}

/* ---- tokenizing */

static void test_tokens(void **state)
{
	(void)state;
	client c;
	FAILS("local db2 all\r\n", "end-of-line before authentication method", 1);

	hba_rules *r = LOAD("# comment only\n"
		 "\n"
		 "   \t  \n"
		 "local\tdb1  alice   trust   # trailing comment\n"
		 "local \"my db\" \"bob smith\" md5\r\n"
		 "local \"a\"\"b\" all password\n"
		 "local \"x#y\" all reject\n"
		 "local db3 all scram-sha-256#no space before the comment");
	assert_int_equal(hba_rule_count(r), 5);
	test_client_unix(&c, "db1", "alice");
	EXPECT_LINE(r, &c, 4);
	assert_int_equal(test_check(r, &c).method, HBA_TRUST);
	test_client_unix(&c, "db1", "bob");
	EXPECT_LINE(r, &c, 0);
	test_client_unix(&c, "my db", "bob smith");
	EXPECT_LINE(r, &c, 5);
	assert_int_equal(test_check(r, &c).method, HBA_MD5);
	test_client_unix(&c, "a\"b", "x");
	EXPECT_LINE(r, &c, 6);
	assert_int_equal(test_check(r, &c).method, HBA_PASSWORD);
	test_client_unix(&c, "x#y", "x");
	EXPECT_LINE(r, &c, 7);
	test_client_unix(&c, "db3", "x");
	EXPECT_LINE(r, &c, 8);
	assert_int_equal(test_check(r, &c).method, HBA_SCRAM);
	hba_free(r);
}

static void test_comma_lists(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("local db1,db2,\"db 3\" alice,\"bob\" trust\n"
			    "local d4, d5 carol, dave trust\n");
	const char *dbs[] = {"db1", "db2", "db 3"};
	for (size_t i = 0; i < 3; i++) {
		test_client_unix(&c, dbs[i], "alice");
		EXPECT_LINE(r, &c, 1);
		test_client_unix(&c, dbs[i], "bob");
		EXPECT_LINE(r, &c, 1);
		test_client_unix(&c, dbs[i], "carol");
		EXPECT_LINE(r, &c, 0);
	}
	/* A blank after a comma still continues the list, as in PostgreSQL. */
	test_client_unix(&c, "d5", "dave");
	EXPECT_LINE(r, &c, 2);
	test_client_unix(&c, "db3", "alice");
	EXPECT_LINE(r, &c, 0);
	hba_free(r);

	/* A blank before the comma ends the field: "b" is the user field and
	 * the method slot holds "all". */
	FAILS("local a ,b all trust\n", "invalid authentication method \"all\"", 1);
	/* A quoted comma is part of the name. */
	r = LOAD("local \"a,b\" all trust\n");
	test_client_unix(&c, "a,b", "u");
	EXPECT_LINE(r, &c, 1);
	test_client_unix(&c, "a", "u");
	EXPECT_LINE(r, &c, 0);
	hba_free(r);
}

static void test_continuation(void **state)
{
	(void)state;
	client c;
	/* PostgreSQL 14+ joins a line ending in a backslash to the next one,
	 * with nothing in between; the rule keeps its first line number. */
	hba_rules *r = LOAD("local all \\\n"
			    "  alice trust\n"
			    "local d\\\n"
			    "b bob trust\n"
			    "local all carol \\\r\n"
			    "  trust\n");
	test_client_unix(&c, "x", "alice");
	EXPECT_LINE(r, &c, 1);
	test_client_unix(&c, "db", "bob");
	EXPECT_LINE(r, &c, 3);
	test_client_unix(&c, "x", "carol");
	EXPECT_LINE(r, &c, 5);
	hba_free(r);
	/* Errors after a continued line count the physical lines. */
	FAILS("local all \\\n alice trust\nlocal all bob nope\n",
	      "invalid authentication method \"nope\"", 3);
	/* Continued into a comment: the comment swallows the next line. */
	FAILS("local all alice trust # \\\n more\nbogus\n", "invalid connection type \"bogus\"", 3);
}

/* ---- keywords */

static void test_quoted_keywords(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("local \"all\" \"all\" reject\n"
			    "local \"replication\" all trust\n"
			    "local \"sameuser\" \"+grp\" md5\n"
			    "local all all password\n");
	test_client_unix(&c, "all", "all");
	EXPECT_LINE(r, &c, 1);
	test_client_unix(&c, "all", "bob");
	EXPECT_LINE(r, &c, 4);
	test_client_unix(&c, "other", "all");
	EXPECT_LINE(r, &c, 4);
	/* A database named replication, for an ordinary connection. */
	test_client_unix(&c, "replication", "bob");
	EXPECT_LINE(r, &c, 2);
	/* Quoted: a database named sameuser, a user named +grp. */
	test_client_unix(&c, "sameuser", "+grp");
	EXPECT_LINE(r, &c, 3);
	test_client_unix(&c, "grp", "grp");
	EXPECT_LINE(r, &c, 4);
	hba_free(r);
}

static void test_sameuser(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("local sameuser all trust\n");
	test_client_unix(&c, "alice", "alice");
	EXPECT_LINE(r, &c, 1);
	test_client_unix(&c, "alice", "bob");
	EXPECT_LINE(r, &c, 0);
	test_client_unix(&c, NULL, NULL);
	EXPECT_LINE(r, &c, 0);
	hba_free(r);
}

static void test_replication(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("local all all trust\n"
			    "local replication alice md5\n");
	/* "all" does not cover physical replication... */
	test_client_unix(&c, "ignored", "alice");
	c.req.replication = true;
	EXPECT_LINE(r, &c, 2);
	c.req.user = "bob";
	EXPECT_LINE(r, &c, 0);
	/* ...and "replication" matches nothing else. */
	hba_free(r);
	r = LOAD("local replication all trust\n");
	test_client_unix(&c, "replication", "alice");
	EXPECT_LINE(r, &c, 0);
	c.req.replication = true;
	EXPECT_LINE(r, &c, 1);
	hba_free(r);
	/* Named databases do not match a replication connection either, even
	 * when the startup packet carried one. */
	r = LOAD("local db all trust\nlocal db,replication bob trust\n");
	test_client_unix(&c, "db", "alice");
	c.req.replication = true;
	EXPECT_LINE(r, &c, 0);
	c.req.user = "bob";
	EXPECT_LINE(r, &c, 2);
	hba_free(r);
}

/* ---- connection types */

static void test_conn_types(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("hostgssenc all all all trust\n"
			    "local all u1 trust\n"
			    "host all u1 all md5\n"
			    "hostssl all u2 all scram-sha-256\n"
			    "hostnossl all u2 all password\n"
			    "hostnossl all u3 all password\n"
			    "hostssl all u4 all scram-sha-256\n"
			    "hostnogssenc all u5 all md5\n");
	assert_int_equal(hba_rule_count(r), 8);

	test_client_unix(&c, "d", "u1");
	EXPECT_LINE(r, &c, 2);
	test_client_tcp(&c, "10.0.0.1", "d", "u1", false);
	EXPECT_LINE(r, &c, 3);
	test_client_tcp(&c, "10.0.0.1", "d", "u1", true);
	EXPECT_LINE(r, &c, 3);

	test_client_tcp(&c, "10.0.0.1", "d", "u2", true);
	EXPECT_LINE(r, &c, 4);
	test_client_tcp(&c, "10.0.0.1", "d", "u2", false);
	EXPECT_LINE(r, &c, 5);
	test_client_unix(&c, "d", "u2");
	EXPECT_LINE(r, &c, 0);

	test_client_tcp(&c, "10.0.0.1", "d", "u3", true);
	EXPECT_LINE(r, &c, 0);
	test_client_tcp(&c, "10.0.0.1", "d", "u4", false);
	EXPECT_LINE(r, &c, 0);

	/* No GSSAPI encryption here: hostnogssenc is host. */
	test_client_tcp(&c, "10.0.0.1", "d", "u5", false);
	EXPECT_LINE(r, &c, 8);
	test_client_tcp(&c, "10.0.0.1", "d", "u5", true);
	EXPECT_LINE(r, &c, 8);
	test_client_unix(&c, "d", "u5");
	EXPECT_LINE(r, &c, 0);
	hba_free(r);
}

static void test_first_match(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("host all mallory 0.0.0.0/0 reject\n"
			    "host all all 10.0.0.0/8 trust\n"
			    "host all all 10.1.0.0/16 md5\n"
			    "host db all all scram-sha-256\n");
	test_client_tcp(&c, "10.1.2.3", "db", "mallory", false);
	hba_match m = test_check(r, &c);
	assert_true(m.matched);
	assert_int_equal(m.line, 1);
	assert_int_equal(m.method, HBA_REJECT);
	/* The later, narrower line never applies. */
	test_client_tcp(&c, "10.1.2.3", "db", "alice", false);
	m = test_check(r, &c);
	assert_int_equal(m.line, 2);
	assert_int_equal(m.method, HBA_TRUST);
	test_client_tcp(&c, "192.0.2.1", "db", "alice", false);
	m = test_check(r, &c);
	assert_int_equal(m.line, 4);
	assert_int_equal(m.method, HBA_SCRAM);
	test_client_tcp(&c, "192.0.2.1", "other", "alice", false);
	EXPECT_LINE(r, &c, 0);
	/* A rejecting match is not a failure to match. */
	assert_int_equal(test_check(r, &c).method, HBA_REJECT);
	hba_free(r);
}

/* ---- addresses */

static void test_ipv4(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("host all a 192.168.1.7/32 trust\n"
			    "host all a 192.168.1.0/31 md5\n"
			    "host all a 10.1.2.3/8 password\n" /* host bits beyond the mask */
			    "host all a 172.16.0.0 255.240.0.0 scram-sha-256\n"
			    "host all a 0.0.0.0/0 reject\n"
			    "host all b 198.51.100.0/24 trust\n"
			    "host all b 198.51.100.0/+25 trust\n");
	test_client_tcp(&c, "192.168.1.7", "d", "a", false);
	EXPECT_LINE(r, &c, 1);
	test_client_tcp(&c, "192.168.1.6", "d", "a", false);
	EXPECT_LINE(r, &c, 5);
	test_client_tcp(&c, "192.168.1.1", "d", "a", false);
	EXPECT_LINE(r, &c, 2);
	test_client_tcp(&c, "192.168.1.0", "d", "a", false);
	EXPECT_LINE(r, &c, 2);
	test_client_tcp(&c, "10.255.255.255", "d", "a", false);
	EXPECT_LINE(r, &c, 3);
	test_client_tcp(&c, "10.0.0.0", "d", "a", false);
	EXPECT_LINE(r, &c, 3);
	test_client_tcp(&c, "11.0.0.0", "d", "a", false);
	EXPECT_LINE(r, &c, 5);
	test_client_tcp(&c, "172.31.255.255", "d", "a", false);
	EXPECT_LINE(r, &c, 4);
	test_client_tcp(&c, "172.32.0.0", "d", "a", false);
	EXPECT_LINE(r, &c, 5);
	test_client_tcp(&c, "172.15.255.255", "d", "a", false);
	EXPECT_LINE(r, &c, 5);
	test_client_tcp(&c, "255.255.255.255", "d", "a", false);
	EXPECT_LINE(r, &c, 5);
	test_client_tcp(&c, "0.0.0.0", "d", "a", false);
	EXPECT_LINE(r, &c, 5);
	/* 0.0.0.0/0 is every IPv4 address and no IPv6 one. */
	test_client_tcp(&c, "::1", "d", "a", false);
	EXPECT_LINE(r, &c, 0);
	test_client_tcp(&c, "2001:db8::1", "d", "a", false);
	EXPECT_LINE(r, &c, 0);
	test_client_tcp(&c, "198.51.100.255", "d", "b", false);
	EXPECT_LINE(r, &c, 6);
	test_client_tcp(&c, "198.51.101.0", "d", "b", false);
	EXPECT_LINE(r, &c, 0);
	hba_free(r);
}

static void test_ipv6(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("host all a ::1/128 trust\n"
			    "host all a 2001:db8::/32 md5\n"
			    "host all a 2001:db9:0:1::/64 password\n"
			    "host all a fe80:: ffff:ffff:ffff:ffff:: scram-sha-256\n"
			    "host all a 2001:db9:0:2::/127 trust\n"
			    "host all a ::/0 reject\n");
	test_client_tcp(&c, "::1", "d", "a", false);
	EXPECT_LINE(r, &c, 1);
	test_client_tcp(&c, "::2", "d", "a", false);
	EXPECT_LINE(r, &c, 6);
	test_client_tcp(&c, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "d", "a", false);
	EXPECT_LINE(r, &c, 2);
	test_client_tcp(&c, "2001:db9::", "d", "a", false);
	EXPECT_LINE(r, &c, 6);
	test_client_tcp(&c, "2001:db9:0:1:ffff::1", "d", "a", false);
	EXPECT_LINE(r, &c, 3);
	test_client_tcp(&c, "2001:db9:0:1:ffff::1", "d", "a", false);
	EXPECT_LINE(r, &c, 3);
	test_client_tcp(&c, "2001:db9:0:2::1", "d", "a", false);
	EXPECT_LINE(r, &c, 5);
	test_client_tcp(&c, "2001:db9:0:2::2", "d", "a", false);
	EXPECT_LINE(r, &c, 6);
	test_client_tcp(&c, "fe80::1234", "d", "a", false);
	EXPECT_LINE(r, &c, 4);
	/* ::/0 is every IPv6 address and no IPv4 one. */
	test_client_tcp(&c, "127.0.0.1", "d", "a", false);
	EXPECT_LINE(r, &c, 0);
	hba_free(r);

	/* IPv6 rules never match IPv4 clients, not even the ranges that
	 * embed IPv4 addresses. */
	r = LOAD("host all all ::/96 trust\nhost all all ::ffff:0:0/96 trust\n");
	test_client_tcp(&c, "10.0.0.1", "d", "a", false);
	EXPECT_LINE(r, &c, 0);
	hba_free(r);
}

static void test_v4_mapped(void **state)
{
	(void)state;
	client c;
	/* A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; they
	 * are matched as the IPv4 address, so IPv4 reject lines hold. */
	hba_rules *r = LOAD("host all all 203.0.113.0/24 reject\n"
			    "host all all 127.0.0.1/32 trust\n"
			    "host all all ::/0 md5\n");
	test_client_tcp(&c, "::ffff:203.0.113.9", "d", "u", false);
	EXPECT_LINE(r, &c, 1);
	test_client_tcp(&c, "::ffff:127.0.0.1", "d", "u", false);
	EXPECT_LINE(r, &c, 2);
	test_client_tcp(&c, "::ffff:198.51.100.1", "d", "u", false);
	EXPECT_LINE(r, &c, 0);
	test_client_tcp(&c, "2001:db8::1", "d", "u", false);
	EXPECT_LINE(r, &c, 3);
	hba_free(r);
}

static void test_all_address_and_bad_request(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("host all all all trust\n");
	test_client_tcp(&c, "203.0.113.5", "d", "u", false);
	EXPECT_LINE(r, &c, 1);
	test_client_tcp(&c, "2001:db8::5", "d", "u", true);
	EXPECT_LINE(r, &c, 1);
	test_client_unix(&c, "d", "u");
	EXPECT_LINE(r, &c, 0);
	/* TCP without a usable address: no host line, fail closed. */
	test_client_tcp(&c, "203.0.113.5", "d", "u", false);
	c.req.addr = NULL;
	EXPECT_LINE(r, &c, 0);
	test_client_tcp(&c, "203.0.113.5", "d", "u", false);
	c.req.addrlen = 4;
	EXPECT_LINE(r, &c, 0);
	/* NULL rules: no match. */
	hba_match m;
	hba_check(NULL, &c.req, &m);
	assert_false(m.matched);
	hba_free(r);
}

/* An address of this machine's, of the family asked for, or false. */
static bool test_local_addr(int family, char *out, size_t cap)
{
	struct ifaddrs *ifa;
	bool found = false;
	if (getifaddrs(&ifa) != 0)
		return false;
	for (struct ifaddrs *l = ifa; l && !found; l = l->ifa_next) {
		if (l->ifa_addr == NULL || l->ifa_addr->sa_family != family)
			continue;
		socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in)
						  : sizeof(struct sockaddr_in6);
		found = getnameinfo(l->ifa_addr, len, out, (socklen_t)cap, NULL, 0,
				    NI_NUMERICHOST) == 0 &&
			strchr(out, '%') == NULL;
	}
	freeifaddrs(ifa);
	return found;
}

static void test_samehost_samenet(void **state)
{
	(void)state;
	client c;
	char ip[NI_MAXHOST];
	hba_rules *r = LOAD("host all a samehost trust\n"
			    "host all b samenet trust\n");
	if (!test_local_addr(AF_INET, ip, sizeof ip))
		skip();
	test_client_tcp(&c, ip, "d", "a", false);
	EXPECT_LINE(r, &c, 1);
	test_client_tcp(&c, ip, "d", "b", false);
	EXPECT_LINE(r, &c, 2);
	/* TEST-NET-3 is on no interface of a test machine. */
	test_client_tcp(&c, "203.0.113.77", "d", "a", false);
	EXPECT_LINE(r, &c, 0);
	test_client_tcp(&c, "203.0.113.77", "d", "b", false);
	EXPECT_LINE(r, &c, 0);
	/* Loopback is 127.0.0.1/8: another 127/8 address is the same
	 * network but not this host. */
	struct ifaddrs *ifa;
	bool have_lo = false;
	assert_int_equal(getifaddrs(&ifa), 0);
	for (struct ifaddrs *l = ifa; l; l = l->ifa_next)
		if (l->ifa_addr && l->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)l->ifa_addr)->sin_addr.s_addr == htonl(0x7f000001) &&
		    l->ifa_netmask &&
		    ((struct sockaddr_in *)l->ifa_netmask)->sin_addr.s_addr == htonl(0xff000000))
			have_lo = true;
	freeifaddrs(ifa);
	if (have_lo) {
		test_client_tcp(&c, "127.0.0.1", "d", "a", false);
		EXPECT_LINE(r, &c, 1);
		test_client_tcp(&c, "127.1.2.3", "d", "a", false);
		EXPECT_LINE(r, &c, 0);
		test_client_tcp(&c, "127.1.2.3", "d", "b", false);
		EXPECT_LINE(r, &c, 2);
	}
	hba_free(r);
}

/* ---- methods and options */

static void test_methods(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("local all u1 trust\n"
			    "local all u2 reject\n"
			    "local all u3 scram-sha-256\n"
			    "local all u4 md5\n"
			    "local all u5 password\n"
			    "hostssl all u6 all cert\n");
	const hba_method want[] = {HBA_TRUST, HBA_REJECT, HBA_SCRAM, HBA_MD5, HBA_PASSWORD};
	const char *users[] = {"u1", "u2", "u3", "u4", "u5"};
	for (size_t i = 0; i < 5; i++) {
		test_client_unix(&c, "d", users[i]);
		hba_match m = test_check(r, &c);
		assert_true(m.matched);
		assert_int_equal(m.method, want[i]);
		assert_int_equal(m.line, (int)i + 1);
		assert_false(m.clientcert_verify_ca);
		assert_false(m.clientcert_verify_full);
	}
	/* cert means verify-full. */
	test_client_tcp(&c, "10.0.0.1", "d", "u6", true);
	hba_match m = test_check(r, &c);
	assert_int_equal(m.method, HBA_CERT);
	assert_true(m.clientcert_verify_ca);
	assert_true(m.clientcert_verify_full);
	hba_free(r);

	assert_string_equal(hba_method_name(HBA_SCRAM), "scram-sha-256");
	assert_string_equal(hba_method_name(HBA_CERT), "cert");
	assert_string_equal(hba_method_name(HBA_REJECT), "reject");

	const char *unsupported[] = {"peer", "ident", "gss", "sspi",
				     "ldap", "radius", "pam", "bsd"};
	for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
		char text[128], msg[128];
		snprintf(text, sizeof text, "local all all trust\nhost all all all %s\n",
			 unsupported[i]);
		snprintf(msg, sizeof msg,
			 "authentication method \"%s\" is not supported by this gateway",
			 unsupported[i]);
		FAILS(text, msg, 2);
	}
	FAILS("local all all scram\n", "invalid authentication method \"scram\"", 1);
	FAILS("local all all Trust\n", "invalid authentication method \"Trust\"", 1);
	FAILS("local all all trust,md5\n", "multiple values specified for authentication type",
	      1);
	FAILS("host all all all cert\n",
	      "cert authentication is only supported on hostssl connections", 1);
	FAILS("local all all cert\n", "cert authentication is only supported on hostssl connections",
	      1);
}

static void test_options(void **state)
{
	(void)state;
	client c;
	hba_rules *r = LOAD("hostssl all u1 all scram-sha-256 clientcert=verify-full\n"
			    "hostssl all u2 all md5 clientcert=verify-ca\n"
			    "hostssl all u3 all cert clientcert=verify-full\n"
			    "hostssl all u4 all trust clientcert=verify-ca,clientcert=verify-full\n"
			    "hostssl all u5 all trust clientcert=verify-full clientcert=verify-ca\n");
	test_client_tcp(&c, "10.0.0.1", "d", "u1", true);
	hba_match m = test_check(r, &c);
	assert_true(m.clientcert_verify_full);
	assert_true(m.clientcert_verify_ca);
	test_client_tcp(&c, "10.0.0.1", "d", "u2", true);
	m = test_check(r, &c);
	assert_false(m.clientcert_verify_full);
	assert_true(m.clientcert_verify_ca);
	assert_int_equal(m.method, HBA_MD5);
	test_client_tcp(&c, "10.0.0.1", "d", "u3", true);
	m = test_check(r, &c);
	assert_true(m.clientcert_verify_full);
	/* The last setting wins, as in PostgreSQL. */
	test_client_tcp(&c, "10.0.0.1", "d", "u4", true);
	assert_true(test_check(r, &c).clientcert_verify_full);
	test_client_tcp(&c, "10.0.0.1", "d", "u5", true);
	m = test_check(r, &c);
	assert_false(m.clientcert_verify_full);
	assert_true(m.clientcert_verify_ca);
	hba_free(r);

	FAILS("host all all all md5 clientcert=verify-full\n",
	      "clientcert can only be configured for \"hostssl\" rows", 1);
	FAILS("hostssl all all all md5 clientcert=verify\n",
	      "invalid value for clientcert: \"verify\"", 1);
	FAILS("hostssl all all all md5 clientcert=1\n", "invalid value for clientcert: \"1\"", 1);
	FAILS("hostssl all all all md5 clientcert=\n", "invalid value for clientcert: \"\"", 1);
	FAILS("hostssl all all all cert clientcert=verify-ca\n",
	      "clientcert only accepts \"verify-full\" when using \"cert\" authentication", 1);
	FAILS("hostssl all all all cert map=certmap\n",
	      "authentication option \"map\" is not supported by this gateway", 1);
	FAILS("hostssl all all all cert clientname=DN\n",
	      "authentication option \"clientname\" is not supported by this gateway", 1);
	FAILS("host all all all md5 ldapserver=x\n",
	      "authentication option \"ldapserver\" is not supported by this gateway", 1);
	FAILS("host all all all md5 frobnicate=yes\n",
	      "unrecognized authentication option name: \"frobnicate\"", 1);
	FAILS("hostssl all all all md5 verify-full\n",
	      "authentication option not in name=value format: verify-full", 1);
	FAILS("local all all md5 \"clientcert\"\n",
	      "authentication option not in name=value format: clientcert", 1);
}

/* ---- refused files */

static void test_field_errors(void **state)
{
	(void)state;
	char mask_err[128], noname_err[128];
	snprintf(mask_err, sizeof mask_err, "invalid IP mask \"x\": %s", gai_strerror(EAI_NONAME));
	snprintf(noname_err, sizeof noname_err, "invalid IP mask \"255.255.255.256\": %s",
		 gai_strerror(EAI_NONAME));

	FAILS("# header\n\nlocalhost all all trust\n", "invalid connection type \"localhost\"", 3);
	FAILS("include other.conf\n", "invalid connection type \"include\"", 1);
	FAILS("local,host all all trust\n", "multiple values specified for connection type", 1);
	FAILS("local\n", "end-of-line before database specification", 1);
	FAILS("local all # the rest is a comment\n", "end-of-line before role specification", 1);
	FAILS("local all all\n", "end-of-line before authentication method", 1);
	FAILS("host all all\n", "end-of-line before IP address specification", 1);
	FAILS("host all all 10.0.0.1\n", "end-of-line before netmask specification", 1);
	FAILS("host all all 10.0.0.1/8\n", "end-of-line before authentication method", 1);
	FAILS("host all all 10.0.0.1 255.0.0.0\n", "end-of-line before authentication method", 1);
	FAILS("host all all 10.0.0.0/8,10.1.0.0/16 trust\n",
	      "multiple values specified for host address", 1);
	FAILS("host all all 10.0.0.0 255.0.0.0,255.255.0.0 trust\n",
	      "multiple values specified for netmask", 1);
	FAILS("host all all 10.0.0.0 x trust\n", mask_err, 1);
	FAILS("local all all trust\nhost all all 10.0.0.0 255.255.255.256 md5\n", noname_err, 2);
	FAILS("host all all 10.0.0.0 ffff:: trust\n", "IP address and mask do not match", 1);
	FAILS("host all all ::1 255.255.255.255 trust\n", "IP address and mask do not match", 1);
	FAILS("host all all 10.0.0.0/33 trust\n", "invalid CIDR mask in address \"10.0.0.0/33\"",
	      1);
	FAILS("host all all 10.0.0.0/-1 trust\n", "invalid CIDR mask in address \"10.0.0.0/-1\"",
	      1);
	FAILS("host all all 10.0.0.0/ trust\n", "invalid CIDR mask in address \"10.0.0.0/\"", 1);
	FAILS("host all all 10.0.0.0/8x trust\n", "invalid CIDR mask in address \"10.0.0.0/8x\"",
	      1);
	FAILS("host all all ::/129 trust\n", "invalid CIDR mask in address \"::/129\"", 1);
	FAILS("host all all db.example.com trust\n",
	      "invalid IP address \"db.example.com\": host names are not supported by this gateway",
	      1);
	FAILS("host all all .example.com trust\n",
	      "invalid IP address \".example.com\": host names are not supported by this gateway",
	      1);
	FAILS("host all all example.com/24 trust\n",
	      "invalid IP address \"example.com/24\": host names are not supported by this gateway",
	      1);
	FAILS("host all all 300.0.0.1/8 trust\n",
	      "invalid IP address \"300.0.0.1/8\": host names are not supported by this gateway", 1);
	/* Quoted keywords are names, and "all" is not a host name we take. */
	FAILS("host all all \"all\" trust\n",
	      "invalid IP address \"all\": host names are not supported by this gateway", 1);
}

static void test_unsupported_names(void **state)
{
	(void)state;
	FAILS("local all all trust\nlocal all +admins md5\n",
	      "group membership \"+admins\" in the user field is not supported by this gateway", 2);
	FAILS("local all alice,+admins md5\n",
	      "group membership \"+admins\" in the user field is not supported by this gateway", 1);
	FAILS("local samerole all md5\n",
	      "database keyword \"samerole\" is not supported by this gateway (it cannot check "
	      "role membership)",
	      1);
	FAILS("local db,samegroup all md5\n",
	      "database keyword \"samegroup\" is not supported by this gateway (it cannot check "
	      "role membership)",
	      1);
	FAILS("local all /^adm md5\n",
	      "regular expression \"/^adm\" in the user field is not supported by this gateway", 1);
	FAILS("local /^db all md5\n",
	      "regular expression \"/^db\" in the database field is not supported by this gateway",
	      1);
	FAILS("local all \"/^adm\" md5\n",
	      "regular expression \"/^adm\" in the user field is not supported by this gateway", 1);
	FAILS("local @dbs.txt all md5\n",
	      "secondary authentication file \"@dbs.txt\" is not supported by this gateway", 1);
	FAILS("local db1,@dbs.txt all md5\n",
	      "secondary authentication file \"@dbs.txt\" is not supported by this gateway", 1);
	FAILS("local all @users md5\n",
	      "secondary authentication file \"@users\" is not supported by this gateway", 1);

	/* Quoted, or a lone "@", these are plain names. */
	client c;
	hba_rules *r = LOAD("local \"@dbs\" @ trust\n");
	test_client_unix(&c, "@dbs", "@");
	EXPECT_LINE(r, &c, 1);
	hba_free(r);
}

static void test_empty(void **state)
{
	(void)state;
	hba_rules *r = (hba_rules *)1;
	char err[256];
	assert_int_equal(hba_load_string("", FILE_NAME, &r, err, sizeof err), HBA_ERR_CONFIG);
	assert_null(r);
	assert_string_equal(err, "configuration file \"hba.conf\" contains no entries");
	assert_int_equal(hba_load_string("# nothing\n\n  \n", FILE_NAME, &r, err, sizeof err),
			 HBA_ERR_CONFIG);
	assert_string_equal(err, "configuration file \"hba.conf\" contains no entries");
	/* A small err buffer is cut, still terminated; none at all is fine. */
	char small[8];
	assert_int_equal(hba_load_string("bad\n", FILE_NAME, &r, small, sizeof small),
			 HBA_ERR_CONFIG);
	assert_string_equal(small, "invalid");
	assert_int_equal(hba_load_string("bad\n", NULL, &r, NULL, 0), HBA_ERR_CONFIG);
	assert_int_equal(hba_load_string("bad\n", NULL, &r, err, sizeof err), HBA_ERR_CONFIG);
	assert_string_equal(err,
			    "invalid connection type \"bad\" (line 1 of configuration file \"(string)\")");
	assert_string_equal(hba_strerror(HBA_ERR_CONFIG), "invalid authentication rules");
}

/* ---- files */

static void test_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_hba_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "# gateway rules\n"
			    "local all all trust\n"
			    "hostssl all all 0.0.0.0/0 scram-sha-256\n";
	assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
	close(fd);

	hba_rules *r = NULL;
	char err[512];
	assert_int_equal(hba_load_file(path, &r, err, sizeof err), HBA_OK);
	assert_int_equal(hba_rule_count(r), 2);
	client c;
	test_client_tcp(&c, "10.9.8.7", "d", "u", true);
	EXPECT_LINE(r, &c, 3);
	hba_free(r);

	/* Errors name the file. */
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("local all all trust\n\nhost all all 10.0.0.0/99 md5\n", fp);
	fclose(fp);
	char want[512];
	assert_int_equal(hba_load_file(path, &r, err, sizeof err), HBA_ERR_CONFIG);
	assert_null(r);
	snprintf(want, sizeof want,
		 "invalid CIDR mask in address \"10.0.0.0/99\" (line 3 of configuration file "
		 "\"%s\")",
		 path);
	assert_string_equal(err, want);

	/* A NUL byte would hide the rest of the file. */
	fp = fopen(path, "wb");
	assert_non_null(fp);
	fwrite("local all all trust\nlocal all all\0 md5\n", 1, 39, fp);
	fclose(fp);
	assert_int_equal(hba_load_file(path, &r, err, sizeof err), HBA_ERR_CONFIG);
	snprintf(want, sizeof want,
		 "configuration file contains a NUL byte (line 2 of configuration file \"%s\")",
		 path);
	assert_string_equal(err, want);

	/* Bigger than the first read buffer. */
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 2000; i++)
		fprintf(fp, "host db%d all 10.%d.%d.0/24 md5   # rule %d\n", i, i / 256, i % 256, i);
	fclose(fp);
	assert_int_equal(hba_load_file(path, &r, err, sizeof err), HBA_OK);
	assert_int_equal(hba_rule_count(r), 2000);
	test_client_tcp(&c, "10.7.207.1", "db1999", "u", false);
	EXPECT_LINE(r, &c, 2000);
	hba_free(r);

	unlink(path);
	assert_int_equal(hba_load_file(path, &r, err, sizeof err), HBA_ERR_IO);
	assert_null(r);
	snprintf(want, sizeof want,
		 "could not open configuration file \"%s\": No such file or directory", path);
	assert_string_equal(err, want);
}

/* ---- the built-in default */

static void test_default(void **state)
{
	(void)state;
	hba_rules *r = NULL;
	assert_int_equal(hba_load_default(&r), HBA_OK);
	client c;
	const char *trusted[] = {"127.0.0.1", "::1", "::ffff:127.0.0.1"};
	for (size_t i = 0; i < 3; i++) {
		test_client_tcp(&c, trusted[i], "d", "u", false);
		assert_int_equal(test_check(r, &c).method, HBA_TRUST);
		c.req.replication = true;
		assert_int_equal(test_check(r, &c).method, HBA_TRUST);
	}
	test_client_unix(&c, "d", "u");
	assert_int_equal(test_check(r, &c).method, HBA_TRUST);
	c.req.replication = true;
	assert_int_equal(test_check(r, &c).method, HBA_TRUST);
	const char *others[] = {"127.0.0.2", "10.0.0.1", "::2", "2001:db8::1", "0.0.0.0"};
	for (size_t i = 0; i < 5; i++) {
		test_client_tcp(&c, others[i], "d", "u", i % 2 == 0);
		hba_match m = test_check(r, &c);
		assert_true(m.matched);
		assert_int_equal(m.method, HBA_SCRAM);
		c.req.replication = true;
		assert_int_equal(test_check(r, &c).method, HBA_SCRAM);
	}
	hba_free(r);
	hba_free(NULL);
}

/* ---- messages */

static void test_messages(void **state)
{
	(void)state;
	client c;
	char buf[256];

	test_client_tcp(&c, "192.0.2.10", "sales", "alice", true);
	hba_format_no_entry(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "no pg_hba.conf entry for host \"192.0.2.10\", user \"alice\", "
				 "database \"sales\", SSL encryption");
	hba_format_rejected(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "pg_hba.conf rejects connection for host \"192.0.2.10\", user "
				 "\"alice\", database \"sales\", SSL encryption");

	test_client_tcp(&c, "2001:db8::7", "sales", "alice", false);
	hba_format_no_entry(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "no pg_hba.conf entry for host \"2001:db8::7\", user \"alice\", "
				 "database \"sales\", no encryption");
	/* The address as the socket gave it. */
	test_client_tcp(&c, "::ffff:10.0.0.1", "d", "u", false);
	hba_format_rejected(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "pg_hba.conf rejects connection for host \"::ffff:10.0.0.1\", "
				 "user \"u\", database \"d\", no encryption");

	test_client_unix(&c, "sales", "bob");
	hba_format_no_entry(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "no pg_hba.conf entry for host \"[local]\", user \"bob\", "
				 "database \"sales\", no encryption");
	hba_format_rejected(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "pg_hba.conf rejects connection for host \"[local]\", user "
				 "\"bob\", database \"sales\", no encryption");

	/* Physical replication names no database. */
	c.req.replication = true;
	hba_format_no_entry(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "no pg_hba.conf entry for replication connection from host "
				 "\"[local]\", user \"bob\", no encryption");
	test_client_tcp(&c, "::1", NULL, "rep", true);
	c.req.replication = true;
	hba_format_rejected(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "pg_hba.conf rejects replication connection for host \"::1\", "
				 "user \"rep\", SSL encryption");

	/* No address to print. */
	test_client_tcp(&c, "10.0.0.1", "d", "u", false);
	c.req.addr = NULL;
	hba_format_no_entry(&c.req, buf, sizeof buf);
	assert_string_equal(buf, "no pg_hba.conf entry for host \"???\", user \"u\", database "
				 "\"d\", no encryption");

	/* Cut short, still a string. */
	char small[12];
	hba_format_no_entry(&c.req, small, sizeof small);
	assert_string_equal(small, "no pg_hba.c");
	hba_format_no_entry(&c.req, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_comma_lists),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_quoted_keywords),
		cmocka_unit_test(test_sameuser),
		cmocka_unit_test(test_replication),
		cmocka_unit_test(test_conn_types),
		cmocka_unit_test(test_first_match),
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_v4_mapped),
		cmocka_unit_test(test_all_address_and_bad_request),
		cmocka_unit_test(test_samehost_samenet),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_field_errors),
		cmocka_unit_test(test_unsupported_names),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
