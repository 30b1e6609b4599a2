/*
 * codec-bench: how fast pgw_decode frames and decodes real conversations.
 *
 * Each stream is one direction of a captured conversation (the .pgwt files
 * in tests/data) with the startup packets cut off, replicated whole message
 * by whole message to about --mib MiB in memory, and decoded end to end; the
 * best of --runs runs is reported, as one line per stream:
 *
 *   <stream>: <MB/s> MB/s, <M msg/s> M msg/s, <allocs> allocs/msg, <ratio> of memchr
 *
 * MB is 10^6 bytes. "of memchr" compares with one memchr() pass (glibc, SIMD)
 * over the same bytes looking for a byte they do not hold (or, if they hold
 * all 256, counting the rarest one): a floor for "read every byte once". allocs/msg counts malloc/calloc/realloc calls made while
 * the timed loops ran (all runs, the first included), by interposing them
 * below.
 *
 * Modes:
 *   <stream>            zero-copy: pgw_decode straight from the big buffer
 *   <stream>+columns    as above, and every DataRow's columns walked with
 *                       pgw_array_iter/pgw_next_value
 *   <stream>+rbuf16k    (frontend streams and datarow-heavy)
 *                       like a server reading a socket: 16 KiB "reads" copied
 *                       into a pooled pgw_rbuf, every whole message decoded
 *                       and consumed, the buffer going back to the pool
 *                       whenever it empties
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgw/codec.h"
#include "pgw/rbuf.h"
#include "transcript.h"

#ifndef PGW_BENCH_DATA_DIR
#define PGW_BENCH_DATA_DIR "tests/data"
#endif

#define READ_SIZE 16384u

/* ---- allocation counting ---------------------------------------------- */

static volatile int alloc_counting;
static volatile uint64_t alloc_count;

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_ASAN 1
#endif
#endif

#ifdef BENCH_ASAN
/* ASan owns malloc: count through its hooks instead. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	(void)n;
	if (alloc_counting)
		alloc_count++;
}

static void on_free(const volatile void *p)
{
	(void)p;
}

static void alloc_hooks_init(void)
{
	__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
/* glibc's own entry points; these definitions take the place of malloc and
 * friends for the whole process, libpgwire's bufpool included. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t k, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n)
{
	if (alloc_counting)
		alloc_count++;
	return __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
	if (alloc_counting)
		alloc_count++;
	return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
	if (alloc_counting)
		alloc_count++;
	return __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}

static void alloc_hooks_init(void)
{
}
#endif

/* Make sure the counting sees allocations at all, so 0.000 means none. */
static void alloc_hooks_check(void)
{
	uint64_t before = alloc_count;
	alloc_counting = 1;
	void *volatile p = malloc(64);
	alloc_counting = 0;
	free(p);
	if (alloc_count - before != 1) {
		fprintf(stderr, "codec-bench: malloc is not being counted\n");
		exit(1);
	}
}

/* ---- helpers ---------------------------------------------------------- */

static volatile uint64_t sink;

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "codec-bench: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory%s%s", "", "");
	return p;
}

static void cpu_model(char *out, size_t cap)
{
	snprintf(out, cap, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "model name", 10) != 0)
			continue;
		const char *v = strchr(line, ':');
		if (!v)
			break;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strcspn(v, "\n");
		snprintf(out, cap, "%.*s", (int)n, v);
		break;
	}
	fclose(f);
}

/* ---- streams ---------------------------------------------------------- */

typedef struct bench_stream {
	const char *name;
	const char *file;
	pgw_direction dir;
	bool rbuf;    /* also the +rbuf16k line */
	bool columns; /* also the +columns line */
	/* one copy of the message part */
	uint8_t *seg;
	size_t seg_len;
	uint64_t seg_msgs;
	/* the replicated stream */
	size_t copies;
	uint8_t *buf;
	size_t len;
	uint64_t msgs;
	double memchr_mbs;
} bench_stream;

static pgw_phase msg_phase(pgw_direction dir)
{
	return dir == PGW_FRONTEND ? PGW_PH_READY : PGW_PH_BACKEND;
}

static void decoder_for(pgw_decoder *d, pgw_direction dir)
{
	pgw_decoder_init(d, dir, 0);
	d->phase = msg_phase(dir);
}

