/*
 * multipooler: the command line. Reads flags, starts the workers serving
 * MultiPoolerService over gRPC, and stops them cleanly on SIGINT or
 * SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "multipooler/mp.h"

#define VERSION "0.1.0"

static const char usage_text[] =
	"Usage: multipooler [OPTIONS]\n"
	"\n"
	"Serves multigres's MultiPoolerService (gRPC) over pools of PostgreSQL connections.\n"
	"\n"
	"  --listen HOST:PORT       serve gRPC here, or on a Unix socket PATH (default\n"
	"                           127.0.0.1:15200; port 0: any, printed at start)\n"
	"  --backend 'CONNINFO'     the PostgreSQL server: host=H port=P [user=U]\n"
	"                           [password=S] [connect_timeout=S]; host may be a socket\n"
	"                           directory (default 'host=127.0.0.1 port=5432')\n"
	"  --workers N              worker threads (default: the number of cores)\n"
	"  --pool-size N            server connections per (database, user), all workers\n"
	"                           together (default 20)\n"
	"  --pool-timeout SECONDS   how long a request waits for a server connection (default 30)\n"
	"  --idle-timeout SECONDS   close server connections idle this long (default 300, 0: never)\n"
	"  --lifetime SECONDS       retire server connections this old (default 3600, 0: never)\n"
	"  --max-prepared N         prepared statements kept on each server connection (default 250)\n"
	"  --reserved-timeout SECONDS\n"
	"                           roll back and release a reserved connection unused this\n"
	"                           long (default 60, 0: never)\n"
	"  --max-result-bytes N     the largest ExecuteQuery answer (default 8388608)\n"
	"  --pooler-id CELL/NAME    this pooler's id in answers (default zone1/multipooler)\n"
	"  --database NAME          the database this pooler serves: health reports on it, and\n"
	"                           requests naming none use it (default postgres)\n"
	"  --log-level LEVEL        debug, info (default), warning or error\n"
	"  --help, --version\n"
	"\n"
	"Requests run as their options.user (else the --backend user, else postgres) on\n"
	"their target's database. The pooler logs in with the SCRAM keys a request carries\n"
	"(options.user_auth), else with the --backend password, else trust.\n"
	"GetAuthCredentials reads pg_authid as the --backend user, which must therefore be\n"
	"a superuser for it to work.\n"
	"Reserved connection ids belong to the worker that made them: a client keeps one\n"
	"gRPC connection for the calls of one session.\n";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("multipooler: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static long parse_long(const char *name, const char *v, long min, long max)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		die("invalid value for --%s: \"%s\" (want a whole number from %ld to %ld)", name, v,
		    min, max);
	return n;
}

static double parse_seconds(const char *name, const char *v)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || d < 0 || d > 1e7)
		die("invalid value for --%s: \"%s\" (want seconds)", name, v);
	return d;
}

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
	if (!*slot)
		die("out of memory");
}

/* key=value pairs, values optionally single-quoted. */
static void parse_backend(mp_config *cfg, const char *conninfo)
{
	const char *p = conninfo;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *eq = strchr(p, '=');
		if (!eq)
			die("invalid --backend \"%s\": want key=value pairs", conninfo);
		char key[64];
		size_t klen = (size_t)(eq - p);
		while (klen && p[klen - 1] == ' ')
			klen--;
		if (klen == 0 || klen >= sizeof key)
			die("invalid --backend \"%s\"", conninfo);
		memcpy(key, p, klen);
		key[klen] = '\0';
		p = eq + 1;
		while (*p == ' ')
			p++;
		char val[1024];
		size_t vlen = 0;
		if (*p == '\'') {
			p++;
			while (*p && *p != '\'') {
				if (*p == '\\' && p[1])
					p++;
				if (vlen + 1 < sizeof val)
					val[vlen++] = *p;
				p++;
			}
			if (*p != '\'')
				die("invalid --backend \"%s\": unterminated quote", conninfo);
			p++;
		} else {
			while (*p && *p != ' ' && *p != '\t') {
				if (vlen + 1 < sizeof val)
					val[vlen++] = *p;
				p++;
			}
		}
		val[vlen] = '\0';
		if (strcmp(key, "host") == 0)
			set_str(&cfg->pool.host, val);
		else if (strcmp(key, "port") == 0)
			cfg->pool.port = (int)parse_long("backend port", val, 1, 65535);
		else if (strcmp(key, "user") == 0)
			set_str(&cfg->user, val);
		else if (strcmp(key, "password") == 0)
			set_str(&cfg->pool.password, val);
		else if (strcmp(key, "connect_timeout") == 0)
			cfg->pool.connect_timeout = parse_seconds("backend connect_timeout", val);
		else
			die("unknown --backend key \"%s\" (known: host, port, user, password, "
			    "connect_timeout)",
			    key);
	}
}

