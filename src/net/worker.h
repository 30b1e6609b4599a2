/*
 * Worker threads: each owns one libev loop and everything that lives on
 * it (its clients, their backends, its share of the pools). Threads meet
 * only through worker_post, for rare events such as cancel requests.
 */
#ifndef PGW_WORKER_H
#define PGW_WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct worker worker;
typedef void (*worker_task_fn)(worker *w, void *arg);

typedef struct worker_task {
	struct worker_task *next;
	worker_task_fn fn;
	void *arg;
} worker_task;

typedef struct net_conn net_conn;

struct worker {
	int index;
	struct ev_loop *loop;
	pthread_t thread;
	ev_async wake;	    /* tasks posted from other threads */
	ev_prepare flush;   /* writes batched until the loop is about to wait */
	pthread_mutex_t lock;
	worker_task *tasks;
	net_conn *dirty;    /* connections with output to write this iteration */
	/* Called once per loop iteration after output is written: the place
	 * to free what callbacks up the stack might still have looked at. */
	void (*on_iteration_end)(worker *w);
	bool stopping;
};

/* Set up a worker's loop (not started). */
int worker_init(worker *w, int index);
int worker_start(worker *w);
void worker_join(worker *w);
void worker_destroy(worker *w);
/* Run fn(w, arg) on w's thread, from any thread. The task is freed after. */
int worker_post(worker *w, worker_task_fn fn, void *arg);

#endif
