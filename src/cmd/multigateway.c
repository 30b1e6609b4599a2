/*
 * multigateway: the command line. Reads flags (and a config file of the
 * same names), starts the workers, and stops them cleanly on SIGINT or
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
#include "gateway/authquery.h"
#include "gateway/gateway.h"
#include "router/topology.h"

#define VERSION "0.1.0"

static const char usage_text[] =
	"Usage: multigateway [OPTIONS]\n"
	"\n"
	"A PostgreSQL wire-protocol gateway with an embedded connection pooler.\n"
	"\n"
	"  --listen HOST:PORT       accept clients here (repeatable; default 127.0.0.1:6432)\n"
	"  --socket-dir DIR         also accept on the Unix socket DIR/.s.PGSQL.<port>\n"
	"  --backend 'CONNINFO'     the PostgreSQL server: host=H port=P [password=S]\n"
	"                           [connect_timeout=S]; host may be a socket directory\n"
	"                           (default 'host=127.0.0.1 port=5432')\n"
	"  --pooler HOST:PORT       send every database's queries to this multipooler\n"
	"                           instead of a --backend server (a socket path works too)\n"
	"  --topology FILE          databases -> multipoolers, one per line:\n"
	"                           'DATABASE primary|replica HOST:PORT' ('*': any other\n"
	"                           database); queries go to the database's primary\n"
	"  --workers N              worker threads (default: the number of cores)\n"
	"  --pool-size N            server connections per (database, user), all workers\n"
	"                           together (default 20)\n"
	"  --pool-mode MODE         transaction (default) or session\n"
	"  --pool-timeout SECONDS   how long a client waits for a server connection (default 30)\n"
	"  --idle-timeout SECONDS   close server connections idle this long (default 300, 0: never)\n"
	"  --lifetime SECONDS       retire server connections this old (default 3600, 0: never)\n"
	"  --max-prepared N         prepared statements kept on each server connection\n"
	"                           (default 250; clients may prepare any number)\n"
	"  --max-clients N          refuse clients beyond this many (default 10000)\n"
	"  --login-timeout SECONDS  drop clients not logged in by then (default 60, 0: never)\n"
	"  --max-message BYTES      largest client message accepted (default 67108864)\n"
	"  --tls-cert FILE          turn TLS on: the server certificate (PEM, chain allowed)\n"
	"  --tls-key FILE           its private key (PEM)\n"
	"  --tls-ca FILE            ask clients for certificates and check them against FILE\n"
	"  --hba FILE               client authentication rules in pg_hba.conf form; by\n"
	"                           default: trust on the Unix socket and loopback,\n"
	"                           scram-sha-256 from anywhere else\n"
	"  --auth-file FILE         users' secrets, one '\"user\" \"secret\"' per line: a SCRAM\n"
	"                           verifier or md5 hash as pg_authid stores it\n"
	"  --auth-user NAME         read users' secrets from pg_authid as this (superuser)\n"
	"                           role, for users not in --auth-file; cached %g s\n"
	"  --auth-database NAME     the database it connects to (default postgres)\n"
	"  --log-level LEVEL        debug, info (default), warning or error\n"
	"  --config FILE            read options from FILE: one 'name = value' per line,\n"
	"                           names as above without the dashes; flags win\n"
	"  --help, --version\n"
	"\n"
	"The client's user and database are used on the server. The pooler logs in to\n"
	"PostgreSQL with what the client's own login gave (SCRAM keys, md5 hash), else\n"
	"with the --backend password.\n"
	"With TLS on, clients may ask for it with SSLRequest or start TLS directly\n"
	"(sslnegotiation=direct, ALPN \"postgresql\" required).\n";

/* --backend: host=H port=P password=S connect_timeout=S. */
static void set_backend_key(void *arg, int opt, const char *key, const char *val)
{
	pool_config *pc = arg;
	(void)opt;
	if (strcmp(key, "host") == 0)
		cmdline_set_str(&pc->host, val);
	else if (strcmp(key, "port") == 0)
		pc->port = (int)cmdline_long("backend port", val, 1, 65535);
	else if (strcmp(key, "password") == 0)
		cmdline_set_str(&pc->password, val);
	else if (strcmp(key, "connect_timeout") == 0)
		pc->connect_timeout = cmdline_seconds("backend connect_timeout", val);
	else
		cmdline_die("unknown --backend key \"%s\" (known: host, port, password, "
			    "connect_timeout)",
			    key);
}

