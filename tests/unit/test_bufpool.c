/*
 * The buffer pool and the buffers built on it: size classes, reuse, the
 * per-thread lists, and that an idle read buffer holds no memory.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "pgw/bufpool.h"
#include "pgw/rbuf.h"
#include "pgw/wbuf.h"

static void test_classes(void **state)
{
	(void)state;
	size_t cap;
	void *a = bufpool_get(1, &cap);
	assert_non_null(a);
	assert_int_equal(cap, 512);
	bufpool_put(a, cap);
	void *b = bufpool_get(513, &cap);
	assert_int_equal(cap, 1024);
	bufpool_put(b, cap);
	void *c = bufpool_get(1 << 20, &cap);
	assert_int_equal(cap, 1 << 20);
	bufpool_put(c, cap);
	/* Past the largest class: exact size, straight from malloc. */
	void *d = bufpool_get((1 << 20) + 1, &cap);
	assert_int_equal(cap, (1 << 20) + 1);
	bufpool_put(d, cap);
	bufpool_thread_trim();
}

static void test_reuse(void **state)
{
	(void)state;
	size_t cap;
	bufpool_thread_trim();
	bufpool_stats before = bufpool_thread_stats();
	void *a = bufpool_get(600, &cap);
	bufpool_put(a, cap);
	void *b = bufpool_get(700, &cap);
	assert_ptr_equal(a, b); /* the freed block came back, no malloc */
	bufpool_put(b, cap);
	bufpool_stats after = bufpool_thread_stats();
	assert_int_equal(after.mallocs - before.mallocs, 1);
	assert_int_equal(after.in_use, before.in_use);
	assert_int_equal(after.cached, 1);

	/* The free list keeps a bounded number of blocks. */
	void *blocks[64];
	for (int i = 0; i < 64; i++)
		blocks[i] = bufpool_get(1 << 19, &cap);
	for (int i = 0; i < 64; i++)
		bufpool_put(blocks[i], cap);
	assert_true(bufpool_thread_stats().cached <= 1 + 4);
	bufpool_thread_trim();
	assert_int_equal(bufpool_thread_stats().cached, 0);
}

static void *other_thread(void *arg)
{
	size_t cap = 512;
	/* A block from the main thread joins this thread's list... */
	bufpool_put(arg, cap);
	bufpool_stats s = bufpool_thread_stats();
	void *again = bufpool_get(100, &cap);
	/* ... and is what this thread gets next. */
	bool same = again == arg && s.cached == 1;
	bufpool_put(again, cap);
	bufpool_thread_trim();
	return same ? arg : NULL;
}

static void test_threads(void **state)
{
	(void)state;
	size_t cap;
	void *a = bufpool_get(100, &cap);
	pthread_t t;
	void *ret;
	assert_int_equal(pthread_create(&t, NULL, other_thread, a), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, a);
	bufpool_thread_trim();
}

static void test_rbuf(void **state)
{
	(void)state;
	pgw_rbuf b = PGW_RBUF_INIT;
	size_t avail;
	int64_t in_use = bufpool_thread_stats().in_use;
	assert_null(b.data);
	uint8_t *p = pgw_rbuf_space(&b, 100, 0, &avail);
	assert_non_null(p);
	assert_int_equal(avail, 512);
	memcpy(p, "0123456789", 10);
	pgw_rbuf_produced(&b, 10);
	pgw_rbuf_consume(&b, 4);
	assert_int_equal(pgw_rbuf_len(&b), 6);
	assert_memory_equal(pgw_rbuf_data(&b), "456789", 6);

	/* A message announced as 5000 bytes: grown once, bytes kept. */
	p = pgw_rbuf_space(&b, 1, 5000, &avail);
	assert_true(b.cap >= 5000);
	assert_memory_equal(pgw_rbuf_data(&b), "456789", 6);
	assert_true(avail >= 5000 - 6);

	/* Consuming everything hands the block back. */
	pgw_rbuf_consume(&b, 6);
	assert_null(b.data);
	assert_int_equal(bufpool_thread_stats().in_use, in_use);

	/* Space reclaimed from consumed bytes before growing. */
	p = pgw_rbuf_space(&b, 400, 0, &avail);
	memset(p, 'x', 400);
	pgw_rbuf_produced(&b, 400);
	pgw_rbuf_consume(&b, 300);
	uint8_t *block = b.data;
	p = pgw_rbuf_space(&b, 300, 0, &avail);
	assert_ptr_equal(b.data, block);
	assert_ptr_equal(pgw_rbuf_data(&b), block);
	pgw_rbuf_release(&b);
	bufpool_thread_trim();
}

/* Ten thousand idle connections cost no buffer memory. */
static void test_idle_connections(void **state)
{
	(void)state;
	static pgw_rbuf conns[10000];
	size_t avail;
	int64_t in_use = bufpool_thread_stats().in_use;
	for (int i = 0; i < 10000; i++) {
		uint8_t *p = pgw_rbuf_space(&conns[i], 64, 0, &avail);
		memset(p, 'Q', 64);
		pgw_rbuf_produced(&conns[i], 64);
		pgw_rbuf_consume(&conns[i], 64);
	}
	assert_int_equal(bufpool_thread_stats().in_use, in_use);
	for (int i = 0; i < 10000; i++)
		assert_null(conns[i].data);
	bufpool_thread_trim();
}

static void test_wbuf(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;
	for (int i = 0; i < 1000; i++)
		pgw_w_i32(&w, i);
	assert_false(w.failed);
	assert_int_equal(w.len, 4000);
	assert_int_equal(w.cap, 4096);
	pgw_wbuf_consume(&w, 3996);
	assert_int_equal(w.len, 4);
	assert_memory_equal(w.data, "\x00\x00\x03\xe7", 4);
	pgw_wbuf_consume(&w, 4);
	assert_null(w.data);
	bufpool_thread_trim();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes), cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_threads), cmocka_unit_test(test_rbuf),
		cmocka_unit_test(test_idle_connections), cmocka_unit_test(test_wbuf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
