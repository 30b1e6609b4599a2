#!/usr/bin/python3
"""pgw-transcript.py - list and validate PGWTRAN1 wire-protocol transcripts.

Usage:
    pgw-transcript.py [-s|--summary] [-q|--quiet] FILE...

For each transcript (format: see scripts/pgw-capture.py), the frontend (F)
and backend (B) byte streams are reassembled from the records and split into
PostgreSQL protocol messages, which are printed in arrival order as

    <dir> <type> <length> <name>

where <type> is the message type byte ('-' for the untyped startup-phase
packets) and <length> is the value of the message's length field (which
counts itself but not the type byte; 1-byte SSL/GSS answers are shown with
length 0).  Untyped packets at the start of the F stream are recognised by
their request code: StartupMessage (3.0), SSLRequest, GSSENCRequest,
CancelRequest.  Each SSLRequest/GSSENCRequest must be answered by a single
byte in the B stream ('N' = no, 'S'/'G' = yes; after a yes the stream is
encrypted and can not be parsed further, which is reported as an error).

A transcript is well-formed when: the magic is right, every record is
complete, both streams split into whole messages with no bytes left over,
the F stream starts with a StartupMessage (possibly preceded by
SSLRequest/GSSENCRequest) or is a lone CancelRequest, and the F stream ends
with Terminate ('X').  With --summary only per-type counts are printed.
Exit status is 0 when every file is well-formed, 1 otherwise.
"""

import argparse
import collections
import struct
import sys

MAGIC = b"PGWTRAN1"

PROTO_3_0 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

F_NAMES = {
    "B": "Bind", "C": "Close", "d": "CopyData", "c": "CopyDone",
    "f": "CopyFail", "D": "Describe", "E": "Execute", "H": "Flush",
    "F": "FunctionCall", "p": "PasswordMessage/SASL", "P": "Parse",
    "Q": "Query", "S": "Sync", "X": "Terminate",
}
B_NAMES = {
    "R": "Authentication", "K": "BackendKeyData", "2": "BindComplete",
    "3": "CloseComplete", "C": "CommandComplete", "d": "CopyData",
    "c": "CopyDone", "G": "CopyInResponse", "H": "CopyOutResponse",
    "W": "CopyBothResponse", "D": "DataRow", "I": "EmptyQueryResponse",
    "E": "ErrorResponse", "V": "FunctionCallResponse",
    "v": "NegotiateProtocolVersion", "n": "NoData", "N": "NoticeResponse",
    "A": "NotificationResponse", "t": "ParameterDescription",
    "S": "ParameterStatus", "1": "ParseComplete", "s": "PortalSuspended",
    "Z": "ReadyForQuery", "T": "RowDescription",
}
AUTH_NAMES = {0: "Ok", 2: "KerberosV5", 3: "CleartextPassword", 5: "MD5Password",
              7: "GSS", 8: "GSSContinue", 9: "SSPI", 10: "SASL",
              11: "SASLContinue", 12: "SASLFinal"}

MAX_MSG = 1 << 30


class TranscriptError(Exception):
    pass


def read_records(data):
    if data[:8] != MAGIC:
        raise TranscriptError("bad magic %r" % data[:8])
    pos = 8
    recs = []
    while pos < len(data):
        if pos + 5 > len(data):
            raise TranscriptError("truncated record header at offset %d" % pos)
        d = data[pos:pos + 1]
        (n,) = struct.unpack(">I", data[pos + 1:pos + 5])
        if d not in (b"F", b"B"):
            raise TranscriptError("bad direction %r at offset %d" % (d, pos))
        if pos + 5 + n > len(data):
            raise TranscriptError("truncated record body at offset %d" % pos)
        recs.append((d.decode(), data[pos + 5:pos + 5 + n]))
        pos += 5 + n
    return recs


class StreamParser:
    """Incremental splitter of one direction's byte stream into messages."""

    def __init__(self, direction):
        self.dir = direction
        self.buf = bytearray()
        self.consumed = 0
        self.startup_phase = direction == "F"  # untyped packets expected
        self.pending_answers = 0  # B: 1-byte answers to SSL/GSS requests
        self.encrypted = False
        self.peer = None
        self.errors = []

    def feed(self, chunk):
        self.buf += chunk
        out = []
        while True:
            m = self._next()
            if m is None:
                break
            out.append(m)
        return out

    def _take(self, n):
        b = bytes(self.buf[:n])
        del self.buf[:n]
        self.consumed += n
        return b

    def _next(self):
        if self.encrypted or not self.buf:
            return None
        if self.dir == "B" and self.pending_answers:
            ch = chr(self.buf[0])
            self._take(1)
            self.pending_answers -= 1
            if ch in ("S", "G"):
                self.encrypted = True
                self.peer.encrypted = True
                self.errors.append("server accepted encryption (%r); rest of "
                                   "stream is not parseable" % ch)
            elif ch != "N":
                self.errors.append("unexpected answer byte %r to SSL/GSS "
                                   "request" % ch)
            return ("B", ch, 0, "EncryptionResponse", b"")
        if self.dir == "F" and self.startup_phase:
            if len(self.buf) < 8:
                return None
            (length, code) = struct.unpack(">II", self.buf[:8])
            if length < 8 or length > 10000:
                self.errors.append("implausible startup packet length %d"
                                   % length)
                self.encrypted = True  # stop parsing
                return None
            if len(self.buf) < length:
                return None
            body = self._take(length)[8:]
            if code == SSL_REQUEST:
                self.peer.pending_answers += 1
                return ("F", "-", length, "SSLRequest", body)
            if code == GSSENC_REQUEST:
                self.peer.pending_answers += 1
                return ("F", "-", length, "GSSENCRequest", body)
            if code == CANCEL_REQUEST:
                return ("F", "-", length, "CancelRequest", body)
            if code >> 16 == 3:
                self.startup_phase = False
                return ("F", "-", length, "StartupMessage", body)
            self.errors.append("unknown startup request code %d" % code)
            self.encrypted = True
            return None
        if len(self.buf) < 5:
            return None
        t = chr(self.buf[0])
        (length,) = struct.unpack(">I", self.buf[1:5])
        if length < 4 or length > MAX_MSG:
            self.errors.append("implausible length %d for type %r at stream "
                               "offset %d" % (length, t, self.consumed))
            self.encrypted = True
            return None
        if len(self.buf) < 1 + length:
            return None
        body = self._take(1 + length)[5:]
        names = F_NAMES if self.dir == "F" else B_NAMES
        name = names.get(t)
        if name is None:
            self.errors.append("unknown %s message type %r at stream offset %d"
                               % (self.dir, t, self.consumed - 1 - length))
            name = "?"
        if self.dir == "B" and t == "R" and len(body) >= 4:
            (sub,) = struct.unpack(">I", body[:4])
            name += "/" + AUTH_NAMES.get(sub, str(sub))
        return (self.dir, t, length, name, body)


