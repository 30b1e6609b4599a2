/*
 * Gateway start and stop: the listening sockets (one TCP socket per
 * worker with SO_REUSEPORT, so the kernel spreads clients; one Unix socket
 * every worker watches), the worker threads, and the pools each owns.
 */
#include "gateway/gateway.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "net/conn.h"
#include "auth/authfile.h"
#include "auth/hba.h"
#include "auth/scram_server.h"
#include "pgw/bufpool.h"
#include "gateway/authquery.h"
#include "gateway/client.h"
#include "router/router.h"

/* Listen watchers carry which socket they belong to in data. */
static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	gw_worker *gw = io->data;
	bool is_unix = io->fd == gw->gw->unix_fd;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_error("cannot accept a connection: %s", strerror(errno));
			return;
		}
		if (!is_unix) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		}
		client_accept(gw, fd, is_unix);
	}
}

static int split_host_port(const char *spec, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec)
		return -1;
	const char *h = spec;
	size_t hlen = (size_t)(colon - spec);
	if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= hcap || strlen(colon + 1) >= pcap || !colon[1])
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static int tcp_listen(const char *spec)
{
	char host[256], port[16];
	if (split_host_port(spec, host, sizeof host, port, sizeof port) != 0) {
		log_error("invalid listen address \"%s\" (want HOST:PORT)", spec);
		return -1;
	}
	struct addrinfo hints = {0}, *res;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int rc = getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		log_error("cannot resolve %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		log_error("cannot listen on %s: %s", spec, strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int unix_listen(gateway *gw)
{
	struct sockaddr_un sun = {0};
	sun.sun_family = AF_UNIX;
	int n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%d", gw->cfg.socket_dir,
			 gw->cfg.unix_port);
	if (n < 0 || (size_t)n >= sizeof sun.sun_path) {
		log_error("socket directory path too long: %s", gw->cfg.socket_dir);
		return -1;
	}
	snprintf(gw->unix_path, sizeof gw->unix_path, "%s", sun.sun_path);
	/* A socket file left by a process that is gone is replaced; one in
	 * use is not. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		if (connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0) {
			close(probe);
			log_error("%s is in use by another server", sun.sun_path);
			return -1;
		}
		close(probe);
	}
	unlink(sun.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, 1024) < 0) {
		log_error("cannot listen on %s: %s", sun.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(sun.sun_path, 0777);
	return fd;
}

static void on_iteration_end(worker *w)
{
	client_free_closed((gw_worker *)w);
}

static void stop_task(worker *w, void *arg)
{
	(void)arg;
	gw_worker *gw = (gw_worker *)w;
	for (int i = 0; i < gw->nlisten; i++)
		ev_io_stop(w->loop, &gw->listen_io[i]);
	client_close_all(gw);
	client_free_closed(gw);
	authq_cache_free(gw);
	router_free(gw->router);
	gw->router = NULL;
	bufpool_thread_trim();
	ev_break(w->loop, EVBREAK_ALL);
}

int gateway_start(gateway *gw)
{
	gateway_config *cfg = &gw->cfg;
	gw->unix_fd = -1;
	char err[512] = "";
	int rc = cfg->hba_file ? hba_load_file(cfg->hba_file, &gw->hba, err, sizeof err)
			       : hba_load_default(&gw->hba);
	if (rc != 0) {
		log_error("%s", err[0] ? err : "could not load the authentication rules");
		return -1;
	}
	if (cfg->auth_file) {
		gw->users = authfile_load(cfg->auth_file, err, sizeof err);
		if (!gw->users) {
			log_error("%s", err);
			return -1;
		}
	}
	if (getrandom(gw->mock_secret, sizeof gw->mock_secret, 0) != (ssize_t)sizeof gw->mock_secret) {
		log_error("getrandom failed");
		return -1;
	}
	if (cfg->tls.cert_file) {
		gw->tls_ctx = tls_server_ctx(&cfg->tls, err, sizeof err);
		if (!gw->tls_ctx) {
			log_error("%s", err);
			return -1;
		}
		/* SCRAM-SHA-256-PLUS binds to this certificate's hash. */
		X509 *cert = SSL_CTX_get0_certificate(gw->tls_ctx);
		if (!cert || scram_tls_server_end_point(cert, gw->cb_data, sizeof gw->cb_data,
							&gw->cb_len) != SCRAM_OK)
			gw->cb_len = 0;
		log_info("TLS on: certificate %s%s%s", cfg->tls.cert_file,
			 cfg->tls.ca_file ? ", client certificates checked against " : "",
			 cfg->tls.ca_file ? cfg->tls.ca_file : "");
	}
	gw->nworkers = cfg->workers;
	gw->workers = calloc((size_t)gw->nworkers, sizeof *gw->workers);
	if (!gw->workers)
		return -1;
	if (cfg->socket_dir) {
		gw->unix_fd = unix_listen(gw);
		if (gw->unix_fd < 0)
			return -1;
		log_info("listening on Unix socket %s", gw->unix_path);
	}
	for (int i = 0; i < gw->nworkers; i++) {
		gw_worker *g = &gw->workers[i];
		if (worker_init(&g->w, i) != 0)
			return -1;
		g->w.on_iteration_end = on_iteration_end;
		g->gw = gw;
		/* The pool size is a limit for all workers together (see pool.h). */
		g->pool_cfg = cfg->pool;
		g->router = router_new(&g->w, &g->pool_cfg, cfg->topology);
		if (!g->router)
			return -1;
		for (int l = 0; l < cfg->nlisten; l++) {
			int fd = tcp_listen(cfg->listen[l]);
			if (fd < 0)
				return -1;
			ev_io_init(&g->listen_io[g->nlisten], on_accept, fd, EV_READ);
			g->listen_io[g->nlisten].data = g;
			ev_io_start(g->w.loop, &g->listen_io[g->nlisten]);
			g->nlisten++;
		}
		if (gw->unix_fd >= 0) {
			ev_io_init(&g->listen_io[g->nlisten], on_accept, gw->unix_fd, EV_READ);
			g->listen_io[g->nlisten].data = g;
			ev_io_start(g->w.loop, &g->listen_io[g->nlisten]);
			g->nlisten++;
		}
	}
	for (int l = 0; l < cfg->nlisten; l++)
		log_info("listening on %s", cfg->listen[l]);
	for (int i = 0; i < gw->nworkers; i++)
		if (worker_start(&gw->workers[i].w) != 0)
			return -1;
	return 0;
}

void gateway_stop(gateway *gw)
{
	for (int i = 0; i < gw->nworkers; i++)
		worker_post(&gw->workers[i].w, stop_task, NULL);
	for (int i = 0; i < gw->nworkers; i++)
		worker_join(&gw->workers[i].w);
	for (int i = 0; i < gw->nworkers; i++) {
		gw_worker *g = &gw->workers[i];
		for (int l = 0; l < g->nlisten; l++)
			if (g->listen_io[l].fd != gw->unix_fd)
				close(g->listen_io[l].fd);
		worker_destroy(&g->w);
	}
	if (gw->unix_fd >= 0) {
		close(gw->unix_fd);
		unlink(gw->unix_path);
	}
	if (gw->tls_ctx)
		tls_ctx_free(gw->tls_ctx);
	hba_free(gw->hba);
	authfile_free(gw->users);
	free(gw->workers);
}
