#!/usr/bin/python3
"""Integration-test harness for multigateway.

Runs with Debian's /usr/bin/python3 only (stdlib + python3-psycopg2).

What it does:

* starts a throwaway PostgreSQL 15 (initdb/pg_ctl run as the `postgres` OS
  user through `runuser -u postgres --`), data directory and Unix socket in a
  temporary directory, TCP on 127.0.0.1 only at a free port, trust auth,
  fsync=off, max_connections sized for the tests;
* creates the superuser role `pgw` and database `pgw` (plus whatever the
  tests ask for with Env.create_database);
* starts one or more gateways (binary from $PGW_GATEWAY, default
  <repo>/build/multigateway) in front of it, each on its own free port with
  its own --socket-dir, and with its own pool configuration;
* in self-test mode there is no gateway process: every "gateway" endpoint is
  PostgreSQL itself, so the harness and the tests can be validated before
  the gateway exists;
* tears everything down on exit, failure, Ctrl-C or SIGTERM.

Helpers: Endpoint.dsn()/connect()/env()/psql(), run_psql_script(),
mask_output(), Trace (records what a psycopg2 scenario saw) and
DualTestCase.dual() (runs a scenario directly and through the gateway and
compares the traces).
"""

import atexit
import contextlib
import ctypes
import difflib
import hashlib
import os
import pprint
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

try:
    import psycopg2
    import psycopg2.extensions
    import psycopg2.extras  # noqa: F401  (tests use it)
except ImportError:  # pragma: no cover - reported clearly by run.py
    psycopg2 = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PGBIN = os.environ.get("PGW_PGBIN", "/usr/lib/postgresql/15/bin")
PSQL = os.path.join(PGBIN, "psql")
PGBENCH = os.path.join(PGBIN, "pgbench")
DEFAULT_GATEWAY = os.path.join(REPO, "build", "multigateway")

SUPERUSER = "pgw"
MAIN_DB = "pgw"
PG_MAX_CONNECTIONS = 300

# libpq environment variables that must not leak from the caller.
_PG_ENV_VARS = (
    "PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGSERVICE "
    "PGSERVICEFILE PGOPTIONS PGAPPNAME PGSSLMODE PGGSSENCMODE PGREQUIRESSL "
    "PGCHANNELBINDING PGTZ PGDATESTYLE PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS "
    "PGSSLCERT PGSSLKEY PGSSLROOTCERT PGKRBSRVNAME PGGSSLIB PSQLRC PGSYSCONFDIR "
    "PGCLIENTENCODING PGLOCALEDIR PGSSLCRL PGREQUIREPEER PGSSLCOMPRESSION "
    "PGSSLMINPROTOCOLVERSION PGSSLMAXPROTOCOLVERSION PGKRBSRVNAME PGLOADBALANCEHOSTS"
).split()


def log(msg):
    sys.stderr.write("[harness] %s\n" % msg)
    sys.stderr.flush()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile_limit(want=65536):
    """Raise RLIMIT_NOFILE (soft) as far as allowed; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        # root may raise the hard limit as well
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _set_pdeathsig():
    """preexec_fn: the child gets SIGTERM when the harness dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def base_env():
    """A clean environment for client programs (psql, pgbench)."""
    env = {k: v for k, v in os.environ.items() if k not in _PG_ENV_VARS}
    env.update({
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "PGCLIENTENCODING": "UTF8",
        "PGGSSENCMODE": "disable",  # no GSSENCRequest; SSLRequest still sent (prefer)
        "PGCONNECT_TIMEOUT": "20",
        "PGPASSFILE": "/nonexistent/pgpass",
        "PGSYSCONFDIR": "/nonexistent",
        "PSQL_HISTORY": "/dev/null",
        "PAGER": "cat",
    })
    return env


def read_rss_kb(pid):
    """VmRSS of a process in kB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def wait_until(cond, what, timeout=30.0, interval=0.05):
    """Polls cond() until it returns something true, and returns that; fails
    the test with `what` after `timeout` seconds. Tests wait for conditions,
    never for a fixed time: a loaded machine only makes them slower."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("still not %s after %.0f s" % (what, timeout))
        time.sleep(interval)