enum {
	OPT_LISTEN = 1000,
	OPT_SOCKET_DIR,
	OPT_BACKEND,
	OPT_WORKERS,
	OPT_POOL_SIZE,
	OPT_POOL_MODE,
	OPT_POOL_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_LIFETIME,
	OPT_MAX_PREPARED,
	OPT_MAX_CLIENTS,
	OPT_LOGIN_TIMEOUT,
	OPT_MAX_MESSAGE,
	OPT_LOG_LEVEL,
	OPT_HBA,
	OPT_AUTH_FILE,
	OPT_AUTH_USER,
	OPT_AUTH_DATABASE,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_CONFIG,
	OPT_POOLER,
	OPT_TOPOLOGY,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option options[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"socket-dir", required_argument, NULL, OPT_SOCKET_DIR},
	{"backend", required_argument, NULL, OPT_BACKEND},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"pool-size", required_argument, NULL, OPT_POOL_SIZE},
	{"pool-mode", required_argument, NULL, OPT_POOL_MODE},
	{"pool-timeout", required_argument, NULL, OPT_POOL_TIMEOUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"lifetime", required_argument, NULL, OPT_LIFETIME},
	{"max-prepared", required_argument, NULL, OPT_MAX_PREPARED},
	{"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
	{"login-timeout", required_argument, NULL, OPT_LOGIN_TIMEOUT},
	{"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"hba", required_argument, NULL, OPT_HBA},
	{"auth-file", required_argument, NULL, OPT_AUTH_FILE},
	{"auth-user", required_argument, NULL, OPT_AUTH_USER},
	{"auth-database", required_argument, NULL, OPT_AUTH_DATABASE},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"tls-ca", required_argument, NULL, OPT_TLS_CA},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"pooler", required_argument, NULL, OPT_POOLER},
	{"topology", required_argument, NULL, OPT_TOPOLOGY},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

