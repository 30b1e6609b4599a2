#!/usr/bin/python3
"""pgw-capture.py - recording TCP proxy for the PostgreSQL wire protocol.

Usage:
    pgw-capture.py --listen 127.0.0.1:PORT (--upstream HOST:PORT |
                   --upstream-unix /path/.s.PGSQL.5432)
                   --out FILE [--out FILE2 ...] [--connections N]
                   [--port-file PATH] [--timeout SECONDS]

The proxy listens on --listen (PORT may be 0: the kernel picks a free port;
with --port-file the port actually bound is written to PATH once the socket
is listening, so a caller can wait for that file and then start its client).
Every accepted client connection gets its own upstream connection and its
own transcript file.  Connection number k (1-based, in accept order) is
written to the k-th --out argument; when there are more connections than
--out arguments, the file name is derived from the LAST --out by inserting
"-k" before its extension (e.g. "x.pgwt" -> "x-2.pgwt", "x-3.pgwt", ...).
Connections may overlap in time; they are all served from one select loop.

The proxy exits once --connections N connections (default 1) have been
accepted and fully closed on both sides, or on SIGINT/SIGTERM (open
connections are then closed and their transcripts flushed), or when
--timeout seconds (default 600) pass without any activity.

Transcript format (binary, fixed - other code depends on it):
    8-byte magic b"PGWTRAN1", then a sequence of records:
        1 byte   direction: b"F" = bytes the client (frontend) sent to the
                 server, b"B" = bytes the server (backend) sent to the client
        4 bytes  big-endian unsigned length N
        N bytes  exactly the bytes returned by one recv() call
    Records are in the order they were received.  Concatenating the payloads
    of all records of one direction gives that direction's exact byte stream;
    the chunking reflects the real recv() boundaries.

Only the Python standard library is used.
"""

import argparse
import errno
import os
import select
import signal
import socket
import struct
import sys
import time

MAGIC = b"PGWTRAN1"
RECV_SIZE = 65536


def parse_hostport(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % s)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError("bad port in %r" % s)


def out_name(outs, k):
    """File name for connection number k (1-based)."""
    if k <= len(outs):
        return outs[k - 1]
    last = outs[-1]
    d, b = os.path.split(last)
    stem, dot, ext = b.rpartition(".")
    if dot and stem:
        b = "%s-%d.%s" % (stem, k, ext)
    else:
        b = "%s-%d" % (b, k)
    return os.path.join(d, b)


class Side:
    """One socket of a proxied connection plus its pending output."""

    def __init__(self, sock, direction):
        self.sock = sock
        self.direction = direction  # direction tag for bytes READ from here
        self.outbuf = bytearray()  # bytes waiting to be written TO this sock
        self.read_eof = False  # peer sent FIN (or reset)
        self.write_shut = False  # we already did shutdown(SHUT_WR)
        self.dead = False  # socket unusable (reset / error)


class Conn:
    def __init__(self, num, client_sock, upstream_sock, path):
        self.num = num
        self.client = Side(client_sock, b"F")
        self.server = Side(upstream_sock, b"B")
        self.path = path
        self.f = open(path, "wb")
        self.f.write(MAGIC)
        self.nrec = {b"F": 0, b"B": 0}
        self.nbytes = {b"F": 0, b"B": 0}

    def other(self, side):
        return self.server if side is self.client else self.client

    def record(self, direction, data):
        self.f.write(direction + struct.pack(">I", len(data)) + data)
        self.nrec[direction] += 1
        self.nbytes[direction] += len(data)

    def finished(self):
        for s in (self.client, self.server):
            if not (s.read_eof or s.dead):
                return False
            o = self.other(s)
            # pending output towards the other side must be flushed (or the
            # other side must be dead) before we are done
            if o.outbuf and not o.dead:
                return False
        return True

    def close(self):
        for s in (self.client, self.server):
            try:
                s.sock.close()
            except OSError:
                pass
        self.f.close()


