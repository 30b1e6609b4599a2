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

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("multigateway: ", stderr);
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

/* host=H port=P password=S connect_timeout=S, values optionally quoted. */
static void parse_backend(gateway_config *cfg, const char *conninfo)
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
		while (klen && (p[klen - 1] == ' '))
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
		if (strcmp(key, "host") == 0) {
			free(cfg->pool.host);
			cfg->pool.host = strdup(val);
		} else if (strcmp(key, "port") == 0) {
			cfg->pool.port = (int)parse_long("backend port", val, 1, 65535);
		} else if (strcmp(key, "password") == 0) {
			free(cfg->pool.password);
			cfg->pool.password = strdup(val);
		} else if (strcmp(key, "connect_timeout") == 0) {
			cfg->pool.connect_timeout = parse_seconds("backend connect_timeout", val);
		} else {
			die("unknown --backend key \"%s\" (known: host, port, password, connect_timeout)",
			    key);
		}
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

static bool listen_from_flags;

static void set_option(gateway_config *cfg, int opt, const char *name, const char *v)
{
	switch (opt) {
	case OPT_LISTEN:
		if (cfg->nlisten == GW_MAX_LISTEN)
			die("at most %d --listen addresses", GW_MAX_LISTEN);
		cfg->listen[cfg->nlisten++] = strdup(v);
		break;
	case OPT_SOCKET_DIR:
		free(cfg->socket_dir);
		cfg->socket_dir = strdup(v);
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
	case OPT_POOL_MODE:
		if (strcmp(v, "transaction") == 0)
			cfg->mode = POOL_MODE_TRANSACTION;
		else if (strcmp(v, "session") == 0)
			cfg->mode = POOL_MODE_SESSION;
		else
			die("invalid value for --pool-mode: \"%s\" (want transaction or session)", v);
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
	case OPT_MAX_CLIENTS:
		cfg->max_clients = (int)parse_long(name, v, 1, 10000000);
		break;
	case OPT_LOGIN_TIMEOUT:
		cfg->login_timeout = parse_seconds(name, v);
		break;
	case OPT_MAX_MESSAGE:
		cfg->max_message = (uint32_t)parse_long(name, v, 1024, 0x3ffffffe);
		break;
	case OPT_HBA:
		free(cfg->hba_file);
		cfg->hba_file = strdup(v);
		break;
	case OPT_AUTH_FILE:
		free(cfg->auth_file);
		cfg->auth_file = strdup(v);
		break;
	case OPT_AUTH_USER:
		free(cfg->auth_user);
		cfg->auth_user = strdup(v);
		break;
	case OPT_AUTH_DATABASE:
		free(cfg->auth_database);
		cfg->auth_database = strdup(v);
		break;
	case OPT_POOLER:
		free(cfg->pooler);
		cfg->pooler = strdup(v);
		break;
	case OPT_TOPOLOGY:
		free(cfg->topology_file);
		cfg->topology_file = strdup(v);
		break;
	case OPT_TLS_CERT:
		free((char *)cfg->tls.cert_file);
		cfg->tls.cert_file = strdup(v);
		break;
	case OPT_TLS_KEY:
		free((char *)cfg->tls.key_file);
		cfg->tls.key_file = strdup(v);
		break;
	case OPT_TLS_CA:
		free((char *)cfg->tls.ca_file);
		cfg->tls.ca_file = strdup(v);
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

static void read_config(gateway_config *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die("cannot read config file %s: %s", path, strerror(errno));
	char line[4096];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		char *end = p + strlen(p);
		while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*p || *p == '#')
			continue;
		char *eq = strchr(p, '=');
		if (!eq)
			die("%s:%d: want 'name = value'", path, lineno);
		char *name_end = eq;
		while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
			name_end--;
		*name_end = '\0';
		char *v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		const struct option *o = options;
		while (o->name && strcmp(o->name, p) != 0)
			o++;
		if (!o->name || o->val == OPT_CONFIG || o->has_arg != required_argument)
			die("%s:%d: unknown setting \"%s\"", path, lineno, p);
		if (o->val == OPT_LISTEN && listen_from_flags)
			continue; /* flags win */
		set_option(cfg, o->val, o->name, v);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	gateway gw;
	memset(&gw, 0, sizeof gw);
	gateway_config *cfg = &gw.cfg;
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
	const char *config = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config = argv[i] + 9;
		else if (strcmp(argv[i], "--listen") == 0 || strncmp(argv[i], "--listen=", 9) == 0)
			listen_from_flags = true;
	}
	if (config)
		read_config(cfg, config);

	opterr = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_HELP:
			printf(usage_text, AUTHQ_CACHE_SECONDS);
			return 0;
		case OPT_VERSION:
			printf("multigateway %s\n", VERSION);
			return 0;
		case OPT_CONFIG:
			break;
		case '?':
			if (optopt)
				die("option %s needs a value (see --help)", argv[optind - 1]);
			die("unknown option %s (see --help)", argv[optind - 1]);
		case ':':
			die("option %s needs a value", argv[optind - 1]);
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
	if (!cfg->tls.cert_file != !cfg->tls.key_file)
		die("--tls-cert and --tls-key go together");
	if (cfg->tls.ca_file && !cfg->tls.cert_file)
		die("--tls-ca needs --tls-cert and --tls-key");
	if (cfg->nlisten == 0)
		cfg->listen[cfg->nlisten++] = strdup("127.0.0.1:6432");
	if (cfg->socket_dir) {
		const char *colon = strrchr(cfg->listen[0], ':');
		cfg->unix_port = colon ? atoi(colon + 1) : 6432;
	}
	resolve_backend(&cfg->pool);
	if (cfg->pooler && cfg->topology_file)
		die("--pooler and --topology exclude each other");
	if (cfg->pooler) {
		cfg->topology = topology_single(cfg->pooler);
		if (!cfg->topology)
			die("out of memory");
	} else if (cfg->topology_file) {
		char err[512];
		cfg->topology = topology_load_file(cfg->topology_file, err, sizeof err);
		if (!cfg->topology)
			die("%s", err);
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