def analyse(path):
    with open(path, "rb") as f:
        data = f.read()
    recs = read_records(data)
    fp, bp = StreamParser("F"), StreamParser("B")
    fp.peer, bp.peer = bp, fp
    msgs = []
    for d, chunk in recs:
        msgs.extend((fp if d == "F" else bp).feed(chunk))
    errors = fp.errors + bp.errors
    for p in (fp, bp):
        if p.buf and not p.encrypted:
            errors.append("%d trailing bytes in %s stream (incomplete message)"
                          % (len(p.buf), p.dir))
    if bp.pending_answers:
        errors.append("SSL/GSS request without answer")
    fmsgs = [m for m in msgs if m[0] == "F"]
    if not fmsgs:
        errors.append("empty F stream")
    else:
        names = [m[3] for m in fmsgs]
        i = 0
        while i < len(names) and names[i] in ("SSLRequest", "GSSENCRequest"):
            i += 1
        if names == ["CancelRequest"]:
            pass
        elif i >= len(names) or names[i] != "StartupMessage":
            errors.append("F stream does not start with StartupMessage")
        elif fmsgs[-1][1] != "X":
            errors.append("F stream does not end with Terminate 'X'")
    return recs, msgs, errors


def _cstr(body):
    return body.split(b"\0", 1)[0].decode("utf-8", "replace")


def detail(d, t, body):
    """Short human-readable detail for a few message kinds."""
    try:
        if t == "-":
            return ""
        if d == "B" and t == "Z" and body:
            return "status=%s" % chr(body[0])
        if t == "C" and d == "B":
            return repr(_cstr(body))
        if d == "B" and t in ("E", "N") and len(body) > 1:
            fields = {}
            for part in body.split(b"\0"):
                if part:
                    fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
            return "%s %s %r" % (fields.get("S", "?"), fields.get("C", "?"),
                                 fields.get("M", ""))
        if d == "B" and t == "S":
            parts = body.split(b"\0")
            return "%s=%s" % (parts[0].decode(errors="replace"),
                              parts[1].decode(errors="replace"))
        if d == "B" and t == "A" and len(body) > 4:
            parts = body[4:].split(b"\0")
            return "%s %r" % (parts[0].decode(errors="replace"),
                              parts[1].decode(errors="replace"))
        if d == "F" and t == "Q":
            q = _cstr(body)
            return repr(q if len(q) <= 60 else q[:57] + "...")
        if d == "F" and t == "F" and len(body) >= 4:
            return "fnoid=%d" % struct.unpack(">I", body[:4])[0]
    except (IndexError, struct.error):
        pass
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("-s", "--summary", action="store_true",
                    help="print only per-direction message type counts")
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="print only errors and one OK line per file")
    args = ap.parse_args()
    bad = 0
    for path in args.files:
        try:
            recs, msgs, errors = analyse(path)
        except (OSError, TranscriptError) as e:
            print("%s: ERROR %s" % (path, e))
            bad += 1
            continue
        if not args.summary and not args.quiet:
            print("== %s" % path)
            for d, t, length, name, body in msgs:
                det = detail(d, t, body)
                print("%s %s %d %s%s" % (d, t, length, name,
                                         " " + det if det else ""))
        # typed messages are counted by type byte, the untyped startup-phase
        # packets (and 1-byte SSL/GSS answers) by name
        cnt = collections.Counter(
            (m[0], m[1] if m[1] != "-" and m[3] != "EncryptionResponse"
             else m[3] + ("(%s)" % m[1] if m[1] != "-" else ""))
            for m in msgs)
        nbytes = {"F": 0, "B": 0}
        for d, c in recs:
            nbytes[d] += len(c)
        if not args.quiet:
            for d in ("F", "B"):
                items = sorted((t, n) for (dd, t), n in cnt.items() if dd == d)
                print("%s: %s %s" % (path, d, " ".join(
                    "%s=%d" % (t, n) for t, n in items)))
        status = "OK" if not errors else "BAD"
        print("%s: %s (%d records, %d messages, F %d bytes, B %d bytes)"
              % (path, status, len(recs), len(msgs), nbytes["F"],
                 nbytes["B"]))
        for e in errors:
            print("%s: error: %s" % (path, e))
        if errors:
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