def log(msg):
    sys.stderr.write("pgw-capture: %s\n" % msg)
    sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser(
        description="Recording TCP proxy for the PostgreSQL wire protocol "
        "(writes PGWTRAN1 transcripts).")
    ap.add_argument("--listen", required=True, type=parse_hostport,
                    help="HOST:PORT to listen on (PORT 0 = any free port)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--upstream", type=parse_hostport,
                   help="server HOST:PORT")
    g.add_argument("--upstream-unix", metavar="PATH",
                   help="server unix socket path, e.g. /tmp/.s.PGSQL.5432")
    ap.add_argument("--out", action="append", required=True,
                    help="transcript file; repeat for 2nd, 3rd... "
                    "connection (see header)")
    ap.add_argument("--connections", type=int, default=1,
                    help="exit after this many connections completed "
                    "(default 1)")
    ap.add_argument("--port-file",
                    help="write the bound port here once listening")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="give up after this many idle seconds (default 600)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    lhost, lport = args.listen
    fam = socket.AF_INET6 if ":" in lhost else socket.AF_INET
    lsock = socket.socket(fam, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((lhost, lport))
    lsock.listen(16)
    lsock.setblocking(False)
    bound_port = lsock.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as pf:
            pf.write("%d\n" % bound_port)
        os.rename(tmp, args.port_file)
    if not args.quiet:
        log("listening on %s:%d" % (lhost, bound_port))

    conns = []
    accepted = 0
    completed = 0
    last_activity = time.monotonic()

    def connect_upstream():
        if args.upstream_unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(args.upstream_unix)
        else:
            s = socket.create_connection(args.upstream)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        return s

    def finish(c):
        nonlocal completed
        c.close()
        conns.remove(c)
        completed += 1
        if not args.quiet:
            log("connection %d done: %s (F %d recs/%d bytes, B %d recs/%d "
                "bytes)" % (c.num, c.path, c.nrec[b"F"], c.nbytes[b"F"],
                            c.nrec[b"B"], c.nbytes[b"B"]))

    while True:
        if stop["flag"]:
            break
        if completed >= args.connections and not conns:
            break
        if time.monotonic() - last_activity > args.timeout:
            log("idle timeout, giving up")
            break

        rlist, wlist = [], []
        if accepted < args.connections:
            rlist.append(lsock)
        for c in conns:
            for s in (c.client, c.server):
                if s.dead:
                    continue
                if not s.read_eof:
                    rlist.append(s.sock)
                if s.outbuf:
                    wlist.append(s.sock)
        try:
            r, w, _ = select.select(rlist, wlist, [], 0.5)
        except InterruptedError:
            continue
        if not r and not w:
            continue
        last_activity = time.monotonic()

        if lsock in r:
            try:
                csock, caddr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                csock = None
            if csock is not None:
                accepted += 1
                csock.setblocking(False)
                try:
                    csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,
                                     1)
                except OSError:
                    pass
                try:
                    usock = connect_upstream()
                except OSError as e:
                    log("cannot connect upstream: %s" % e)
                    csock.close()
                    completed += 1
                    continue
                path = out_name(args.out, accepted)
                c = Conn(accepted, csock, usock, path)
                conns.append(c)
                if not args.quiet:
                    log("connection %d from %s:%d -> %s"
                        % (accepted, caddr[0], caddr[1], path))

        for c in list(conns):
            for s in (c.client, c.server):
                o = c.other(s)
                if s.sock in w and s.outbuf and not s.dead:
                    try:
                        n = s.sock.send(s.outbuf)
                        del s.outbuf[:n]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError as e:
                        log("conn %d: send error: %s" % (c.num, e))
                        s.dead = True
                        s.outbuf.clear()
                # propagate half-close once everything was forwarded
                if (o.read_eof and not s.outbuf and not s.write_shut
                        and not s.dead):
                    s.write_shut = True
                    try:
                        s.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            for s in (c.client, c.server):
                if s.sock in r and not s.read_eof and not s.dead:
                    o = c.other(s)
                    try:
                        data = s.sock.recv(RECV_SIZE)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        if e.errno not in (errno.ECONNRESET, errno.EPIPE):
                            log("conn %d: recv error: %s" % (c.num, e))
                        data = b""
                        s.dead = True
                    if data:
                        c.record(s.direction, data)
                        if not o.dead:
                            o.outbuf += data
                    else:
                        s.read_eof = True
                        if not o.outbuf and not o.write_shut and not o.dead:
                            o.write_shut = True
                            try:
                                o.sock.shutdown(socket.SHUT_WR)
                            except OSError:
                                pass
            if c.finished():
                finish(c)

    for c in list(conns):
        log("closing unfinished connection %d (%s)" % (c.num, c.path))
        finish(c)
    lsock.close()
    return 0 if completed >= args.connections else 1


if __name__ == "__main__":
    sys.exit(main())
