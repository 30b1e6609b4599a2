/*
 * Logging to stderr, one line per event, with a level and the worker.
 */
#ifndef PGW_LOG_H
#define PGW_LOG_H

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

extern log_level log_min_level;

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The calling thread's name in log lines ("main", "worker 3"). */
void log_set_thread_name(const char *name);

#define log_debug(...) (log_min_level <= LOG_DEBUG ? log_msg(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