def retry(fn, what, timeout=30.0, errors=(Exception,)):
    """fn() until it returns without raising one of `errors`; the last
    error is raised after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except errors:
            if time.monotonic() > deadline:
                log("gave up waiting until %s" % what)
                raise
        time.sleep(0.05)


def wait_accepting(host, port, timeout=30.0):
    """Until something accepts TCP connections on host:port."""
    def accepts():
        try:
            socket.create_connection((host, port), timeout=2).close()
            return True
        except OSError:
            return False
    wait_until(accepts, "accepting on %s:%d" % (host, port), timeout)


def running_pids(query, wait_event=None, admin_exec=None):
    """Backends of the real PostgreSQL running exactly this statement now
    (state 'active'; with wait_event, waiting on that event). admin_exec
    queries another server than the run's."""
    sql = ("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query = %s "
           "AND pid <> pg_backend_pid()")
    params = [query]
    if wait_event:
        sql += " AND wait_event = %s"
        params.append(wait_event)
    return [r[0] for r in (admin_exec or get_env().admin_exec)(sql, params)]


def wait_running(query, count=1, wait_event=None, timeout=30.0, admin_exec=None):
    """Until `count` backends of the real PostgreSQL run this statement;
    returns their pids. "The query is running", seen where it runs."""
    return wait_until(lambda: (lambda p: p if len(p) >= count else None)(
                          running_pids(query, wait_event, admin_exec)),
                      "running %r%s" % (query, " (%s)" % wait_event if wait_event else ""),
                      timeout)


def _tcp_queues(local_port, remote_port):
    """(send queue, receive queue) in bytes of the loopback TCP socket
    local_port -> remote_port, from /proc/net/tcp; None when there is none."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (int(fields[1].rsplit(":", 1)[1], 16) == local_port
                    and int(fields[2].rsplit(":", 1)[1], 16) == remote_port):
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def tcp_sockets(pid, remote_port=None, local_port=None):
    """(state, send queue, receive queue) of each TCP socket process `pid`
    holds (those connected to remote_port, or bound to local_port); states
    are TCP_ESTABLISHED=1 ... TCP_CLOSE_WAIT=8, TCP_LISTEN=10."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if (fields[9] in inodes
                        and remote_port in (None, int(fields[2].rsplit(":", 1)[1], 16))
                        and local_port in (None, int(fields[1].rsplit(":", 1)[1], 16))):
                    tx, rx = fields[4].split(":")
                    found.append((int(fields[3], 16), int(tx, 16), int(rx, 16)))
    return found


def tcp_states(pid, remote_port=None, local_port=None):
    """The states of tcp_sockets(...)."""
    return [state for state, _, _ in tcp_sockets(pid, remote_port, local_port)]


TCP_CLOSE_WAIT = 8
TCP_LISTEN = 10


# Linux x86_64 system calls a client thread sits in while it waits for an
# answer: read, poll, select, recvfrom, epoll_wait, pselect6, ppoll, epoll_pwait.
_WAITING_SYSCALLS = {0, 7, 23, 45, 232, 270, 271, 281}


def wait_request_read(conn, thread, timeout=30.0):
    """Until what `thread` sent on the psycopg2 connection `conn` has been
    read by the other end (the gateway): the thread waits for the answer,
    and no byte is left in the client's send queue nor the peer's receive
    queue. For a request the server never sees (it waits in the gateway)."""
    s = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        mine, peer = s.getsockname()[1], s.getpeername()[1]
    finally:
        s.close()

    def read():
        try:
            with open("/proc/self/task/%d/syscall" % thread.native_id) as f:
                call = f.read().split()[0]
        except OSError:
            return False
        if not call.isdigit() or int(call) not in _WAITING_SYSCALLS:
            return False
        return _tcp_queues(mine, peer) == (0, 0) and _tcp_queues(peer, mine) == (0, 0)
    wait_until(read, "read by the gateway", timeout)


