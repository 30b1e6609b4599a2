/*
 * A main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput once per file named on the command line (a
 * directory: once per file in it), or once on all of stdin when there are
 * none. Each input is handed over in an exactly sized heap block, so ASan
 * sees a read past its end. When an input kills the process (a failed
 * check, a signal, a sanitizer report) its path is printed last, so a
 * replay of a whole corpus (ctest's fuzz_replay_<kind>) names the culprit.
 *
 * Built with afl-clang-fast/afl-clang-lto it also runs AFL++'s persistent
 * mode (shared-memory test cases, many per process) when given no files.
 *
 * Replay or AFL++ builds, without CMake's PGW_FUZZ (after a normal build in
 * build/, which generates build/gen):
 *   gcc -g -fsanitize=address,undefined -Iinclude -Isrc/codec -Ibuild/gen -Itests/unit \
 *       fuzz/fuzz_frontend.c fuzz/fuzz_common.c fuzz/standalone_main.c \
 *       src/codec/bufpool.c src/codec/buffers.c src/codec/frame.c \
 *       build/gen/pgw_bodies.c build/gen/pgw_encode.c -o fuzz_frontend_replay
 *   (fuzz_roundtrip also needs build/gen/pgw_vectors.c)
 * or with CMake: -DPGW_FUZZ=ON -DPGW_FUZZ_STANDALONE=ON and CC=afl-clang-fast.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Present only when a sanitizer runtime is linked in. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* The input being run, for the dying words below. */
static char fz_current[4096];

static void fz_say_current(void)
{
	static const char pre[] = "\nfuzz replay: the input that failed: ";
	if (fz_current[0] == '\0')
		return;
	ssize_t w = write(STDERR_FILENO, pre, sizeof pre - 1);
	w = write(STDERR_FILENO, fz_current, strlen(fz_current));
	w = write(STDERR_FILENO, "\n", 1);
	(void)w;
	fz_current[0] = '\0'; /* said once, though abort() may follow */
}

static void fz_on_signal(int sig)
{
	fz_say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * A sanitizer's report ends in its death callback (or in abort() with
 * abort_on_error=1); it keeps its own SIGSEGV handling, so only SIGABRT is
 * taken here. Without one, every fatal signal is.
 */
static void fz_watch_deaths(void)
{
	signal(SIGABRT, fz_on_signal);
	if (__sanitizer_set_death_callback) {
		__sanitizer_set_death_callback(fz_say_current);
		return;
	}
	signal(SIGSEGV, fz_on_signal);
	signal(SIGBUS, fz_on_signal);
	signal(SIGFPE, fz_on_signal);
	signal(SIGILL, fz_on_signal);
}

static int run_stream(FILE *f, const char *name)
{
	size_t cap = 65536, len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return -1;
	for (;;) {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		if (got == 0)
			break;
		len += got;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", name);
		free(buf);
		return -1;
	}
	/* Exactly sized, so a read past the end is out of bounds. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	snprintf(fz_current, sizeof fz_current, "%s", name);
	LLVMFuzzerTestOneInput(exact, len);
	fz_current[0] = '\0';
	free(exact);
	return 0;
}

static int run_path(const char *path, size_t *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *dir = opendir(path);
		if (!dir) {
			perror(path);
			return -1;
		}
		int rc = 0;
		struct dirent *e;
		while ((e = readdir(dir)) != NULL && rc == 0) {
			if (e->d_name[0] == '.')
				continue;
			size_t n = strlen(path) + strlen(e->d_name) + 2;
			char *sub = malloc(n);
			if (!sub) {
				rc = -1;
				break;
			}
			size_t pl = strlen(path);
			snprintf(sub, n, "%s%s%s", path, pl && path[pl - 1] == '/' ? "" : "/", e->d_name);
			rc = run_path(sub, count);
			free(sub);
		}
		closedir(dir);
		return rc;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	int rc = run_stream(f, path);
	fclose(f);
	if (rc == 0)
		(*count)++;
	return rc;
}

#ifdef __AFL_FUZZ_TESTCASE_LEN
__AFL_FUZZ_INIT();
#endif

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	size_t count = 0;
	int files = 0;
	fz_watch_deaths();
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			continue; /* libFuzzer-style flags: ignored */
		files++;
		if (run_path(argv[i], &count) != 0)
			return 1;
	}
	if (files > 0) {
		fprintf(stderr, "ran %zu inputs\n", count);
		return 0;
	}
#ifdef __AFL_FUZZ_TESTCASE_LEN
	__AFL_INIT();
	const unsigned char *shm = __AFL_FUZZ_TESTCASE_BUF;
	while (__AFL_LOOP(10000)) {
		size_t len = (size_t)__AFL_FUZZ_TESTCASE_LEN;
		uint8_t *exact = malloc(len ? len : 1);
		if (!exact)
			return 1;
		memcpy(exact, shm, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	return 0;
#else
	return run_stream(stdin, "stdin") == 0 ? 0 : 1;
#endif
}
