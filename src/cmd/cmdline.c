/*
 * cmdline: the command-line plumbing multigateway and multipooler share.
 */
#include "cmd/cmdline.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/log.h"

static const char *program_name = "pgw";

void cmdline_init(const char *program)
{
	program_name = program;
}

void cmdline_die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", program_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

long cmdline_long(const char *name, const char *v, long min, long max)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		cmdline_die("invalid value for --%s: \"%s\" (want a whole number from %ld to %ld)",
			    name, v, min, max);
	return n;
}

double cmdline_seconds(const char *name, const char *v)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || d < 0 || d > 1e7)
		cmdline_die("invalid value for --%s: \"%s\" (want seconds)", name, v);
	return d;
}

void cmdline_set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
	if (!*slot)
		cmdline_die("out of memory");
}

void cmdline_log_level(const char *v)
{
	if (strcmp(v, "debug") == 0)
		log_min_level = LOG_DEBUG;
	else if (strcmp(v, "info") == 0)
		log_min_level = LOG_INFO;
	else if (strcmp(v, "warning") == 0)
		log_min_level = LOG_WARNING;
	else if (strcmp(v, "error") == 0)
		log_min_level = LOG_ERROR;
	else
		cmdline_die("invalid value for --log-level: \"%s\" (want debug, info, warning or error)",
			    v);
}

void cmdline_conninfo(const char *what, const char *conninfo, cmdline_set_fn *set, void *arg)
{
	const char *p = conninfo;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *eq = strchr(p, '=');
		if (!eq)
			cmdline_die("invalid %s \"%s\": want key=value pairs", what, conninfo);
		char key[64];
		size_t klen = (size_t)(eq - p);
		while (klen && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
			klen--;
		if (klen == 0 || klen >= sizeof key)
			cmdline_die("invalid %s \"%s\"", what, conninfo);
		memcpy(key, p, klen);
		key[klen] = '\0';
		p = eq + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		char val[1024];
		size_t vlen = 0;
		bool quoted = *p == '\'';
		if (quoted)
			p++;
		while (*p && (quoted ? *p != '\'' : (*p != ' ' && *p != '\t'))) {
			if (quoted && *p == '\\' && p[1])
				p++;
			if (vlen + 1 >= sizeof val)
				cmdline_die("invalid %s: the value of %s is too long", what, key);
			val[vlen++] = *p++;
		}
		if (quoted) {
			if (*p != '\'')
				cmdline_die("invalid %s \"%s\": unterminated quote", what, conninfo);
			p++;
		}
		val[vlen] = '\0';
		set(arg, 0, key, val);
	}
}

void cmdline_resolve_backend(pool_config *pc)
{
	if (pc->host[0] == '/') {
		struct sockaddr_un *sun = (struct sockaddr_un *)&pc->addr;
		memset(sun, 0, sizeof *sun);
		sun->sun_family = AF_UNIX;
		int n = snprintf(sun->sun_path, sizeof sun->sun_path, "%s/.s.PGSQL.%d", pc->host,
				 pc->port);
		if (n < 0 || (size_t)n >= sizeof sun->sun_path)
			cmdline_die("backend socket path too long");
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
		cmdline_die("cannot resolve backend host \"%s\": %s", pc->host, gai_strerror(rc));
	memcpy(&pc->addr, res->ai_addr, res->ai_addrlen);
	pc->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

void cmdline_parse_flags(int argc, char **argv, const struct option *options, cmdline_set_fn *set,
			 void *arg)
{
	opterr = 0;
	optind = 1;
	int opt;
	/* The leading ':' makes a missing value ':' rather than '?'. */
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (opt == ':')
			cmdline_die("option %s needs a value (see --help)", argv[optind - 1]);
		if (opt == '?')
			cmdline_die("unknown option %s (see --help)", argv[optind - 1]);
		const struct option *o = options;
		while (o->name && o->val != opt)
			o++;
		set(arg, opt, o->name ? o->name : "?", optarg);
	}
	if (optind < argc)
		cmdline_die("unexpected argument \"%s\" (see --help)", argv[optind]);
}

/* Is --NAME (or --NAME=...) among the flags? */
static bool given_as_flag(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, name, n) == 0 &&
		    (a[2 + n] == '\0' || a[2 + n] == '='))
			return true;
	}
	return false;
}

const char *cmdline_config_path(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	return path;
}

void cmdline_read_config(const char *path, int argc, char **argv, const struct option *options,
			 int except_opt, cmdline_set_fn *set, void *arg)
{
	FILE *f = fopen(path, "r");
	if (!f)
		cmdline_die("cannot read config file %s: %s", path, strerror(errno));
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
			cmdline_die("%s:%d: want 'name = value'", path, lineno);
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
		if (!o->name || o->val == except_opt || o->has_arg != required_argument)
			cmdline_die("%s:%d: unknown setting \"%s\"", path, lineno, p);
		if (given_as_flag(argc, argv, o->name))
			continue;
		set(arg, o->val, o->name, v);
	}
	fclose(f);
}
