/*
 * cmdline: what both binaries' command lines share. Flags and a config
 * file of the same names, number and duration values, the --backend
 * conninfo, and dying with a usage error (exit status 2) on bad input.
 */
#ifndef PGW_CMD_CMDLINE_H
#define PGW_CMD_CMDLINE_H

#include <getopt.h>

#include "pooler/pool.h"

/* Called with each option's value (NULL for one that takes none). */
typedef void cmdline_set_fn(void *arg, int opt, const char *name, const char *value);

/* The program's name, put before every message of cmdline_die. */
void cmdline_init(const char *program);

void cmdline_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A whole number in [min, max], or die naming the option. */
long cmdline_long(const char *name, const char *v, long min, long max);
/* Non-negative seconds (fractions allowed), or die. */
double cmdline_seconds(const char *name, const char *v);
/* Replaces *slot with a copy of v. */
void cmdline_set_str(char **slot, const char *v);
/* --log-level: debug, info, warning or error. */
void cmdline_log_level(const char *v);

/* Splits a conninfo string ("key=value ...", values optionally in single
 * quotes with backslash escapes) and calls set(arg, 0, key, value) for
 * each pair; what names the option in messages. */
void cmdline_conninfo(const char *what, const char *conninfo, cmdline_set_fn *set, void *arg);

/* Fills pc->addr from pc->host (a name, an address, or a socket directory)
 * and pc->port. */
void cmdline_resolve_backend(pool_config *pc);

/* Reads the flags of argv with getopt_long; an unknown flag, one missing
 * its value, or a stray argument dies. */
void cmdline_parse_flags(int argc, char **argv, const struct option *options, cmdline_set_fn *set,
			 void *arg);

/* The path given by --config in argv, or NULL. */
const char *cmdline_config_path(int argc, char **argv);

/* Reads 'name = value' lines ('#' comments) naming options that take a
 * value; except_opt (--config itself) is refused. An option also given as
 * a flag in argv is skipped here: flags win, and a repeatable flag
 * replaces the file's values instead of adding to them. */
void cmdline_read_config(const char *path, int argc, char **argv, const struct option *options,
			 int except_opt, cmdline_set_fn *set, void *arg);

#endif
