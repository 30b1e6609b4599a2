#!/usr/bin/env python3
"""Fuzz seed corpora from captured conversations (tests/data/*.pgwt).

For each transcript, writes into --out:
  frontend/   the client's byte stream in the input form of fuzz_frontend:
              a control byte (the phase index of gen/pgw_gen.py's
              PHASE_ORDER, plus 10 * the auth method the server asked for,
              see fuzz/fuzz_common.h), then the bytes. The first piece
              starts in STARTUP; long streams are cut at message boundaries
              into pieces of about --piece bytes, each starting with the
              phase the fuzzer's decoder is in at that point (READY, or an
              authentication phase).
  backend/    the same for fuzz_backend: the server's stream, starting in
              SSL_ANSWER/GSSENC_ANSWER when the client began with
              SSLRequest/GSSENCRequest, else BACKEND.
  startup/    each startup packet, and the leading packets together.
  roundtrip/  message bodies for fuzz_roundtrip (a byte = message index + 1
              in grammar order, then the body), a few of each kind.

Messages larger than --max-message are left out (the fuzzers run with
-max_len=16384). The grammar is read with gen/pgw_gen.py itself, so the
message order always matches the generated code. Standard library only.
"""
import argparse
import importlib.util
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SSL_CODE, GSSENC_CODE, CANCEL_CODE = 80877103, 80877104, 80877102
# What the server asked for after StartupMessage -> the control byte's auth
# digit in fuzz_frontend (0 trust, 1 password, 2 SASL, 3 GSS).
AUTH_KIND = {"PGW_PH_READY": 0, "PGW_PH_AUTH_PASSWORD": 1, "PGW_PH_AUTH_SASL_INITIAL": 2,
             "PGW_PH_AUTH_GSS": 3}
# Authentication request subtype -> the phase of the client's 'p' answer.
AUTH_ANSWER = {3: "PGW_PH_AUTH_PASSWORD", 5: "PGW_PH_AUTH_PASSWORD", 7: "PGW_PH_AUTH_GSS",
               8: "PGW_PH_AUTH_GSS", 9: "PGW_PH_AUTH_GSS", 10: "PGW_PH_AUTH_SASL_INITIAL",
               11: "PGW_PH_AUTH_SASL"}