/*
 * Cut one copy of the stream's message part out of its transcript.
 * Frontend: after the startup packet(s) (an SSLRequest/GSSENCRequest the
 * server said 'N' to, then the StartupMessage), up to but not including
 * Terminate. Backend: from the first byte (trust auth: AuthenticationOk
 * onwards) to the last whole message.
 */
static void load_stream(bench_stream *s, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, s->file);
	pgw_transcript t;
	if (pgw_transcript_load(path, &t) != 0)
		die("cannot load %s%s", path, "");
	const uint8_t *p = t.stream[s->dir == PGW_BACKEND];
	size_t len = t.stream_len[s->dir == PGW_BACKEND];

	pgw_decoder d;
	pgw_msg m;
	pgw_error err;
	size_t used, off = 0;
	memset(&err, 0, sizeof err);
	snprintf(err.message, sizeof err.message, "truncated");
	pgw_decoder_init(&d, s->dir, 0);
	if (s->dir == PGW_FRONTEND) {
		for (;;) {
			if (pgw_decode(&d, p + off, len - off, &m, &used, &err) != PGW_OK)
				die("%s: bad startup packet: %s", path, err.message);
			off += used;
			if (m.id == PGW_MSG_STARTUP_MESSAGE)
				break;
			if (m.id != PGW_MSG_SSL_REQUEST && m.id != PGW_MSG_GSSENC_REQUEST)
				die("%s: unexpected %s before the StartupMessage", path,
				    pgw_msg_name(m.id));
		}
	}
	d.phase = msg_phase(s->dir);
	size_t start = off, end = off;
	uint64_t n = 0;
	while (off < len) {
		pgw_status st = pgw_decode(&d, p + off, len - off, &m, &used, &err);
		if (st == PGW_NEED_MORE)
			break;
		if (st != PGW_OK)
			die("%s: %s (not a trust-auth conversation?)", path, err.message);
		if (m.id == PGW_MSG_TERMINATE)
			break;
		off += used;
		end = off;
		n++;
	}
	if (n == 0)
		die("%s: no messages in the %s direction", path,
		    s->dir == PGW_FRONTEND ? "frontend" : "backend");
	s->seg_len = end - start;
	s->seg = xmalloc(s->seg_len);
	memcpy(s->seg, p + start, s->seg_len);
	s->seg_msgs = n;
	pgw_transcript_free(&t);
}

/* ---- the measured loops ----------------------------------------------- */

typedef uint64_t (*mode_fn)(const uint8_t *buf, size_t len, pgw_direction dir);

static void decode_failed(const pgw_error *err)
{
	die("decode failed: %s%s", err->message, "");
}

/* Zero-copy: every message decoded in place. */
static uint64_t mode_plain(const uint8_t *buf, size_t len, pgw_direction dir)
{
	pgw_decoder d;
	pgw_msg m;
	pgw_error err;
	size_t used, off = 0;
	uint64_t n = 0, ids = 0;
	decoder_for(&d, dir);
	while (off < len) {
		if (pgw_decode(&d, buf + off, len - off, &m, &used, &err) != PGW_OK)
			decode_failed(&err);
		ids += m.id;
		off += used;
		n++;
	}
	sink += ids;
	return n;
}

/* Zero-copy, and every DataRow's columns walked. */
static uint64_t mode_columns(const uint8_t *buf, size_t len, pgw_direction dir)
{
	pgw_decoder d;
	pgw_msg m;
	pgw_error err;
	size_t used, off = 0;
	uint64_t n = 0, sum = 0;
	decoder_for(&d, dir);
	while (off < len) {
		if (pgw_decode(&d, buf + off, len - off, &m, &used, &err) != PGW_OK)
			decode_failed(&err);
		if (m.id == PGW_MSG_DATA_ROW) {
			pgw_iter it = pgw_array_iter(&m.body.data_row.columns);
			pgw_value v;
			while (pgw_next_value(&it, &v))
				if (v.len > 0)
					sum += (uint64_t)v.len;
		}
		off += used;
		n++;
	}
	sink += sum;
	return n;
}