static void set_option(void *arg, int opt, const char *name, const char *v)
{
	gateway_config *cfg = arg;
	switch (opt) {
	case OPT_HELP:
		printf(usage_text, AUTHQ_CACHE_SECONDS);
		exit(0);
	case OPT_VERSION:
		printf("multigateway %s\n", VERSION);
		exit(0);
	case OPT_CONFIG:
		break; /* read before the flags */
	case OPT_LISTEN:
		if (cfg->nlisten == GW_MAX_LISTEN)
			cmdline_die("at most %d --listen addresses", GW_MAX_LISTEN);
		cfg->listen[cfg->nlisten] = NULL;
		cmdline_set_str(&cfg->listen[cfg->nlisten++], v);
		break;
	case OPT_SOCKET_DIR:
		cmdline_set_str(&cfg->socket_dir, v);
		break;
	case OPT_BACKEND:
		cmdline_conninfo("--backend", v, set_backend_key, &cfg->pool);
		break;
	case OPT_WORKERS:
		cfg->workers = (int)cmdline_long(name, v, 1, 127);
		break;
	case OPT_POOL_SIZE:
		cfg->pool.pool_size = (int)cmdline_long(name, v, 1, 100000);
		break;
	case OPT_POOL_MODE:
		if (strcmp(v, "transaction") == 0)
			cfg->mode = POOL_MODE_TRANSACTION;
		else if (strcmp(v, "session") == 0)
			cfg->mode = POOL_MODE_SESSION;
		else
			cmdline_die("invalid value for --pool-mode: \"%s\" (want transaction or session)", v);
		cfg->pool.refusals_to_client = cfg->mode == POOL_MODE_SESSION;
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
	case OPT_MAX_CLIENTS:
		cfg->max_clients = (int)cmdline_long(name, v, 1, 10000000);
		break;
	case OPT_LOGIN_TIMEOUT:
		cfg->login_timeout = cmdline_seconds(name, v);
		break;
	case OPT_MAX_MESSAGE:
		cfg->max_message = (uint32_t)cmdline_long(name, v, 1024, 0x3ffffffe);
		break;
	case OPT_HBA:
		cmdline_set_str(&cfg->hba_file, v);
		break;
	case OPT_AUTH_FILE:
		cmdline_set_str(&cfg->auth_file, v);
		break;
	case OPT_AUTH_USER:
		cmdline_set_str(&cfg->auth_user, v);
		break;
	case OPT_AUTH_DATABASE:
		cmdline_set_str(&cfg->auth_database, v);
		break;
	case OPT_POOLER:
		cmdline_set_str(&cfg->pooler, v);
		break;
	case OPT_TOPOLOGY:
		cmdline_set_str(&cfg->topology_file, v);
		break;
	case OPT_TLS_CERT:
		cmdline_set_str((char **)&cfg->tls.cert_file, v);
		break;
	case OPT_TLS_KEY:
		cmdline_set_str((char **)&cfg->tls.key_file, v);
		break;
	case OPT_TLS_CA:
		cmdline_set_str((char **)&cfg->tls.ca_file, v);
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
	gateway gw;
	memset(&gw, 0, sizeof gw);
	gateway_config *cfg = &gw.cfg;
	cmdline_init("multigateway");
	cfg->pool.host = strdup("127.0.0.1");
	cfg->pool.port = 5432;
	cfg->pool.pool_size = 20;
	cfg->pool.max_prepared = 250;
	cfg->pool.wait_timeout = 30;
	cfg->pool.idle_timeout = 300;
	cfg->pool.lifetime = 3600;
	cfg->pool.connect_timeout = 10;
	cfg->max_clients = 10000;
	cfg->login_timeout = 60;
	cfg->auth_database = strdup("postgres");
	cfg->max_message = 64u * 1024 * 1024;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->workers = cores > 0 ? (cores > 127 ? 127 : (int)cores) : 1;

	/* The config file first, so that flags override it. */
	const char *config = cmdline_config_path(argc, argv);
	if (config)
		cmdline_read_config(config, argc, argv, options, OPT_CONFIG, set_option, cfg);
	cmdline_parse_flags(argc, argv, options, set_option, cfg);
	if (!cfg->tls.cert_file != !cfg->tls.key_file)
		cmdline_die("--tls-cert and --tls-key go together");
	if (cfg->tls.ca_file && !cfg->tls.cert_file)
		cmdline_die("--tls-ca needs --tls-cert and --tls-key");
	if (cfg->nlisten == 0)
		cfg->listen[cfg->nlisten++] = strdup("127.0.0.1:6432");
	if (cfg->socket_dir) {
		const char *colon = strrchr(cfg->listen[0], ':');
		cfg->unix_port = colon ? atoi(colon + 1) : 6432;
	}
	cmdline_resolve_backend(&cfg->pool);
	if (cfg->pooler && cfg->topology_file)
		cmdline_die("--pooler and --topology exclude each other");
	if (cfg->pooler) {
		cfg->topology = topology_single(cfg->pooler);
		if (!cfg->topology)
			cmdline_die("out of memory");
	} else if (cfg->topology_file) {
		char err[512];
		cfg->topology = topology_load_file(cfg->topology_file, err, sizeof err);
		if (!cfg->topology)
			cmdline_die("%s", err);
	}

	/* Workers inherit a mask without SIGINT/SIGTERM; this thread waits
	 * for them. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	if (gateway_start(&gw) != 0) {
		log_error("could not start");
		return 1;
	}
	log_info("multigateway %s ready: %d workers, pool size %d per database and user, %s mode, "
		 "server %s:%d",
		 VERSION, gw.nworkers, cfg->pool.pool_size,
		 cfg->mode == POOL_MODE_SESSION ? "session" : "transaction", cfg->pool.host,
		 cfg->pool.port);
	int sig = 0;
	sigwait(&stop_signals, &sig);
	log_info("shutting down on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	gateway_stop(&gw);
	pool_groups_free();
	for (int i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	free(cfg->socket_dir);
	free(cfg->pool.host);
	free(cfg->pool.password);
	free(cfg->hba_file);
	free(cfg->auth_file);
	free(cfg->auth_user);
	free(cfg->auth_database);
	free(cfg->pooler);
	free(cfg->topology_file);
	if (cfg->topology)
		cfg->topology->free(cfg->topology);
	free((char *)cfg->tls.cert_file);
	free((char *)cfg->tls.key_file);
	free((char *)cfg->tls.ca_file);
	log_info("stopped");
	return 0;
}
