/*
 * Worker threads, one libev loop each. Other threads hand work to a loop
 * through a locked queue and an ev_async, as libev's manual recommends.
 */
#include "net/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "net/conn.h"

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	worker *w = (worker *)((char *)a - offsetof(worker, wake));
	pthread_mutex_lock(&w->lock);
	worker_task *list = w->tasks;
	w->tasks = NULL;
	pthread_mutex_unlock(&w->lock);
	/* Run in posting order. */
	worker_task *rev = NULL;
	while (list) {
		worker_task *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		worker_task *next = rev->next;
		rev->fn(w, rev->arg);
		free(rev);
		rev = next;
	}
}

static void on_prepare(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)loop;
	(void)revents;
	worker *w = (worker *)((char *)p - offsetof(worker, flush));
	conn_flush_dirty(w);
	if (w->on_iteration_end)
		w->on_iteration_end(w);
}

int worker_init(worker *w, int index)
{
	memset(w, 0, sizeof *w);
	w->index = index;
	w->loop = ev_loop_new(EVFLAG_AUTO);
	if (!w->loop)
		return -1;
	pthread_mutex_init(&w->lock, NULL);
	ev_async_init(&w->wake, on_wake);
	ev_async_start(w->loop, &w->wake);
	ev_prepare_init(&w->flush, on_prepare);
	ev_prepare_start(w->loop, &w->flush);
	return 0;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	char name[32];
	snprintf(name, sizeof name, "worker %d", w->index);
	log_set_thread_name(name);
	ev_run(w->loop, 0);
	return NULL;
}

int worker_start(worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void worker_join(worker *w)
{
	pthread_join(w->thread, NULL);
}

void worker_destroy(worker *w)
{
	worker_task *t = w->tasks;
	while (t) {
		worker_task *next = t->next;
		free(t);
		t = next;
	}
	ev_loop_destroy(w->loop);
	pthread_mutex_destroy(&w->lock);
}

int worker_post(worker *w, worker_task_fn fn, void *arg)
{
	worker_task *t = malloc(sizeof *t);
	if (!t)
		return -1;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&w->lock);
	t->next = w->tasks;
	w->tasks = t;
	pthread_mutex_unlock(&w->lock);
	ev_async_send(w->loop, &w->wake);
	return 0;
}