class RssMonitor:
    """Samples VmRSS of a pid in a thread; .max_kb after stop()."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.max_kb, self.samples = 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = read_rss_kb(self.pid) if self.pid else None
            if v is not None:
                self.max_kb = max(self.max_kb, v)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

class PgServer:
    def __init__(self, tmp, max_connections=PG_MAX_CONNECTIONS, extra_conf=""):
        self.tmp = tmp
        self.datadir = os.path.join(tmp, "pgdata")
        self.sockdir = os.path.join(tmp, "pgsock")
        self.logfile = os.path.join(tmp, "postgres.log")
        self.port = free_port()
        self.max_connections = max_connections
        self.extra_conf = extra_conf
        self.started = False

    def _runuser(self, *argv, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + list(argv),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, **kw)

    def start(self):
        for tool in ("initdb", "pg_ctl", "postgres"):
            p = os.path.join(PGBIN, tool)
            if not os.access(p, os.X_OK):
                raise RuntimeError("missing %s (Debian package postgresql-15)" % p)
        if os.geteuid() != 0:
            raise RuntimeError("the integration harness must run as root "
                               "(PostgreSQL is started via runuser -u postgres)")
        os.makedirs(self.datadir)
        os.makedirs(self.sockdir)
        for d in (self.datadir, self.sockdir):
            shutil.chown(d, "postgres", "postgres")
        os.chmod(self.datadir, 0o700)
        r = self._runuser(os.path.join(PGBIN, "initdb"), "-D", self.datadir,
                          "-U", "postgres", "-A", "trust", "-E", "UTF8",
                          "--locale=C", "--no-sync")
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout)
        conf = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sock}'
max_connections = {maxc}
ssl = off
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
autovacuum = off
timezone = 'UTC'
log_timezone = 'UTC'
datestyle = 'iso, mdy'
lc_messages = 'C'
log_min_messages = warning
log_connections = off
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
{extra}
""".format(port=self.port, sock=self.sockdir, maxc=self.max_connections,
           extra=self.extra_conf)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write(conf)
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                    "local replication all trust\nhost replication all 127.0.0.1/32 trust\n")
        with open(self.logfile, "w"):
            pass
        shutil.chown(self.logfile, "postgres", "postgres")
        r = self._runuser(os.path.join(PGBIN, "pg_ctl"), "-D", self.datadir,
                          "-l", self.logfile, "-w", "-t", "60", "start")
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed:\n%s\n%s" % (r.stdout, self.log_tail()))
        self.started = True

    def stop(self):
        if not self.started:
            return
        self.started = False
        r = self._runuser(os.path.join(PGBIN, "pg_ctl"), "-D", self.datadir,
                          "-m", "fast", "-w", "-t", "30", "stop")
        if r.returncode != 0:
            self._runuser(os.path.join(PGBIN, "pg_ctl"), "-D", self.datadir,
                          "-m", "immediate", "-w", "stop")

    def log_tail(self, n=30):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


# --------------------------------------------------------------------------
# Endpoints (direct PostgreSQL, gateway, or PostgreSQL posing as gateway)
# --------------------------------------------------------------------------

