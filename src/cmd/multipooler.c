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

#include "cmd/cmdline.h"
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
	"  --config FILE            read options from FILE: one 'name = value' per line,\n"
	"                           names as above without the dashes; flags win\n"
	"  --help, --version\n"
	"\n"
	"Requests run as their options.user (else the --backend user, else postgres) on\n"
	"their target's database. The pooler logs in with the SCRAM keys a request carries\n"
	"(options.user_auth), else with the --backend password, else trust.\n"
	"GetAuthCredentials reads pg_authid as the --backend user, which must therefore be\n"
	"a superuser for it to work.\n"
	"Reserved connection ids belong to the worker that made them: a client keeps one\n"
	"gRPC connection for the calls of one session.\n";

/* --backend: host=H port=P user=U password=S connect_timeout=S. */
static void set_backend_key(void *arg, int opt, const char *key, const char *val)
{
	mp_config *cfg = arg;
	(void)opt;
	if (strcmp(key, "host") == 0)
		cmdline_set_str(&cfg->pool.host, val);
	else if (strcmp(key, "port") == 0)
		cfg->pool.port = (int)cmdline_long("backend port", val, 1, 65535);
	else if (strcmp(key, "user") == 0)
		cmdline_set_str(&cfg->user, val);
	else if (strcmp(key, "password") == 0)
		cmdline_set_str(&cfg->pool.password, val);
	else if (strcmp(key, "connect_timeout") == 0)
		cfg->pool.connect_timeout = cmdline_seconds("backend connect_timeout", val);
	else
		cmdline_die("unknown --backend key \"%s\" (known: host, port, user, password, "
			    "connect_timeout)",
			    key);
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
	OPT_CONFIG,
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
	{"config", required_argument, NULL, OPT_CONFIG},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

static void set_option(void *arg, int opt, const char *name, const char *v)
{
	mp_config *cfg = arg;
	switch (opt) {
	case OPT_HELP:
		fputs(usage_text, stdout);
		exit(0);
	case OPT_VERSION:
		printf("multipooler %s\n", VERSION);
		exit(0);
	case OPT_CONFIG:
		break; /* read before the flags */
	case OPT_LISTEN:
		cmdline_set_str(&cfg->listen, v);
		break;
	case OPT_BACKEND:
		cmdline_conninfo("--backend", v, set_backend_key, cfg);
		break;
	case OPT_WORKERS:
		cfg->workers = (int)cmdline_long(name, v, 1, 127);
		break;
	case OPT_POOL_SIZE:
		cfg->pool.pool_size = (int)cmdline_long(name, v, 1, 100000);
		break;
	case OPT_POOL_TIMEOUT:
		cfg->pool.wait_timeout = cmdline_seconds(name, v);
		break;
	case OPT_IDLE_TIMEOUT:
		cfg->pool.idle_timeout = cmdline_seconds(name, v);
		break;
	case OPT_LIFETIME:
		cfg->pool.lifetime = cmdline_seconds(name, v);
		break;
	case OPT_MAX_PREPARED:
		cfg->pool.max_prepared = (int)cmdline_long(name, v, 1, 1000000);
		break;
	case OPT_RESERVED_TIMEOUT:
		cfg->reserved_timeout = cmdline_seconds(name, v);
		break;
	case OPT_MAX_RESULT:
		cfg->max_result_bytes = (size_t)cmdline_long(name, v, 1024, 12L << 20);
		break;
	case OPT_POOLER_ID: {
		const char *slash = strchr(v, '/');
		if (!slash || slash == v || !slash[1] || strchr(slash + 1, '/'))
			cmdline_die("invalid value for --pooler-id: \"%s\" (want CELL/NAME)", v);
		free(cfg->cell);
		cfg->cell = strndup(v, (size_t)(slash - v));
		cmdline_set_str(&cfg->name, slash + 1);
		break;
	}
	case OPT_DATABASE:
		cmdline_set_str(&cfg->database, v);
		break;
	case OPT_LOG_LEVEL:
		cmdline_log_level(v);
		break;
	default:
		cmdline_die("unknown option %s", name);
	}
}

int main(int argc, char **argv)
{
	mp_server s;
	memset(&s, 0, sizeof s);
	mp_config *cfg = &s.cfg;
	cmdline_init("multipooler");
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

	/* The config file first, so that flags override it. */
	const char *config = cmdline_config_path(argc, argv);
	if (config)
		cmdline_read_config(config, argc, argv, options, OPT_CONFIG, set_option, cfg);
	cmdline_parse_flags(argc, argv, options, set_option, cfg);
	if (!cfg->user) {
		const char *u = getenv("PGUSER");
		cfg->user = strdup(u && *u ? u : "postgres");
	}
	if (!cfg->pool.host || !cfg->listen || !cfg->cell || !cfg->name || !cfg->database ||
	    !cfg->user)
		cmdline_die("out of memory");
	cmdline_resolve_backend(&cfg->pool);

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
