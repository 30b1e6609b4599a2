/*
 * A connection's output: queued, written when the loop iteration ends, and
 * held back from a point on while a cancel is in flight (conn_hold).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/conn.h"
#include "net/worker.h"

static void on_readable(net_conn *c)
{
	(void)c;
}

static void on_error(net_conn *c, int err)
{
	(void)c;
	fail_msg("write failed: %s", strerror(err));
}

static const net_conn_ops ops = {on_readable, NULL, on_error};

typedef struct pair {
	worker w;
	net_conn c;
	int peer;
} pair;

static void pair_open(pair *p, int sndbuf)
{
	assert_int_equal(worker_init(&p->w, 0), 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	if (sndbuf)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	conn_init(&p->c, &p->w, sv[0], &ops, NULL);
	p->peer = sv[1];
}

static void pair_close(pair *p)
{
	conn_close(&p->c);
	close(p->peer);
	worker_destroy(&p->w);
}

/* What the peer can read now. */
static size_t take(pair *p, char *buf, size_t cap)
{
	size_t n = 0;
	while (n < cap) {
		ssize_t r = recv(p->peer, buf + n, cap - n, 0);
		if (r <= 0) {
			assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
			break;
		}
		n += (size_t)r;
	}
	return n;
}

static void test_hold(void **state)
{
	(void)state;
	pair p;
	pair_open(&p, 0);
	char buf[64];
	conn_write(&p.c, "abc", 3);
	conn_hold(&p.c, true);
	conn_write(&p.c, "def", 3);
	conn_flush_dirty(&p.w);
	/* What was queued before the hold goes; what came after waits. */
	assert_int_equal(take(&p, buf, sizeof buf), 3);
	assert_memory_equal(buf, "abc", 3);
	/* A second hold keeps the first one's point. */
	conn_hold(&p.c, true);
	conn_write(&p.c, "ghi", 3);
	conn_flush_dirty(&p.w);
	conn_flush_now(&p.c);
	assert_int_equal(take(&p, buf, sizeof buf), 0);
	assert_int_equal(conn_pending(&p.c), 6);
	conn_hold(&p.c, false);
	conn_flush_dirty(&p.w);
	assert_int_equal(take(&p, buf, sizeof buf), 6);
	assert_memory_equal(buf, "defghi", 6);
	assert_int_equal(conn_pending(&p.c), 0);
	pair_close(&p);
}

/* The held point stays where it was while the written part of the buffer
 * is reclaimed under it (a peer that reads slowly). */
static void test_hold_partial_writes(void **state)
{
	(void)state;
	enum { BIG = 1 << 20 };
	static char big[BIG], got[BIG + 16];
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)('a' + i % 26);
	pair p;
	pair_open(&p, 4096);
	conn_write(&p.c, big, BIG);
	conn_hold(&p.c, true);
	conn_write(&p.c, "TAIL", 4);
	size_t n = 0;
	for (int rounds = 0; rounds < 100000 && n < BIG + 4; rounds++) {
		conn_flush_now(&p.c);
		n += take(&p, got + n, sizeof got - n);
		if (n == BIG)
			break;
	}
	conn_flush_now(&p.c);
	n += take(&p, got + n, sizeof got - n);
	assert_int_equal(n, BIG);
	assert_memory_equal(got, big, BIG);
	assert_int_equal(conn_pending(&p.c), 4);
	conn_hold(&p.c, false);
	conn_flush_dirty(&p.w);
	assert_int_equal(take(&p, got, sizeof got), 4);
	assert_memory_equal(got, "TAIL", 4);
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_hold_partial_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
