/*
 * CancelRequest: found by the pid and key the gateway gave the client,
 * across workers, and passed on to the server connection that runs the
 * client's request (or to the wait for one).
 */
#include "gateway/cancel.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/replication.h"

/*
 * A CancelRequest goes to the worker(s) whose client it may name; its own
 * connection stays open until each has answered, as PostgreSQL closes it
 * only once the backend is signalled: a client that waits for the close
 * (libpq's PQcancel does) knows its next statement is not the one hit.
 */
typedef struct cancel_task {
	int32_t pid;
	uint8_t key[256];
	size_t key_len;
	worker *from; /* where the cancel connection lives ... */
	uint32_t from_conn; /* ... and its conn_id there */
} cancel_task;

static void run_cancel_answered(worker *w, void *arg)
{
	cancel_task *t = arg;
	gw_worker *gw = (gw_worker *)w;
	for (client *cl = gw->clients; cl; cl = cl->next) {
		if (cl->conn_id == t->from_conn && cl->cancel_waits > 0) {
			if (--cl->cancel_waits == 0)
				client_close(cl); /* PostgreSQL's only answer */
			break;
		}
	}
	free(t);
}

/* The cancel has reached the server, or there was nothing to cancel. */
static void cancel_answered(void *arg)
{
	cancel_task *t = arg;
	if (worker_post(t->from, run_cancel_answered, t) != 0)
		free(t); /* the cancel connection goes with its worker */
}

static void cancel_here(gw_worker *gw, cancel_task *t);

static void run_cancel(worker *w, void *arg)
{
	cancel_here((gw_worker *)w, arg);
}

void client_cancel_request(client *cl, const pgw_cancel_request *cr)
{
	gateway *gw = cl->gw->gw;
	/* A pid of the gateway's own names the worker; in session mode the
	 * client was given its server connection's pid, so every worker looks. */
	int first = 0, last = gw->nworkers - 1;
	if (gw->cfg.mode != POOL_MODE_SESSION)
		first = last = (int)((uint32_t)cr->pid >> 24);
	if (first == last)
		log_debug("client %u: cancel request for worker %d", cl->conn_id, first);
	conn_read_stop(&cl->conn);
	for (int i = first; i <= last && i < gw->nworkers; i++) {
		cancel_task *t = malloc(sizeof *t);
		if (!t)
			break;
		t->pid = cr->pid;
		t->key_len = cr->key.len;
		memcpy(t->key, cr->key.ptr, cr->key.len);
		t->from = &cl->gw->w;
		t->from_conn = cl->conn_id;
		if (worker_post(&gw->workers[i].w, run_cancel, t) != 0)
			free(t);
		else
			cl->cancel_waits++;
	}
	if (cl->cancel_waits == 0)
		client_close(cl);
}

static void cancel_here(gw_worker *gw, cancel_task *t)
{
	for (client *cl = gw->clients; cl; cl = cl->next) {
		if (cl->pid != t->pid || cl->state != CL_READY)
			continue;
		/* Constant time: a wrong key learns nothing from the timing. */
		uint8_t diff = t->key_len != cl->key_len;
		for (size_t i = 0; i < cl->key_len; i++)
			diff |= (uint8_t)(cl->key[i] ^ (i < t->key_len ? t->key[i] : 0));
		/* In session mode a client's pid is its server's, which may equal
		 * a pid the gateway made for another client: the key decides. */
		if (diff != 0)
			continue;
		if (cl->repl) {
			repl_cancel(cl, cancel_answered, t); /* what it runs is the server's to know */
			return;
		}
		if (cl->be && (cl->req_count > 0 || cl->pq_count > 0)) {
			/* A query that ends before the signal comes leaves it to an
			 * idle backend, which ignores it; nothing else is sent on
			 * that connection until then. */
			backend_cancel(cl->be, cancel_answered, t);
			return;
		}
		if (cl->waiting) {
			/* Its request never reached a server: it ends here, as a
			 * cancelled statement does. */
			client_cancel_waiting(cl);
		}
		break;
	}
	cancel_answered(t); /* nothing running: nothing to cancel */
}
