"""A minimal PostgreSQL frontend for message-level tests: encoders for the
frontend messages, a reader for backend messages, and a normaliser that
turns what a server said into something two servers can be compared on.

Stdlib only (Debian's /usr/bin/python3)."""
import socket
import struct

import harness


def _msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def _cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def parse(name, query, types=()):
    return _msg(b"P", _cstr(name) + _cstr(query) + struct.pack("!h", len(types))
                + b"".join(struct.pack("!I", t) for t in types))


def bind(portal, stmt, params=(), formats=(), result_formats=()):
    body = _cstr(portal) + _cstr(stmt) + struct.pack("!h", len(formats))
    body += b"".join(struct.pack("!h", f) for f in formats)
    body += struct.pack("!h", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            v = p.encode() if isinstance(p, str) else p
            body += struct.pack("!i", len(v)) + v
    body += struct.pack("!h", len(result_formats))
    body += b"".join(struct.pack("!h", f) for f in result_formats)
    return _msg(b"B", body)


def describe(kind, name):
    return _msg(b"D", kind.encode() + _cstr(name))


def execute(portal, max_rows=0):
    return _msg(b"E", _cstr(portal) + struct.pack("!i", max_rows))


def close(kind, name):
    return _msg(b"C", kind.encode() + _cstr(name))


def sync():
    return _msg(b"S")


def flush():
    return _msg(b"H")


def query(sql):
    return _msg(b"Q", _cstr(sql))


def copy_data(data):
    return _msg(b"d", data)


def copy_done():
    return _msg(b"c")


def copy_fail(message):
    return _msg(b"f", _cstr(message))


class Conn:
    """One logged-in connection (trust auth)."""

    def __init__(self, endpoint, dbname=harness.MAIN_DB, user=harness.SUPERUSER, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", endpoint.port), timeout=timeout)
        self.sock.sendall(harness.startup_packet({"user": user, "database": dbname,
                                                   "application_name": "pgwire"}))
        while True:
            t, body = self.read()
            if t == b"E":
                raise RuntimeError("login failed: %r" % harness.parse_error_fields(body))
            if t == b"Z":
                break

    def send(self, *msgs):
        self.sock.sendall(b"".join(msgs))

    def read(self):
        return harness.read_message(self.sock)

    def until(self, stop=b"Z", count=1):
        """Messages up to and including the count-th message of type stop."""
        out = []
        while count > 0:
            try:
                t, body = self.read()
            except EOFError:
                out.append((b"<closed>", b""))
                break
            out.append((t, body))
            if t == stop:
                count -= 1
        return out

    def take(self, n):
        return [self.read() for _ in range(n)]

    def close(self):
        try:
            self.sock.sendall(_msg(b"X"))
        except OSError:
            pass
        self.sock.close()


# Error fields naming PostgreSQL's source (file, line, function): not part
# of what a client can rely on, and the gateway's own errors leave them out.
_SOURCE_FIELDS = ("F", "L", "R")


def normalise(msgs):
    """(type, comparable body) for each message."""
    out = []
    for t, body in msgs:
        t = t.decode()
        if t in ("E", "N"):
            f = harness.parse_error_fields(body)
            out.append((t, {k: v for k, v in f.items() if k not in _SOURCE_FIELDS}))
        elif t == "A":
            out.append((t, body[4:]))  # the pid differs by design
        elif t == "D":
            n = struct.unpack("!h", body[:2])[0]
            vals, at = [], 2
            for _ in range(n):
                ln = struct.unpack("!i", body[at:at + 4])[0]
                at += 4
                if ln < 0:
                    vals.append(None)
                else:
                    vals.append(body[at:at + ln])
                    at += ln
            out.append((t, vals))
        elif t in ("C", "S"):
            out.append((t, body.rstrip(b"\0").split(b"\0")))
        elif t in ("Z", "<closed>"):
            out.append((t, body.decode()))
        else:
            out.append((t, body))
    return out