static void resolve_backend(pool_config *pc)
{
	if (pc->host[0] == '/') {
		struct sockaddr_un *sun = (struct sockaddr_un *)&pc->addr;
		memset(sun, 0, sizeof *sun);
		sun->sun_family = AF_UNIX;
		int n = snprintf(sun->sun_path, sizeof sun->sun_path, "%s/.s.PGSQL.%d", pc->host,
				 pc->port);
		if (n < 0 || (size_t)n >= sizeof sun->sun_path)
			die("backend socket path too long");
		pc->addrlen = sizeof *sun;
		return;
	}
	struct addrinfo hints = {0}, *res;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	char port[16];
	snprintf(port, sizeof port, "%d", pc->port);
	int rc = getaddrinfo(pc->host, port, &hints, &res);
	if (rc != 0)
		die("cannot resolve backend host \"%s\": %s", pc->host, gai_strerror(rc));
	memcpy(&pc->addr, res->ai_addr, res->ai_addrlen);
	pc->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

enum {
	OPT_LISTEN = 1000,
	OPT_BACKEND,
	OPT_WORKERS,
	OPT_POOL_SIZE,
	OPT_POOL_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_LIFETIME,
	OPT_MAX_PREPARED,
	OPT_RESERVED_TIMEOUT,
	OPT_MAX_RESULT,
	OPT_POOLER_ID,
	OPT_DATABASE,
	OPT_LOG_LEVEL,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option options[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"backend", required_argument, NULL, OPT_BACKEND},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"pool-size", required_argument, NULL, OPT_POOL_SIZE},
	{"pool-timeout", required_argument, NULL, OPT_POOL_TIMEOUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"lifetime", required_argument, NULL, OPT_LIFETIME},
	{"max-prepared", required_argument, NULL, OPT_MAX_PREPARED},
	{"reserved-timeout", required_argument, NULL, OPT_RESERVED_TIMEOUT},
	{"max-result-bytes", required_argument, NULL, OPT_MAX_RESULT},
	{"pooler-id", required_argument, NULL, OPT_POOLER_ID},
	{"database", required_argument, NULL, OPT_DATABASE},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

static void set_option(mp_config *cfg, int opt, const char *name, const char *v)
{
	switch (opt) {
	case OPT_LISTEN:
		set_str(&cfg->listen, v);
		break;
	case OPT_BACKEND:
		parse_backend(cfg, v);
		break;
	case OPT_WORKERS:
		cfg->workers = (int)parse_long(name, v, 1, 127);
		break;
	case OPT_POOL_SIZE:
		cfg->pool.pool_size = (int)parse_long(name, v, 1, 100000);
		break;
	case OPT_POOL_TIMEOUT:
		cfg->pool.wait_timeout = parse_seconds(name, v);
		break;
	case OPT_IDLE_TIMEOUT:
		cfg->pool.idle_timeout = parse_seconds(name, v);
		break;
	case OPT_LIFETIME:
		cfg->pool.lifetime = parse_seconds(name, v);
		break;
	case OPT_MAX_PREPARED:
		cfg->pool.max_prepared = (int)parse_long(name, v, 1, 1000000);
		break;
	case OPT_RESERVED_TIMEOUT:
		cfg->reserved_timeout = parse_seconds(name, v);
		break;
	case OPT_MAX_RESULT:
		cfg->max_result_bytes = (size_t)parse_long(name, v, 1024, 12L << 20);
		break;
	case OPT_POOLER_ID: {
		const char *slash = strchr(v, '/');
		if (!slash || slash == v || !slash[1] || strchr(slash + 1, '/'))
			die("invalid value for --pooler-id: \"%s\" (want CELL/NAME)", v);
		free(cfg->cell);
		cfg->cell = strndup(v, (size_t)(slash - v));
		set_str(&cfg->name, slash + 1);
		break;
	}
	case OPT_DATABASE:
		set_str(&cfg->database, v);
		break;
	case OPT_LOG_LEVEL:
		if (strcmp(v, "debug") == 0)
			log_min_level = LOG_DEBUG;
		else if (strcmp(v, "info") == 0)
			log_min_level = LOG_INFO;
		else if (strcmp(v, "warning") == 0)
			log_min_level = LOG_WARNING;
		else if (strcmp(v, "error") == 0)
			log_min_level = LOG_ERROR;
		else
			die("invalid value for --log-level: \"%s\"", v);
		break;
	default:
		die("unknown option %s", name);
	}
}

int main(int argc, char **argv)
{
	mp_server s;
	memset(&s, 0, sizeof s);
	mp_config *cfg = &s.cfg;
	cfg->pool.host = strdup("127.0.0.1");
	cfg->pool.port = 5432;
	cfg->pool.pool_size = 20;
	cfg->pool.max_prepared = 250;
	cfg->pool.wait_timeout = 30;
	cfg->pool.idle_timeout = 300;
	cfg->pool.lifetime = 3600;
	cfg->pool.connect_timeout = 10;
	cfg->listen = strdup("127.0.0.1:15200");
	cfg->reserved_timeout = 60;
	cfg->max_result_bytes = 8u << 20;
	cfg->probe_interval = 1.0;
	cfg->cell = strdup("zone1");
	cfg->name = strdup("multipooler");
	cfg->database = strdup("postgres");
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->workers = cores > 0 ? (cores > 127 ? 127 : (int)cores) : 1;

	opterr = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("multipooler %s\n", VERSION);
			return 0;
		case '?':
			if (optopt)
				die("option %s needs a value (see --help)", argv[optind - 1]);
			die("unknown option %s (see --help)", argv[optind - 1]);
		default: {
			const struct option *o = options;
			while (o->name && o->val != opt)
				o++;
			set_option(cfg, opt, o->name ? o->name : "?", optarg);
		}
		}
	}
	if (optind < argc)
		die("unexpected argument \"%s\" (see --help)", argv[optind]);
	if (!cfg->user) {
		const char *u = getenv("PGUSER");
		cfg->user = strdup(u && *u ? u : "postgres");
	}
	if (!cfg->pool.host || !cfg->listen || !cfg->cell || !cfg->name || !cfg->database ||
	    !cfg->user)
		die("out of memory");
	resolve_backend(&cfg->pool);

	signal(SIGPIPE, SIG_IGN);
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	if (mp_server_start(&s) != 0) {
		log_error("could not start");
		return 1;
	}
	if (cfg->listen[0] == '/')
		log_info("multipooler %s ready: listening on %s, %d workers, pool size %d, server "
			 "%s:%d",
			 VERSION, cfg->listen, s.nworkers, cfg->pool.pool_size, cfg->pool.host,
			 cfg->pool.port);
	else
		log_info("multipooler %s ready: listening on port %d, %d workers, pool size %d, "
			 "server %s:%d",
			 VERSION, s.port, s.nworkers, cfg->pool.pool_size, cfg->pool.host,
			 cfg->pool.port);
	int sig = 0;
	sigwait(&stop_signals, &sig);
	log_info("shutting down on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	mp_server_stop(&s);
	pool_groups_free();
	free(cfg->listen);
	free(cfg->pool.host);
	free(cfg->pool.password);
	free(cfg->cell);
	free(cfg->name);
	free(cfg->database);
	free(cfg->user);
	log_info("stopped");
	return 0;
}