class Endpoint:
    """Somewhere a client can connect: host/port/socket dir."""

    def __init__(self, name, port, socket_dir, kind, pool_size=None,
                 pool_timeout=None, pool_mode=None, proc=None, logfile=None, pooler_proc=None):
        self.name = name
        self.host = "127.0.0.1"
        self.port = port
        self.socket_dir = socket_dir
        self.kind = kind              # 'direct' | 'gateway' | 'self-test'
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.pool_mode = pool_mode
        self.proc = proc
        self.logfile = logfile
        self.pooler_proc = pooler_proc  # the multipooler it goes through, if any

    def __repr__(self):
        return "<Endpoint %s %s 127.0.0.1:%s>" % (self.name, self.kind, self.port)

    @property
    def is_gateway(self):
        return self.kind == "gateway"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def dsn(self, dbname=MAIN_DB, user=SUPERUSER, unix=False, **kw):
        parts = {
            "host": self.socket_dir if unix else self.host,
            "port": str(self.port),
            "dbname": dbname,
            "user": user,
            "gssencmode": "disable",
            "connect_timeout": "20",
        }
        parts.update({k: str(v) for k, v in kw.items() if v is not None})
        return " ".join("%s=%s" % (k, _dsn_quote(v)) for k, v in parts.items())

    def connect(self, dbname=MAIN_DB, user=SUPERUSER, autocommit=False, unix=False, **kw):
        conn = psycopg2.connect(self.dsn(dbname=dbname, user=user, unix=unix, **kw))
        conn.autocommit = autocommit
        return conn

    def env(self, dbname=MAIN_DB, user=SUPERUSER, unix=False, **extra):
        """Environment for psql/pgbench pointing at this endpoint."""
        env = base_env()
        env.update({
            "PGHOST": self.socket_dir if unix else self.host,
            "PGPORT": str(self.port),
            "PGDATABASE": dbname,
            "PGUSER": user,
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def psql(self, *args, dbname=MAIN_DB, user=SUPERUSER, input=None, unix=False,
             env_extra=None, timeout=120, merge=True):
        """Run psql -X against this endpoint; returns CompletedProcess (text)."""
        env = self.env(dbname=dbname, user=user, unix=unix, **(env_extra or {}))
        return subprocess.run([PSQL, "-X"] + list(args), env=env, input=input,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                              text=True, timeout=timeout)

    def log_tail(self, n=40):
        if not self.logfile:
            return ""
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def _dsn_quote(v):
    v = str(v)
    if v == "" or re.search(r"[\s'\\]", v):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return v


class GatewayProcess:
    """Starts the multigateway binary with the contract's flags."""

    def __init__(self, binary, name, tmp, backend_port, pool_size=None,
                 pool_mode=None, pool_timeout=None, workers=None, extra_args=()):
        self.binary = binary
        self.name = name
        self.port = free_port()
        self.socket_dir = os.path.join(tmp, "gw-%s-sock" % name)
        self.logfile = os.path.join(tmp, "gw-%s.log" % name)
        os.makedirs(self.socket_dir, exist_ok=True)
        os.chmod(self.socket_dir, 0o777)
        self.argv = [binary, "--listen", "127.0.0.1:%d" % self.port,
                     "--backend", "host=127.0.0.1 port=%d" % backend_port,
                     "--socket-dir", self.socket_dir]
        if workers is not None:
            self.argv += ["--workers", str(workers)]
        if pool_size is not None:
            self.argv += ["--pool-size", str(pool_size)]
        if pool_mode is not None:
            self.argv += ["--pool-mode", pool_mode]
        if pool_timeout is not None:
            self.argv += ["--pool-timeout", str(pool_timeout)]
        self.argv += list(extra_args)
        self.proc = None

    def start(self, ready_timeout=30.0):
        logf = open(self.logfile, "ab")
        logf.write(("$ %s\n" % " ".join(self.argv)).encode())
        logf.flush()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf,
                                     preexec_fn=_set_pdeathsig, env=base_env())
        logf.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway %s exited with %s at startup:\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("gateway %s did not accept connections on port %d within %.0fs:\n%s"
                           % (self.name, self.port, ready_timeout, self.log_tail()))

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop the process; returns its exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def log_tail(self, n=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class MultipoolerProcess(GatewayProcess):
    """A multipooler in front of the test PostgreSQL, for a gateway's
    remote path (gateway --pooler -> multipooler -> PostgreSQL)."""

    def __init__(self, binary, name, tmp, backend_port, pool_size=None, extra_args=()):
        self.binary = binary
        self.name = name
        self.port = free_port()
        self.logfile = os.path.join(tmp, "mp-%s.log" % name)
        self.argv = [binary, "--listen", "127.0.0.1:%d" % self.port,
                     "--backend", "host=127.0.0.1 port=%d" % backend_port,
                     "--database", MAIN_DB]
        if pool_size is not None:
            self.argv += ["--pool-size", str(pool_size)]
        self.argv += list(extra_args)
        self.proc = None


def remote_requested():
    """True when gateways should use the remote pooler path ($PGW_REMOTE=1)."""
    return os.environ.get("PGW_REMOTE") == "1"


# --------------------------------------------------------------------------
# The environment: one PostgreSQL + lazily started gateways
# --------------------------------------------------------------------------

class Env:
    def __init__(self, self_test=False, gateway_binary=None, keep=False,
                 gateway_args=(), max_connections=PG_MAX_CONNECTIONS, pg_extra_conf="",
                 require_gateway=True):
        self.self_test = self_test
        self.require_gateway = require_gateway
        self.gateway_binary = os.path.abspath(
            gateway_binary or os.environ.get("PGW_GATEWAY") or DEFAULT_GATEWAY)
        extra = os.environ.get("PGW_GATEWAY_ARGS", "").split()
        self.gateway_args = list(gateway_args) + extra
        self.keep = keep
        # Gateways in remote mode send their queries through a multipooler
        # of their own ($PGW_MULTIPOOLER, default beside the gateway).
        self.remote = remote_requested()
        self.multipooler_binary = os.path.abspath(
            os.environ.get("PGW_MULTIPOOLER")
            or os.path.join(os.path.dirname(self.gateway_binary), "multipooler"))
        self.tmp = tempfile.mkdtemp(prefix="pgw-it.")
        os.chmod(self.tmp, 0o755)
        self.pg = PgServer(self.tmp, max_connections=max_connections, extra_conf=pg_extra_conf)
        self.shutdown_problems = []
        self.direct = None
        self._gateways = {}
        self._gwprocs = []
        self._dbs = set()
        self._lock = threading.Lock()
        self.closed = False

    # -- lifecycle --------------------------------------------------------
    def start(self):
        if psycopg2 is None:
            raise RuntimeError("psycopg2 not importable: install Debian's python3-psycopg2 "
                               "and run with /usr/bin/python3")
        raise_nofile_limit()
        if self.require_gateway and not self.self_test and not self.gateway_available():
            raise RuntimeError("gateway binary not found or not executable: %s "
                               "(build it, set PGW_GATEWAY, or use --self-test)"
                               % self.gateway_binary)
        self.pg.start()
        self.direct = Endpoint("direct", self.pg.port, self.pg.sockdir, "direct")
        self.admin_exec("CREATE ROLE %s SUPERUSER LOGIN" % SUPERUSER, dbname="postgres",
                        user="postgres")
        self.create_database(MAIN_DB)
        return self

    def gateway_available(self):
        return os.path.isfile(self.gateway_binary) and os.access(self.gateway_binary, os.X_OK)

    def close(self):
        if self.closed:
            return
        self.closed = True
        # Gateways first, then the multipoolers they talk to.
        for gw in sorted(self._gwprocs, key=lambda g: isinstance(g, MultipoolerProcess)):
            try:
                rc = gw.stop()
            except Exception as e:  # pragma: no cover
                log("stopping gateway %s: %s" % (gw.name, e))
                continue
            # A sanitizer report (a leak is found only at exit) or an
            # unclean exit is a failure of the run, not just a log line.
            try:
                with open(gw.logfile, errors="replace") as f:
                    text = f.read()
            except OSError:
                text = ""
            at = min([i for i in (text.find("Sanitizer"), text.find("runtime error:")) if i >= 0],
                     default=-1)
            if rc != 0 or at >= 0:
                self.shutdown_problems.append(
                    "gateway %s: exit status %s%s" % (gw.name, rc,
                                                      "\n" + text[max(0, at - 200):at + 4000]
                                                      if at >= 0 else ""))
        try:
            self.pg.stop()
        finally:
            if self.keep:
                log("kept temporary directory %s" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- admin ------------------------------------------------------------
    def admin_connect(self, dbname="postgres", user=SUPERUSER):
        return self.direct.connect(dbname=dbname, user=user, autocommit=True)

    def admin_exec(self, sql, params=None, dbname="postgres", user=SUPERUSER):
        conn = self.admin_connect(dbname=dbname, user=user)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def create_database(self, name, owner=SUPERUSER):
        """Create a database (once per run); returns its name."""
        with self._lock:
            if name in self._dbs:
                return name
            self.admin_exec('CREATE DATABASE "%s" OWNER "%s"' % (name, owner))
            self._dbs.add(name)
            return name

    def create_role(self, name, *opts):
        self.admin_exec('CREATE ROLE "%s" LOGIN %s' % (name, " ".join(opts)))

    def backend_count(self, dbname, state_like=None):
        """Backends (client connections) PostgreSQL has for a database."""
        sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
               "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        params = [dbname]
        if state_like:
            sql += " AND state LIKE %s"
            params.append(state_like)
        return self.admin_exec(sql, params)[0][0]

    # -- gateways -----------------------------------------------------------
    def gateway(self, name="default", pool_size=8, pool_mode="transaction",
                pool_timeout=10, workers=None, extra_args=(), remote=None,
                pooler_pool_size=None):
        """An endpoint for a gateway with the given configuration (started once).

        In self-test mode this is PostgreSQL itself. With remote (default:
        $PGW_REMOTE=1) the gateway gets a multipooler of its own and
        reaches PostgreSQL through it; that multipooler's pool (the server
        connections PostgreSQL sees) is pooler_pool_size, by default room
        for every gateway worker's full pool."""
        remote = self.remote if remote is None else remote
        with self._lock:
            ep = self._gateways.get(name)
            if ep is not None:
                return ep
            if self.self_test:
                ep = Endpoint(name, self.pg.port, self.pg.sockdir, "self-test",
                              pool_size=pool_size, pool_timeout=pool_timeout,
                              pool_mode=pool_mode)
            else:
                pooler_args, mp = [], None
                if remote:
                    # Every hold of the gateway is a reservation there: room
                    # for each worker's full pool.
                    mp = MultipoolerProcess(self.multipooler_binary, name, self.tmp,
                                            self.pg.port,
                                            pool_size=pooler_pool_size or pool_size * 4)
                    mp.start()
                    self._gwprocs.append(mp)
                    pooler_args = ["--pooler", "127.0.0.1:%d" % mp.port]
                gw = GatewayProcess(self.gateway_binary, name, self.tmp, self.pg.port,
                                    pool_size=pool_size, pool_mode=pool_mode,
                                    pool_timeout=pool_timeout, workers=workers,
                                    extra_args=self.gateway_args + pooler_args + list(extra_args))
                gw.start()
                self._gwprocs.append(gw)
                ep = Endpoint(name, gw.port, gw.socket_dir, "gateway", pool_size=pool_size,
                              pool_timeout=pool_timeout, pool_mode=pool_mode,
                              proc=gw.proc, logfile=gw.logfile,
                              pooler_proc=mp.proc if mp else None)
            self._gateways[name] = ep
            return ep

    def gateways(self):
        return list(self._gateways.values())


_ENV = None


def set_env(env):
    global _ENV
    _ENV = env


def get_env():
    """The Env of this run. run.py starts it; when a test module is run some
    other way (python3 -m unittest) it is started here and stopped at exit."""
    global _ENV
    if _ENV is None:
        _ENV = Env(self_test=os.environ.get("PGW_SELF_TEST") == "1")
        atexit.register(_ENV.close)
        _ENV.start()
    return _ENV


# --------------------------------------------------------------------------
# psql helpers
# --------------------------------------------------------------------------

_MASKS = [
    # NotificationResponse: psql prints the notifying backend's pid
    (re.compile(r"(received from server process with PID )\d+"), r"\1<PID>"),
    # connection errors mention host/port/socket path
    (re.compile(r'(connection to server (?:at|on) ".*?"(?:(?: \(.*?\))?, port) )\d+'), r"\1<PORT>"),
    (re.compile(r'on socket "[^"]*"'), 'on socket "<SOCKET>"'),
    (re.compile(r"\.s\.PGSQL\.\d+"), ".s.PGSQL.<PORT>"),
    # backend pids / keys printed by tests on purpose
    (re.compile(r"(backend[_ ]pid[ :=]+)\d+", re.I), r"\1<PID>"),
    (re.compile(r"(secret[_ ]key[ :=]+)-?\d+", re.I), r"\1<KEY>"),
    # temp schema names depend on the backend's slot
    (re.compile(r"\bpg_(toast_)?temp_\d+\b"), r"pg_\1temp_N"),
    # timestamps of "now": 2024-01-02 03:04:05.123456+00
    (re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d{3,6}(?:[+-]\d\d(?::\d\d)?)?\b"), "<TIMESTAMP>"),
]


# multigres's PgDiagnostic has no field for an error's source location
# (PostgreSQL's F, L and R): through a multipooler they are lost, so the
# remote run compares errors without them.
REMOTE_LOST_DIAG_FIELDS = ("source_file", "source_line", "source_function")
_REMOTE_MASKS = [(re.compile(r"^LOCATION:  .*\n", re.M), "")]


def mask_output(text, extra=()):
    """Mask non-deterministic parts of psql/psycopg2 output."""
    if remote_requested():
        extra = list(extra) + _REMOTE_MASKS
    for rx, repl in list(_MASKS) + list(extra):
        text = rx.sub(repl, text)
    return text


def run_psql_script(endpoint, script_path, dbname, timeout=120, env_extra=None):
    """psql -X -a -v ON_ERROR_STOP=0 -f script; stdout+stderr merged, masked."""
    r = endpoint.psql("-a", "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=default",
                      "-f", script_path, dbname=dbname, timeout=timeout,
                      env_extra=env_extra)
    return r.returncode, mask_output(r.stdout)


def text_diff(a, b, name_a="direct", name_b="gateway", n=3):
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                        fromfile=name_a, tofile=name_b, n=n))


def assert_same_as_direct(test, scenario, tight_name, max_prepared, show=pprint.pformat):
    """Runs SCENARIO(endpoint) directly, then through the default gateway
    and through a tight one (2 server connections, one worker, at most
    MAX_PREPARED statements per server connection, so statements are
    evicted and sessions share connections); fails TEST with a diff of
    SHOW(result) at the first gateway that differs."""
    env = get_env()
    want = scenario(env.direct)
    for gw in (env.gateway(), env.gateway(tight_name, pool_size=2, workers=1,
                                          extra_args=["--max-prepared", str(max_prepared)])):
        got = scenario(gw)
        if got != want:
            test.fail("through %s:\n%s" % (gw.name, text_diff(show(want), show(got))))


# --------------------------------------------------------------------------
# Raw protocol helpers (startup packets)
# --------------------------------------------------------------------------

def startup_packet(params, version=196608):
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_message(sock):
    t = recv_exact(sock, 1)
    (ln,) = struct.unpack("!I", recv_exact(sock, 4))
    return t, recv_exact(sock, ln - 4)


def parse_error_fields(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def raw_startup(host, port, params, timeout=15):
    """Send a StartupMessage; return the list of (type, body) until the first
    ErrorResponse/ReadyForQuery or EOF."""
    msgs = []
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(startup_packet(params))
        while True:
            try:
                t, body = read_message(s)
            except EOFError:
                break
            msgs.append((t, body))
            if t in (b"E", b"Z"):
                break
    return msgs


# --------------------------------------------------------------------------
# psycopg2 traces and the dual (direct vs gateway) test case
# --------------------------------------------------------------------------

DIAG_FIELDS = ("severity", "severity_nonlocalized", "sqlstate", "message_primary",
               "message_detail", "message_hint", "statement_position",
               "internal_position", "internal_query", "context", "schema_name",
               "table_name", "column_name", "datatype_name", "constraint_name",
               "source_file", "source_line", "source_function")


def error_record(e):
    """Everything comparable about a psycopg2 error."""
    def m(v):
        return mask_output(v) if isinstance(v, str) else v
    rec = {"type": type(e).__name__, "pgcode": getattr(e, "pgcode", None),
           "pgerror": m(getattr(e, "pgerror", None))}
    diag = getattr(e, "diag", None)
    if diag is not None:
        rec["diag"] = {f: m(getattr(diag, f)) for f in DIAG_FIELDS
                       if not (remote_requested() and f in REMOTE_LOST_DIAG_FIELDS)}
    if rec["pgcode"] is None:
        rec["message"] = str(e).strip()
    return rec


def _norm(v):
    if isinstance(v, memoryview):
        v = bytes(v)
    if isinstance(v, (bytes, bytearray)) and len(v) > 256:
        return ("<bytes len=%d sha256=%s>" % (len(v), hashlib.sha256(v).hexdigest()[:16]))
    if isinstance(v, str) and len(v) > 256:
        return ("<str len=%d sha256=%s>"
                % (len(v), hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest()[:16]))
    if isinstance(v, (list, tuple)):
        return type(v)(_norm(x) for x in v)
    return v


class Trace:
    """Records what a client saw; two traces (direct, gateway) are compared."""

    def __init__(self, label):
        self.label = label
        self.items = []

    def note(self, what, value):
        self.items.append(("note", what, _norm(value)))
        return value

    def drain(self, conn):
        """Notices received so far. Notifications are left in conn.notifies:
        when an asynchronous one arrives is timing-dependent, so tests collect
        them explicitly with wait_notifies()."""
        notices = list(conn.notices)
        del conn.notices[:]
        return notices

    def q(self, conn, sql, params=None, label=None, many=False, cursor=None):
        """Execute, record outcome, return rows (or the exception)."""
        cur = cursor or conn.cursor()
        what = label or sql
        try:
            if many:
                cur.executemany(sql, params)
            else:
                cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else None
            desc = [(d.name, d.type_code) for d in cur.description] if cur.description else None
            notices = self.drain(conn)
            self.items.append(("ok", what, cur.statusmessage, cur.rowcount, desc, _norm(rows),
                               conn.info.transaction_status, notices))
            return rows
        except psycopg2.Error as e:
            notices = self.drain(conn)
            self.items.append(("error", what, error_record(e),
                               conn.info.transaction_status if not conn.closed else "closed",
                               notices))
            return e
        finally:
            if cursor is None and not cur.closed:
                cur.close()

    def call(self, conn, what, fn):
        """Run fn() (e.g. conn.commit) recording ok/error and tx status."""
        try:
            res = fn()
            self.items.append(("call-ok", what, _norm(res), conn.info.transaction_status))
            return res
        except psycopg2.Error as e:
            self.items.append(("call-error", what, error_record(e),
                               conn.info.transaction_status if not conn.closed else "closed"))
            return e

    def status(self, conn, what="status"):
        self.items.append(("status", what, conn.info.transaction_status,
                           conn.get_transaction_status()))

    def formatted(self):
        return pprint.pformat(self.items, width=110)


def take_notifies(conn):
    """(channel, payload) of the notifications received so far; clears them."""
    got = [(n.channel, n.payload) for n in conn.notifies]
    del conn.notifies[:]
    return got


def wait_notifies(conn, count, timeout=30.0):
    """Poll conn until it has >= count notifications (or timeout)."""
    deadline = time.monotonic() + timeout
    while len(conn.notifies) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        select.select([conn], [], [], min(left, 0.2))
        conn.poll()
    return len(conn.notifies)


class IntegrationTestCase(unittest.TestCase):
    """Base class: env access, gateway-alive check, skip helpers."""

    env = None

    @classmethod
    def setUpClass(cls):
        cls.env = get_env()

    def gw(self, **kw):
        return self.env.gateway(**kw)

    def skip_in_self_test(self, why):
        if self.env.self_test:
            self.skipTest("self-test mode: " + why)

    def assert_gateways_alive(self):
        for ep in self.env.gateways():
            if not ep.alive():
                self.fail("gateway %s died (exit %s); log tail:\n%s"
                          % (ep.name, ep.proc.returncode, ep.log_tail()))

    def tearDown(self):
        self.assert_gateways_alive()


class DualTestCase(IntegrationTestCase):
    """Runs a scenario directly and through a gateway; compares traces."""

    def dual(self, scenario, gateway=None, dbname=MAIN_DB, setup=None):
        """scenario(trace, connect) where connect(**kw) returns a psycopg2
        connection to the endpoint under test; setup(admin_conn) runs directly
        before each run. Returns (direct_trace, gateway_trace)."""
        gateway = gateway or self.gw()
        traces = []
        for ep in (self.env.direct, gateway):
            if setup is not None:
                admin = self.env.admin_connect(dbname=dbname)
                try:
                    setup(admin)
                finally:
                    admin.close()
            tr = Trace(ep.kind)
            opened = []

            def connect(ep=ep, opened=opened, **kw):
                kw.setdefault("dbname", dbname)
                c = ep.connect(**kw)
                opened.append(c)
                return c
            try:
                scenario(tr, connect)
            finally:
                for c in opened:
                    with contextlib.suppress(Exception):
                        c.close()
            traces.append(tr)
        a, b = traces[0].formatted(), traces[1].formatted()
        if a != b:
            self.fail("direct and %s traces differ:\n%s" % (gateway.name, text_diff(a, b)))
        return traces


# --------------------------------------------------------------------------
# A minimal raw protocol-3 client (simple query protocol), for wire-level
# comparisons that client libraries would hide.
# --------------------------------------------------------------------------

class RawConn:
    def __init__(self, host, port, timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.startup_msgs = []

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_msg(self, t, body=b""):
        self.sock.sendall(t + struct.pack("!I", len(body) + 4) + body)

    def read(self):
        return read_message(self.sock)

    def until_ready(self):
        msgs = []
        while True:
            t, body = self.read()
            msgs.append((t, body))
            if t == b"Z":
                return msgs

    def startup(self, params):
        self.send(startup_packet(params))
        self.startup_msgs = self.until_ready()
        return self.startup_msgs

    def query(self, sql):
        self.send_msg(b"Q", sql.encode() + b"\0")
        return self.until_ready()

    def copy_in(self, sql, chunks=(), fail=None):
        """COPY ... FROM STDIN: send chunks as CopyData, then CopyDone or CopyFail."""
        self.send_msg(b"Q", sql.encode() + b"\0")
        msgs = []
        while True:
            t, body = self.read()
            msgs.append((t, body))
            if t == b"G":
                for c in chunks:
                    self.send_msg(b"d", c)
                if fail is not None:
                    self.send_msg(b"f", fail.encode() + b"\0")
                else:
                    self.send_msg(b"c")
                return msgs + self.until_ready()
            if t == b"Z":
                return msgs

    def terminate(self, timeout=5.0):
        """Send Terminate; True if the server side closed the connection."""
        self.send_msg(b"X")
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True
        finally:
            self.close()


def describe_messages(msgs):
    """Readable, comparable form of backend messages (pids/keys masked)."""
    out = []
    for t, body in msgs:
        tc = t.decode()
        if tc in "EN":
            out.append((tc, {k: mask_output(v) for k, v in parse_error_fields(body).items()}))
        elif tc == "K":
            out.append(("K", "<backend key>"))
        elif tc == "A":
            rest = body[4:].split(b"\0")
            out.append(("A", "<pid>", rest[0].decode(), rest[1].decode()))
        elif tc == "S":
            k, v = body.split(b"\0")[:2]
            out.append(("S", k.decode(), v.decode()))
        elif tc == "T":
            (n,) = struct.unpack("!H", body[:2])
            cols, p = [], 2
            for _ in range(n):
                e = body.index(b"\0", p)
                name = body[p:e].decode()
                tbl, att, typ, tlen, tmod, fmt = struct.unpack("!IhIhih", body[e + 1:e + 19])
                cols.append((name, att, typ, tlen, tmod, fmt, "table" if tbl else "-"))
                p = e + 19
            out.append(("T", cols))
        elif tc == "D":
            (n,) = struct.unpack("!H", body[:2])
            vals, p = [], 2
            for _ in range(n):
                (ln,) = struct.unpack("!i", body[p:p + 4])
                p += 4
                if ln < 0:
                    vals.append(None)
                else:
                    vals.append(body[p:p + ln].decode("utf-8", "replace"))
                    p += ln
            out.append(("D", vals))
        elif tc in "CI":
            out.append((tc, body.rstrip(b"\0").decode()))
        elif tc == "Z":
            out.append(("Z", body.decode()))
        else:
            out.append((tc, body))
    return out