/* A socket's worth of reads through a pooled pgw_rbuf. */
static uint64_t mode_rbuf(const uint8_t *buf, size_t len, pgw_direction dir)
{
	pgw_decoder d;
	pgw_msg m;
	pgw_error err;
	pgw_rbuf rb = PGW_RBUF_INIT;
	size_t used, in = 0, hint = 0;
	uint64_t n = 0, ids = 0;
	decoder_for(&d, dir);
	while (in < len) {
		size_t avail;
		uint8_t *dst = pgw_rbuf_space(&rb, READ_SIZE, hint, &avail);
		if (!dst)
			die("pgw_rbuf_space: out of memory%s%s", "", "");
		size_t k = len - in < READ_SIZE ? len - in : READ_SIZE;
		memcpy(dst, buf + in, k);
		pgw_rbuf_produced(&rb, k);
		in += k;
		hint = 0;
		while (pgw_rbuf_len(&rb) > 0) {
			pgw_status st =
				pgw_decode(&d, pgw_rbuf_data(&rb), pgw_rbuf_len(&rb), &m, &used, &err);
			if (st == PGW_NEED_MORE) {
				hint = d.need;
				break;
			}
			if (st != PGW_OK)
				decode_failed(&err);
			ids += m.id;
			pgw_rbuf_consume(&rb, used);
			n++;
		}
	}
	if (pgw_rbuf_len(&rb) != 0)
		die("rbuf: a partial message is left at the end%s%s", "", "");
	pgw_rbuf_release(&rb);
	sink += ids;
	return n;
}

typedef struct result {
	double best_sec;
	uint64_t msgs;	 /* per run */
	uint64_t allocs; /* over all runs */
} result;

static result measure(mode_fn fn, const uint8_t *buf, size_t len, pgw_direction dir, int runs,
		      uint64_t expect_msgs, const char *label)
{
	result r = {1e300, 0, 0};
	for (int i = 0; i < runs; i++) {
		uint64_t before = alloc_count;
		alloc_counting = 1;
		double t0 = now_sec();
		uint64_t n = fn(buf, len, dir);
		double t1 = now_sec();
		alloc_counting = 0;
		r.allocs += alloc_count - before;
		if (n != expect_msgs) {
			char what[64];
			snprintf(what, sizeof what, "%llu, expected %llu", (unsigned long long)n,
				 (unsigned long long)expect_msgs);
			die("%s: decoded %s messages", label, what);
		}
		r.msgs = n;
		if (t1 - t0 < r.best_sec)
			r.best_sec = t1 - t0;
	}
	return r;
}

/* Best time for memchr over buf looking for c (counting any hits). */
static double memchr_best(const uint8_t *buf, size_t len, int c, int runs)
{
	double best = 1e300;
	for (int i = 0; i < runs; i++) {
		double t0 = now_sec();
		const uint8_t *p = buf, *end = buf + len;
		uint64_t hits = 0;
		while (p < end && (p = memchr(p, c, (size_t)(end - p))) != NULL) {
			hits++;
			p++;
		}
		double t1 = now_sec();
		sink += hits;
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	return best;
}

/* The byte the stream holds fewest of (preferring 0xFF downwards): ideally
 * absent, so memchr is one pass. */
static int rare_byte(const bench_stream *s)
{
	size_t count[256] = {0};
	for (size_t i = 0; i < s->seg_len; i++)
		count[s->seg[i]]++;
	int best = 0xFF;
	for (int c = 0xFF; c >= 0; c--)
		if (count[c] < count[best])
			best = c;
	return best;
}

static void report(const char *name, const char *suffix, const result *r, size_t len,
		   double memchr_mbs, int runs)
{
	double mbs = (double)len / r->best_sec / 1e6;
	double mmsgs = (double)r->msgs / r->best_sec / 1e6;
	double apm = (double)r->allocs / ((double)r->msgs * runs);
	printf("%s%s: %.0f MB/s, %.2f M msg/s, %.3f allocs/msg, %.2f of memchr\n", name, suffix,
	       mbs, mmsgs, apm, mbs / memchr_mbs);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: codec-bench [--mib N] [--runs N] [--data DIR] [--stream S]\n"
		   "  --mib N    replicate each stream to about N MiB (default 64)\n"
		   "  --runs N   runs per measurement, the best is reported (default 5)\n"
		   "  --data DIR the .pgwt files (default $PGW_TEST_DATA or %s)\n"
		   "  --stream S only the stream named S (for profiling)\n",
		PGW_BENCH_DATA_DIR);
}