def load_gen(path):
    spec = importlib.util.spec_from_file_location("pgw_gen", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_transcript(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"PGWTRAN1":
        raise ValueError("%s: not a transcript" % path)
    streams = {"F": bytearray(), "B": bytearray()}
    off = 8
    while off < len(data):
        if len(data) - off < 5 or data[off:off + 1] not in (b"F", b"B"):
            raise ValueError("%s: bad record at %d" % (path, off))
        n = struct.unpack(">I", data[off + 1:off + 5])[0]
        if len(data) - off - 5 < n:
            raise ValueError("%s: truncated record at %d" % (path, off))
        streams[chr(data[off])] += data[off + 5:off + 5 + n]
        off += 5 + n
    return bytes(streams["F"]), bytes(streams["B"])


def split_frontend(fe):
    """[(kind, bytes)]: kind 'startup' (code) or the type byte."""
    out, off = [], 0
    while off + 8 <= len(fe):
        n, code = struct.unpack(">Ii", fe[off:off + 8])
        if n < 8 or off + n > len(fe):
            return out, off
        out.append((("startup", code & 0xffffffff), fe[off:off + n]))
        off += n
        if code & 0xffffffff in (SSL_CODE, GSSENC_CODE):
            continue
        if code & 0xffffffff == CANCEL_CODE:
            return out, off
        break
    out2, off = split_typed(fe, off)
    return out + out2, off


def split_typed(bs, off):
    out = []
    while off + 5 <= len(bs):
        n = struct.unpack(">I", bs[off + 1:off + 5])[0]
        if n < 4 or off + 1 + n > len(bs):
            break
        out.append((("typed", bs[off]), bs[off:off + 1 + n]))
        off += 1 + n
    return out, off


class Grammar:
    def __init__(self, gen, grammar_path):
        self.gen = gen
        self.messages = gen.parse_grammar(grammar_path)
        self.phase_index = {p: i for i, p in enumerate(gen.PHASE_ORDER)}

    def index(self, m):
        return self.messages.index(m) + 1

    def startup(self, code):
        fallback = None
        for m in self.messages:
            if m.startup:
                if m.tag == code:
                    return m
                if m.tag == "*":
                    fallback = m
        return fallback

    def frontend(self, tbyte, phase):
        for m in self.messages:
            if m.direction in ("F", "FB") and m.type_byte == tbyte:
                if m.phase is None and phase in ("PGW_PH_READY", "PGW_PH_COPY_IN"):
                    return m
                if m.phase is not None and self.gen.PHASES[m.phase] == phase:
                    return m
        return None

    def backend(self, tbyte, body):
        for m in self.messages:
            if m.direction in ("B", "FB") and m.type_byte == tbyte:
                if m.tag is None:
                    return m
                if len(body) >= 4 and struct.unpack(">i", body[:4])[0] == m.tag:
                    return m
        return None


def simulate_frontend(g, msgs, auth_phase):
    """The phase fuzz_frontend's decoder is in at each message (None once
    it has stopped), following its steering in fuzz_common.c."""
    phase, out = "PGW_PH_STARTUP", []
    for (kind, val), raw in msgs:
        out.append(phase)
        if phase is None:
            continue
        if kind == "startup":
            m = g.startup(val)
        else:
            m = g.frontend(val, phase)
        name = m.name if m else None
        if name is None or name in ("CancelRequest", "Terminate"):
            phase = None
        elif name == "StartupMessage":
            phase = auth_phase
        elif name == "SASLInitialResponse":
            phase = "PGW_PH_AUTH_SASL"
        elif name in ("PasswordMessage", "SASLResponse", "GSSResponse", "CopyDone", "CopyFail"):
            phase = "PGW_PH_READY"
    return out


def pieces(msgs, phases, piece, max_message):
    """Cut a message list into (start phase, bytes) runs."""
    runs, cur, cur_phase = [], bytearray(), None
    for (_, raw), ph in zip(msgs, phases):
        if ph is None:
            break
        if len(raw) > max_message:
            if cur:
                runs.append((cur_phase, bytes(cur)))
            cur, cur_phase = bytearray(), None
            continue
        if cur and len(cur) + len(raw) > piece:
            runs.append((cur_phase, bytes(cur)))
            cur, cur_phase = bytearray(), None
        if not cur:
            cur_phase = ph
        cur += raw
    if cur:
        runs.append((cur_phase, bytes(cur)))
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("transcripts", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--gen", default=os.path.join(ROOT, "gen", "pgw_gen.py"))
    ap.add_argument("--grammar", default=os.path.join(ROOT, "grammar", "messages.pgw"))
    ap.add_argument("--piece", type=int, default=8192)
    ap.add_argument("--max-message", type=int, default=16000)
    ap.add_argument("--per-message", type=int, default=4,
                    help="roundtrip seeds kept per message kind")
    a = ap.parse_args()

    g = Grammar(load_gen(a.gen), a.grammar)
    pidx = g.phase_index
    subs = ("frontend", "backend", "startup", "roundtrip")
    for sub in subs:
        shutil.rmtree(os.path.join(a.out, sub), ignore_errors=True)
        os.makedirs(os.path.join(a.out, sub))
    counts = dict.fromkeys(subs, 0)

    def write(sub, name, data):
        with open(os.path.join(a.out, sub, name), "wb") as f:
            f.write(data)
        counts[sub] += 1

    bodies = {}  # message index -> set of bodies
    for path in sorted(a.transcripts):
        stem = os.path.splitext(os.path.basename(path))[0]
        fe, be = read_transcript(path)
        fmsgs, _ = split_frontend(fe)
        answers = [val for (kind, val), _ in fmsgs
                   if kind == "startup" and val in (SSL_CODE, GSSENC_CODE)]

        # Backend: the one-byte answers, then typed messages.
        bmsgs, bphases, off = [], [], 0
        for code in answers:
            if off < len(be):
                bmsgs.append((("answer", be[off]), be[off:off + 1]))
                bphases.append("PGW_PH_SSL_ANSWER" if code == SSL_CODE else "PGW_PH_GSSENC_ANSWER")
                off += 1
        typed, _ = split_typed(be, off)
        bmsgs += typed
        bphases += ["PGW_PH_BACKEND"] * len(typed)

        # Which 'p' answers the server asked for, in order.
        asked = []
        for (kind, tb), raw in typed:
            if tb == ord("R") and len(raw) >= 9:
                sub = struct.unpack(">i", raw[5:9])[0]
                if sub in AUTH_ANSWER:
                    asked.append(AUTH_ANSWER[sub])
        auth_phase = asked[0] if asked and asked[0] in AUTH_KIND else "PGW_PH_READY"
        fphases = simulate_frontend(g, fmsgs, auth_phase)

        auth = AUTH_KIND[auth_phase]
        for i, (ph, data) in enumerate(pieces(fmsgs, fphases, a.piece, a.max_message)):
            write("frontend", "%s-fe-%02d" % (stem, i), bytes([pidx[ph] + 10 * auth]) + data)
            if i == 0:
                # The same, fed in pieces of 1..32 bytes (piece mode 3).
                write("frontend", "%s-fe-%02d-cut" % (stem, i),
                      bytes([pidx[ph] + 10 * (auth + 4 * 3)]) + data)
        for i, (ph, data) in enumerate(pieces(bmsgs, bphases, a.piece, a.max_message)):
            write("backend", "%s-be-%02d" % (stem, i), bytes([pidx[ph]]) + data)
            if i == 0:
                write("backend", "%s-be-%02d-cut" % (stem, i), bytes([pidx[ph] + 10 * 3]) + data)

        lead = bytearray()
        for i, ((kind, val), raw) in enumerate(fmsgs):
            if kind != "startup":
                break
            write("startup", "%s-%d" % (stem, i), raw)
            lead += raw
        if len(answers) > 0:
            write("startup", "%s-all" % stem, bytes(lead))

        # Bodies for the roundtrip target.
        for ((kind, val), raw), ph in zip(fmsgs, fphases):
            if kind == "startup":
                m, body = g.startup(val), raw[4:]
            elif ph is not None:
                m, body = g.frontend(val, ph), raw[5:]
            else:
                m = None
            if m is not None and len(body) <= a.max_message:
                bodies.setdefault(g.index(m), set()).add(body)
        for (kind, val), raw in bmsgs:
            if kind != "typed":
                continue
            m = g.backend(val, raw[5:])
            if m is not None and len(raw) - 5 <= a.max_message:
                bodies.setdefault(g.index(m), set()).add(raw[5:])

    for idx, found in sorted(bodies.items()):
        found = sorted(found, key=lambda b: (len(b), b))
        n = len(found)
        keep = sorted({int(k * (n - 1) / max(1, a.per_message - 1)) for k in range(a.per_message)})
        name = g.messages[idx - 1].name
        for k in keep:
            write("roundtrip", "%s-%d" % (name, k), bytes([idx]) + found[k])

    print("make_corpus: %s" % ", ".join("%d %s" % (counts[s], s) for s in subs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