static long parse_num(const char *opt, const char *v, long lo, long hi)
{
	char *end;
	errno = 0;
	long n = v ? strtol(v, &end, 10) : 0;
	if (!v || errno || *end || n < lo || n > hi) {
		fprintf(stderr, "codec-bench: %s wants a number from %ld to %ld\n", opt, lo, hi);
		usage(stderr);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	long mib = 64, runs = 5;
	const char *only = NULL;
	const char *data = getenv("PGW_TEST_DATA");
	if (!data || !*data)
		data = PGW_BENCH_DATA_DIR;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mib"))
			mib = parse_num("--mib", i + 1 < argc ? argv[++i] : NULL, 1, 16384);
		else if (!strcmp(argv[i], "--runs"))
			runs = parse_num("--runs", i + 1 < argc ? argv[++i] : NULL, 1, 1000);
		else if (!strcmp(argv[i], "--data") && i + 1 < argc)
			data = argv[++i];
		else if (!strcmp(argv[i], "--stream") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	alloc_hooks_init();
	alloc_hooks_check();

	bench_stream streams[] = {
		{.name = "pgbench-extended", .file = "pgbench-extended.pgwt", .dir = PGW_FRONTEND,
		 .rbuf = true},
		{.name = "pgbench-prepared", .file = "pgbench-prepared.pgwt", .dir = PGW_FRONTEND,
		 .rbuf = true},
		{.name = "simple-query", .file = "pgbench-simple.pgwt", .dir = PGW_FRONTEND,
		 .rbuf = true},
		{.name = "datarow-heavy", .file = "datarow-heavy.pgwt", .dir = PGW_BACKEND,
		 .columns = true, .rbuf = true},
		{.name = "pgbench-backend", .file = "pgbench-extended.pgwt", .dir = PGW_BACKEND},
	};
	size_t nstreams = sizeof streams / sizeof streams[0];
	if (only) {
		size_t k = 0;
		for (size_t i = 0; i < nstreams; i++)
			if (!strcmp(streams[i].name, only))
				streams[k++] = streams[i];
		if (k == 0)
			die("no stream named %s%s", only, "");
		nstreams = k;
	}
	/* Build every stream first (and its memchr floor), so the header can
	 * say what is measured. */
	size_t target = (size_t)mib << 20;
	for (size_t i = 0; i < nstreams; i++) {
		bench_stream *s = &streams[i];
		load_stream(s, data);
		s->copies = (target + s->seg_len / 2) / s->seg_len;
		if (s->copies == 0)
			s->copies = 1;
		s->len = s->seg_len * s->copies;
		s->msgs = s->seg_msgs * s->copies;
		s->buf = xmalloc(s->len);
		for (size_t c = 0; c < s->copies; c++)
			memcpy(s->buf + c * s->seg_len, s->seg, s->seg_len);
		s->memchr_mbs = (double)s->len / memchr_best(s->buf, s->len, rare_byte(s), (int)runs) / 1e6;
	}

	char cpu[256];
	cpu_model(cpu, sizeof cpu);
	printf("# cpu: %s; best of %ld runs; MB = 10^6 bytes; streams:", cpu, runs);
	for (size_t i = 0; i < nstreams; i++) {
		const bench_stream *s = &streams[i];
		printf("%s %s %.1f MiB = %llu msgs (%zu B x %zu, memchr %.1f GB/s)", i ? "," : "",
		       s->name, (double)s->len / (1 << 20), (unsigned long long)s->msgs, s->seg_len,
		       s->copies, s->memchr_mbs / 1000);
	}
	printf("\n");
	fflush(stdout);

	for (size_t i = 0; i < nstreams; i++) {
		bench_stream *s = &streams[i];
		result r = measure(mode_plain, s->buf, s->len, s->dir, (int)runs, s->msgs, s->name);
		report(s->name, "", &r, s->len, s->memchr_mbs, (int)runs);
		if (s->columns) {
			r = measure(mode_columns, s->buf, s->len, s->dir, (int)runs, s->msgs, s->name);
			report(s->name, "+columns", &r, s->len, s->memchr_mbs, (int)runs);
		}
		if (s->rbuf) {
			r = measure(mode_rbuf, s->buf, s->len, s->dir, (int)runs, s->msgs, s->name);
			report(s->name, "+rbuf16k", &r, s->len, s->memchr_mbs, (int)runs);
		}
		free(s->buf);
		free(s->seg);
	}
	return 0;
}
