#!/usr/bin/env python3
"""Turn grammar/messages.pgw into the codec's generated sources.

Outputs (into --out):
  pgw_messages.h   message ids, view structs, encoder prototypes
  pgw_bodies.rl    one Ragel machine per message body, the dispatch tables
  pgw_encode.c     encoders
  pgw_vectors.c    test vectors: valid messages and every way to break them,
                   each with the error PostgreSQL would raise
  seeds/<target>/  fuzzing seed corpora made from the valid vectors

Standard library only; runs at build time.
"""
import argparse
import os
import re
import struct
import sys

# Error classes of a body fault, by what the decoder was about to read.
# Texts are PostgreSQL's (pqformat.c).
AT_END, AT_INT, AT_BYTE, AT_STRING = 0, 1, 2, 3
AT_TEXT = {
    AT_END: "invalid message format",
    AT_INT: "insufficient data left in message",
    AT_BYTE: "no data left in message",
    AT_STRING: "invalid string in message",
}
AT_NAME = {AT_END: "PGW_AT_END", AT_INT: "PGW_AT_INT", AT_BYTE: "PGW_AT_BYTE",
           AT_STRING: "PGW_AT_STRING"}

SCALARS = {"int8": 1, "int16": 2, "int32": 4, "byte": 1, "format": 2}
LIMITS = {"small": "PGW_LIMIT_SMALL", "large": "PGW_LIMIT_LARGE",
          "auth": "PGW_LIMIT_AUTH", "startup": "PGW_LIMIT_STARTUP"}
PHASES = {"password": "PGW_PH_AUTH_PASSWORD", "sasl_initial": "PGW_PH_AUTH_SASL_INITIAL",
          "sasl": "PGW_PH_AUTH_SASL", "gss": "PGW_PH_AUTH_GSS"}


class GrammarError(Exception):
    pass


def snake(name):
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return s.lower()


class Field:
    def __init__(self, name, kind, **kw):
        self.name = name
        self.kind = kind          # scalar kind, string, bytes, value, rest, fields, pairs, strlist, array
        self.size = kw.get("size")        # bytesN
        self.rmin = kw.get("rmin", 0)     # rest
        self.rmax = kw.get("rmax")
        self.count_bits = kw.get("count_bits")  # array
        self.item = kw.get("item")        # array: Field (scalar/string/value) or list of Fields
        self.check = None                 # (values, sqlstate, text)

    @property
    def is_record_array(self):
        return self.kind == "array" and isinstance(self.item, list)

    @property
    def fixed_item_size(self):
        if self.kind == "array" and not self.is_record_array and self.item.kind in SCALARS:
            return SCALARS[self.item.kind]
        return None


class Message:
    def __init__(self, name, direction, type_byte, limit, tag, phase, fields):
        self.name = name
        self.cname = snake(name)
        self.direction = direction
        self.type_byte = type_byte
        self.limit = limit
        self.tag = tag
        self.phase = phase
        self.fields = fields

    @property
    def id(self):
        return "PGW_MSG_" + self.cname.upper()

    @property
    def startup(self):
        return self.direction == "S"


def parse_field(tok):
    m = re.fullmatch(r"(\w+):(.*)", tok)
    if not m:
        raise GrammarError("bad field %r" % tok)
    name, spec = m.group(1), m.group(2)
    arr = re.fullmatch(r"(.*)\[(16|32)\]", spec)
    if arr:
        inner, bits = arr.group(1), int(arr.group(2))
        if inner.startswith("{"):
            item = [parse_field(t) for t in split_fields(inner[1:-1])]
        else:
            item = parse_field("item:" + inner)
            if item.kind not in SCALARS and item.kind not in ("string", "value"):
                raise GrammarError("array of %s not supported" % item.kind)
        return Field(name, "array", count_bits=bits, item=item)
    if spec in SCALARS or spec in ("string", "value", "fields", "pairs", "strlist"):
        return Field(name, spec)
    bm = re.fullmatch(r"bytes(\d+)", spec)
    if bm:
        return Field(name, "bytes", size=int(bm.group(1)))
    rm = re.fullmatch(r"rest\((\d+)\.\.(\d*)\)", spec)
    if rm:
        return Field(name, "rest", rmin=int(rm.group(1)),
                     rmax=int(rm.group(2)) if rm.group(2) else None)
    raise GrammarError("unknown field kind %r" % spec)


def split_fields(text):
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch.isspace() and depth == 0:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def parse_value(tok):
    if tok.startswith("'"):
        return ord(tok[1])
    return int(tok)


def parse_grammar(path):
    messages, checks = [], []
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("check") else raw.strip()
            if not line:
                continue
            try:
                if line.startswith("check "):
                    m = re.fullmatch(r'check\s+(\w+)\.(\w+)\s+in\s+(.*?)\s+(\w{5})\s+"(.*)"', line)
                    if not m:
                        raise GrammarError("bad check line")
                    vals = [parse_value(t) for t in m.group(3).split()]
                    checks.append((m.group(1), m.group(2), vals, m.group(4), m.group(5)))
                    continue
                toks = split_fields(line)
                name, direction, tbyte, limit = toks[:4]
                rest = toks[4:]
                tag = phase = None
                while rest and rest[0][0] in "=@":
                    t = rest.pop(0)
                    if t[0] == "=":
                        tag = "*" if t == "=*" else int(t[1:])
                    else:
                        phase = t[1:]
                if direction not in ("F", "B", "FB", "S"):
                    raise GrammarError("bad direction %r" % direction)
                if limit not in LIMITS:
                    raise GrammarError("bad limit %r" % limit)
                if phase and phase not in PHASES:
                    raise GrammarError("bad phase %r" % phase)
                tb = None if tbyte == "-" else ord(tbyte[1])
                fields = [parse_field(t) for t in rest]
                for i, fl in enumerate(fields):
                    if fl.kind == "rest" and i != len(fields) - 1:
                        raise GrammarError("rest must be the last field")
                messages.append(Message(name, direction, tb, limit, tag, phase, fields))
            except (GrammarError, ValueError, IndexError) as e:
                raise GrammarError("%s:%d: %s" % (path, lineno, e))
    by_name = {m.name: m for m in messages}
    for mname, fname, vals, state, text in checks:
        msg = by_name.get(mname)
        fl = next((x for x in msg.fields if x.name == fname), None) if msg else None
        if fl is None or fl.kind not in ("byte", "int8"):
            raise GrammarError("check on unknown or non-byte field %s.%s" % (mname, fname))
        fl.check = (vals, state, text)
    return messages


# ---------------------------------------------------------------- C types

def c_type(fl):
    return {
        "int8": "uint8_t", "byte": "uint8_t", "int16": "int16_t", "int32": "int32_t",
        "format": "int16_t", "string": "pgw_str", "bytes": "pgw_bytes", "value": "pgw_value",
        "rest": "pgw_bytes", "fields": "pgw_array", "pairs": "pgw_array",
        "strlist": "pgw_array", "array": "pgw_array",
    }[fl.kind]


def gen_header(messages):
    o = []
    o.append("/* Generated from grammar/messages.pgw by gen/pgw_gen.py. Do not edit. */")
    o.append("#ifndef PGW_MESSAGES_H\n#define PGW_MESSAGES_H\n")
    o.append("typedef enum pgw_msg_id {\n\tPGW_MSG_NONE = 0,")
    for m in messages:
        o.append("\t%s," % m.id)
    o.append("\tPGW_MSG_DIRECT_TLS,  /* a TLS ClientHello where a startup packet was due */")
    o.append("\tPGW_MSG_SSL_ANSWER,  /* the single byte answering SSLRequest/GSSENCRequest */")
    o.append("\tPGW_MSG_COUNT\n} pgw_msg_id;\n")
    for m in messages:
        for fl in m.fields:
            if fl.is_record_array:
                o.append("typedef struct pgw_%s_%s {" % (m.cname, fl.name))
                for sub in fl.item:
                    o.append("\t%s %s;" % (c_type(sub), sub.name))
                o.append("} pgw_%s_%s;\n" % (m.cname, fl.name))
        if m.fields:
            o.append("typedef struct pgw_%s {" % m.cname)
            for fl in m.fields:
                o.append("\t%s %s;" % (c_type(fl), fl.name))
            o.append("} pgw_%s;\n" % m.cname)
    o.append("typedef struct pgw_ssl_answer {\n\tuint8_t answer;\n} pgw_ssl_answer;\n")
    o.append("typedef union pgw_msg_body {")
    for m in messages:
        if m.fields:
            o.append("\tpgw_%s %s;" % (m.cname, m.cname))
    o.append("\tpgw_ssl_answer ssl_answer;")
    o.append("} pgw_msg_body;\n")
    o.append("struct pgw_wbuf;")
    for m in messages:
        if m.fields:
            o.append("bool pgw_encode_%s(struct pgw_wbuf *w, const pgw_%s *m);" % (m.cname, m.cname))
        else:
            o.append("bool pgw_encode_%s(struct pgw_wbuf *w);" % m.cname)
        for fl in m.fields:
            if fl.is_record_array:
                o.append("bool pgw_next_%s_%s(pgw_iter *it, pgw_%s_%s *out);" % (m.cname, fl.name, m.cname, fl.name))
                o.append("void pgw_w_%s_%s(struct pgw_wbuf *w, const pgw_%s_%s *item);" % (m.cname, fl.name, m.cname, fl.name))
    o.append("/* Encode any message from its id and view. */")
    o.append("bool pgw_encode(struct pgw_wbuf *w, pgw_msg_id id, const pgw_msg_body *body);")
    o.append("\n#endif")
    return "\n".join(o) + "\n"


# ---------------------------------------------------------------- Ragel

def first_at(fl):
    if fl.kind in ("int8", "byte", "fields"):
        return AT_BYTE
    if fl.kind in ("string", "pairs", "strlist"):
        return AT_STRING
    if fl.kind == "rest":
        return AT_END
    return AT_INT


def seq_first_at(fields, tag):
    if tag is not None:
        return AT_INT
    return first_at(fields[0]) if fields else AT_END


class RagelWriter:
    """Emits one message's machine: main plus one sub-machine per array of
    variable-size items (entered with fcall, left with fret)."""

    def __init__(self, msg):
        self.msg = msg
        self.subs = []

    def done(self, nxt):
        return "at = %s; mark = p + 1;" % AT_NAME[nxt]

    def scalar(self, fl, dst, nxt):
        n = SCALARS[fl.kind]
        rd = {1: "*p", 2: "rd16(p - 1)", 4: "rd32(p - 3)"}[n]
        cast = {"int8": "", "byte": "", "int16": "(int16_t)", "format": "(int16_t)", "int32": "(int32_t)"}[fl.kind]
        return "any{%d} @{ %s = %s%s; %s }" % (n, dst, cast, rd, self.done(nxt)) if n > 1 else \
            "any @{ %s = %s; %s }" % (dst, rd, self.done(nxt))

    # A string is one transition: its first byte jumps to the terminator
    # found by memchr, which beats a byte-at-a-time loop on long queries.
    STRING_SKIP = ("const uint8_t *nul = memchr(p, 0, (size_t)(pe - p)); "
                   "if (!nul) { at = PGW_AT_STRING; bad = 1; fbreak; } p = nul; ")

    def string(self, dst, nxt):
        return "any @{ %s%s.ptr = mark; %s.len = (uint32_t)(p - mark); %s }" % (
            self.STRING_SKIP, dst, dst, self.done(nxt))

    def value(self, dst, nxt):
        return ("any{4} @{ int32_t vl = (int32_t)rd32(p - 3); "
                "if (vl < -1 || vl > pe - p - 1) { at = PGW_AT_INT; bad = 1; fbreak; } "
                "%s.ptr = p + 1; %s.len = vl; if (vl > 0) p += vl; %s }" % (dst, dst, self.done(nxt)))

    def field(self, fl, nxt, idx):
        dst = "m->" + fl.name
        k = fl.kind
        if k in SCALARS:
            return self.scalar(fl, dst, nxt)
        if k == "string":
            return self.string(dst, nxt)
        if k == "value":
            return self.value(dst, nxt)
        if k == "bytes":
            return "any{%d} @{ %s.ptr = mark; %s.len = %d; %s }" % (fl.size, dst, dst, fl.size, self.done(nxt))
        if k == "fields":
            return ("( (any - 0) @{ at = PGW_AT_STRING; } (any - 0)* 0 @{ %s.count++; at = PGW_AT_BYTE; } )* "
                    "0 @{ %s.ptr = mark; %s.size = (uint32_t)(p - mark); %s }"
                    % (dst, dst, dst, self.done(nxt)))
        if k == "pairs":
            return ("( (any - 0)+ 0 (any - 0)* 0 @{ %s.count++; } )* "
                    "0 @{ %s.ptr = mark; %s.size = (uint32_t)(p - mark); %s }"
                    % (dst, dst, dst, self.done(nxt)))
        if k == "strlist":
            return ("( (any - 0)+ 0 @{ %s.count++; } )* "
                    "0 @{ %s.ptr = mark; %s.size = (uint32_t)(p - mark); %s }"
                    % (dst, dst, dst, self.done(nxt)))
        if k == "array":
            return self.array(fl, dst, nxt)
        raise GrammarError("no Ragel for %s" % k)

    def array(self, fl, dst, nxt):
        nb = fl.count_bits // 8
        rd = "rd16(p - 1)" if nb == 2 else "rd32(p - 3)"
        head = "any{%d} @{ left = %s; %s.count = left; %s.ptr = p + 1; " % (nb, rd, dst, dst)
        fixed = fl.fixed_item_size
        if fixed:
            return head + ("if ((int64_t)left * %d > pe - p - 1) { at = PGW_AT_INT; bad = 1; fbreak; } "
                           "%s.size = left * %d; p += %s.size; %s }" % (fixed, dst, fixed, dst, self.done(nxt)))
        sub = "%s_items" % fl.name
        items = fl.item if fl.is_record_array else [fl.item]
        item_first = first_at(items[0])
        parts = []
        for i, sf in enumerate(items):
            last = i == len(items) - 1
            after = item_first  # provisional; the item's last action decides
            sdst = "item_scratch" if True else None
            if sf.kind in SCALARS:
                n = SCALARS[sf.kind]
                expr = "any{%d}" % n if n > 1 else "any"
                act = "" if last else self.done(first_at(items[i + 1]))
            elif sf.kind == "string":
                expr = "any"
                act = self.STRING_SKIP + ("" if last else self.done(first_at(items[i + 1])))
            elif sf.kind == "value":
                expr = "any{4}"
                act = ("int32_t vl = (int32_t)rd32(p - 3); "
                       "if (vl < -1 || vl > pe - p - 1) { at = PGW_AT_INT; bad = 1; fbreak; } "
                       "if (vl > 0) p += vl; ")
                if not last:
                    act += self.done(first_at(items[i + 1]))
            else:
                raise GrammarError("array item %s" % sf.kind)
            del after, sdst
            if last:
                act += ("if (--left == 0) { %s.size = (uint32_t)(p + 1 - %s.ptr); %s fret; } %s"
                        % (dst, dst, self.done(nxt), self.done(item_first)))
            parts.append("%s @{ %s }" % (expr, act) if act.strip() else expr)
        self.subs.append("%s := ( %s )*;" % (sub, " ".join(parts)))
        return head + ("at = %s; if (left > 0) fcall %s; %s.size = 0; %s }"
                       % (AT_NAME[item_first], sub, dst, self.done(nxt)))

    def machine(self):
        """The pieces of main, in order. A trailing rest field is not read
        byte by byte: the piece before it jumps to the end in one step."""
        m = self.msg
        fields = m.fields
        pieces = []
        if m.tag is not None and m.tag != "*":
            b = struct.pack(">I", m.tag)
            nxt = seq_first_at(fields, None)
            pieces.append("%s @{ %s }" % (" ".join(str(x) for x in b), self.done(nxt)))
        for i, fl in enumerate(fields):
            if fl.kind == "rest":
                dst = "m->" + fl.name
                pieces[-1] = pieces[-1][:-1] + (
                    " %s.ptr = p + 1; %s.len = (uint32_t)(pe - p - 1); p = pe - 1; }" % (dst, dst))
                continue
            nxt_field = fields[i + 1] if i + 1 < len(fields) else None
            nxt = first_at(nxt_field) if nxt_field is not None else AT_END
            pieces.append(self.field(fl, nxt, i))
        return pieces


def ragel_needed(m):
    structured = [f for f in m.fields if f.kind != "rest"]
    return bool(structured) or (m.tag not in (None, "*"))


def semantic_checks(m, indent="\t"):
    o = []
    for fl in m.fields:
        if fl.check:
            vals, state, text = fl.check
            cond = " && ".join("m->%s != %d" % (fl.name, v) for v in vals)
            o.append('%sif (%s) return pgw_fail(err, "%s", "%s", m->%s);' % (indent, cond, state, text, fl.name))
        if fl.kind == "format":
            o.append('%sif (m->%s != 0 && m->%s != 1) return pgw_fail(err, "22023", "unsupported format code: %%d", m->%s);'
                     % (indent, fl.name, fl.name, fl.name))
        if fl.kind == "array" and not fl.is_record_array and fl.item.kind == "format":
            o.append("%sfor (uint32_t i = 0; i < m->%s.count; i++) {" % (indent, fl.name))
            o.append("%s\tint16_t f = pgw_array_i16(&m->%s, i);" % (indent, fl.name))
            o.append('%s\tif (f != 0 && f != 1) return pgw_fail(err, "22023", "unsupported format code: %%d", f);' % indent)
            o.append("%s}" % indent)
        if fl.is_record_array:
            for sf in fl.item:
                if sf.kind == "format":
                    o.append("%s{" % indent)
                    o.append("%s\tpgw_iter it = pgw_array_iter(&m->%s);" % (indent, fl.name))
                    o.append("%s\tpgw_%s_%s item;" % (indent, m.cname, fl.name))
                    o.append("%s\twhile (pgw_next_%s_%s(&it, &item))" % (indent, m.cname, fl.name))
                    o.append('%s\t\tif (item.%s != 0 && item.%s != 1) return pgw_fail(err, "22023", "unsupported format code: %%d", item.%s);'
                             % (indent, sf.name, sf.name, sf.name))
                    o.append("%s}" % indent)
        if fl.kind == "rest" and (fl.rmin or fl.rmax is not None):
            conds = []
            if fl.rmin:
                conds.append("m->%s.len < %d" % (fl.name, fl.rmin))
            if fl.rmax is not None:
                conds.append("m->%s.len > %d" % (fl.name, fl.rmax))
            o.append('%sif (%s) return pgw_fail(err, "08P01", "invalid message format");' % (indent, " || ".join(conds)))
    return o


def gen_ragel(messages):
    o = []
    o.append("/* Generated from grammar/messages.pgw by gen/pgw_gen.py. Do not edit. */")
    o.append('#include "codec_internal.h"\n')
    for m in messages:
        has_fields = bool(m.fields)
        sig = "static pgw_status body_%s(const uint8_t *p, const uint8_t *pe, pgw_msg_body *out, pgw_error *err)" % m.cname
        o.append(sig + "\n{")
        if has_fields:
            o.append("\tpgw_%s *m = &out->%s;" % (m.cname, m.cname))
            o.append("\tmemset(m, 0, sizeof *m);")
        else:
            o.append("\t(void)out;")
        if not ragel_needed(m):
            if has_fields:  # a single rest field
                fl = m.fields[0]
                o.append("\t(void)err;")
                o.append("\tm->%s.ptr = p;\n\tm->%s.len = (uint32_t)(pe - p);" % (fl.name, fl.name))
                o.extend(semantic_checks(m))
                o.append("\treturn PGW_OK;\n}\n")
            else:
                o.append("\tif (p != pe)\n\t\treturn pgw_fail_at(err, PGW_AT_END);")
                o.append("\treturn PGW_OK;\n}\n")
            continue
        w = RagelWriter(m)
        pieces = w.machine()
        o.append("\tconst uint8_t *eof = pe;")
        o.append("\tconst uint8_t *mark = p;")
        o.append("\tuint32_t left = 0;")
        o.append("\tint cs, top = 0, stack[1], bad = 0;")
        o.append("\tint at = %s;" % AT_NAME[seq_first_at(m.fields, m.tag if m.tag != "*" else None)])
        o.append("\t(void)eof; (void)mark; (void)left; (void)top; (void)stack;")
        o.append("\t%%{")
        o.append("\t\tmachine pgw_%s;" % m.cname)
        o.append("\t\talphtype unsigned char;")
        for s in w.subs:
            o.append("\t\t" + s)
        o.append("\t\tmain := %s;" % " ".join(pieces))
        o.append("\t\twrite data noerror nofinal noentry;")
        o.append("\t\twrite init;")
        o.append("\t\twrite exec;")
        o.append("\t}%%")
        o.append("\tif (bad || top != 0 || cs < %%{ write first_final; }%% || p != pe)")
        o.append("\t\treturn pgw_fail_at(err, at);")
        o.extend(semantic_checks(m))
        o.append("\treturn PGW_OK;\n}\n")

    # Body dispatch.
    o.append("pgw_status pgw_decode_body(pgw_msg_id id, const uint8_t *body, size_t len, pgw_msg_body *out, pgw_error *err)\n{")
    o.append("\tswitch (id) {")
    for m in messages:
        o.append("\tcase %s:\n\t\treturn body_%s(body, body + len, out, err);" % (m.id, m.cname))
    o.append("\tdefault:\n\t\treturn pgw_fail(err, \"XX000\", \"no decoder for message %d\", (int)id);\n\t}\n}\n")

    # Names.
    o.append("static const char *const msg_names[PGW_MSG_COUNT] = {\n\t[PGW_MSG_NONE] = \"none\",")
    for m in messages:
        o.append('\t[%s] = "%s",' % (m.id, m.name))
    o.append('\t[PGW_MSG_DIRECT_TLS] = "DirectTLS",\n\t[PGW_MSG_SSL_ANSWER] = "SSLAnswer",\n};\n')
    o.append("const char *pgw_msg_name(pgw_msg_id id)\n{\n\treturn (unsigned)id < PGW_MSG_COUNT && msg_names[id] ? msg_names[id] : \"unknown\";\n}\n")

    # Framing tables: type byte -> message and limit, per direction.
    def table(name, pred):
        o.append("const pgw_frame_rule %s[256] = {" % name)
        for m in messages:
            if pred(m) and m.tag is None and m.phase is None:
                o.append("\t['%s'] = {%s, %s}," % (chr(m.type_byte).replace("'", "\\'"), m.id, LIMITS[m.limit]))
        tagged = {}
        for m in messages:
            if pred(m) and m.tag is not None and m.type_byte is not None:
                tagged.setdefault(m.type_byte, m)
        for tb, m in tagged.items():
            o.append("\t['%s'] = {PGW_MSG_NONE, %s}, /* told apart by a leading Int32 */" % (chr(tb), LIMITS[m.limit]))
        o.append("};\n")
    table("pgw_frontend_rules", lambda m: m.direction in ("F", "FB"))
    table("pgw_backend_rules", lambda m: m.direction in ("B", "FB"))

    # Tag dispatch ('R' subtypes and startup codes).
    def tag_fn(name, pred):
        o.append("pgw_msg_id %s(int32_t tag)\n{\n\tswitch (tag) {" % name)
        default = "PGW_MSG_NONE"
        for m in messages:
            if pred(m):
                if m.tag == "*":
                    default = m.id
                else:
                    o.append("\tcase %d:\n\t\treturn %s;" % (m.tag, m.id))
        o.append("\tdefault:\n\t\treturn %s;\n\t}\n}\n" % default)
    tag_fn("pgw_auth_request_id", lambda m: m.direction == "B" and m.type_byte == ord("R"))
    tag_fn("pgw_startup_packet_id", lambda m: m.startup)

    o.append("pgw_msg_id pgw_password_message_id(pgw_phase phase)\n{\n\tswitch (phase) {")
    for m in messages:
        if m.phase:
            o.append("\tcase %s:\n\t\treturn %s;" % (PHASES[m.phase], m.id))
    o.append("\tdefault:\n\t\treturn PGW_MSG_NONE;\n\t}\n}\n")

    # Record iterators.
    for m in messages:
        for fl in m.fields:
            if not fl.is_record_array:
                continue
            o.append("bool pgw_next_%s_%s(pgw_iter *it, pgw_%s_%s *out)\n{" % (m.cname, fl.name, m.cname, fl.name))
            o.append("\tconst uint8_t *p = it->p;\n\tif (p >= it->end)\n\t\treturn false;")
            for sf in fl.item:
                if sf.kind == "string":
                    o.append("\tout->%s.ptr = p;\n\tout->%s.len = (uint32_t)strlen((const char *)p);\n\tp += out->%s.len + 1;" % (sf.name, sf.name, sf.name))
                elif sf.kind == "value":
                    o.append("\tout->%s.len = (int32_t)rd32(p);\n\tout->%s.ptr = p + 4;\n\tp += 4 + (out->%s.len > 0 ? out->%s.len : 0);" % (sf.name, sf.name, sf.name, sf.name))
                else:
                    n = SCALARS[sf.kind]
                    rd = {1: "*p", 2: "(int16_t)rd16(p)", 4: "(int32_t)rd32(p)"}[n]
                    o.append("\tout->%s = %s;\n\tp += %d;" % (sf.name, rd, n))
            o.append("\tit->p = p;\n\treturn true;\n}\n")
    return "\n".join(o) + "\n"


# ---------------------------------------------------------------- encoders

def gen_encoders(messages):
    o = []
    o.append("/* Generated from grammar/messages.pgw by gen/pgw_gen.py. Do not edit. */")
    o.append('#include "codec_internal.h"\n')

    def put(fl, src, ind="\t"):
        k = fl.kind
        if k in ("int8", "byte"):
            return ["%spgw_w_u8(w, %s);" % (ind, src)]
        if k in ("int16", "format"):
            return ["%spgw_w_i16(w, %s);" % (ind, src)]
        if k == "int32":
            return ["%spgw_w_i32(w, %s);" % (ind, src)]
        if k == "string":
            return ["%spgw_w_cstr(w, %s.ptr, %s.len);" % (ind, src, src)]
        if k in ("bytes", "rest"):
            return ["%spgw_w_bytes(w, %s.ptr, %s.len);" % (ind, src, src)]
        if k == "value":
            return ["%spgw_w_value(w, %s.ptr, %s.len);" % (ind, src, src)]
        if k in ("fields", "pairs", "strlist"):
            return ["%spgw_w_bytes(w, %s.ptr, %s.size);" % (ind, src, src), "%spgw_w_u8(w, 0);" % ind]
        if k == "array":
            cnt = ("%spgw_w_i16(w, (int16_t)%s.count);" if fl.count_bits == 16 else "%spgw_w_i32(w, (int32_t)%s.count);") % (ind, src)
            return [cnt, "%spgw_w_bytes(w, %s.ptr, %s.size);" % (ind, src, src)]
        raise GrammarError(k)

    for m in messages:
        if m.fields:
            o.append("bool pgw_encode_%s(pgw_wbuf *w, const pgw_%s *m)\n{" % (m.cname, m.cname))
        else:
            o.append("bool pgw_encode_%s(pgw_wbuf *w)\n{" % m.cname)
        o.append("\tsize_t at = pgw_w_begin(w, %s);" % ("0" if m.type_byte is None else "'%s'" % chr(m.type_byte)))
        if m.tag not in (None, "*"):
            o.append("\tpgw_w_i32(w, %d);" % m.tag)
        for fl in m.fields:
            o.extend(put(fl, "m->" + fl.name))
        o.append("\treturn pgw_w_end(w, at);\n}\n")
        for fl in m.fields:
            if fl.is_record_array:
                o.append("void pgw_w_%s_%s(pgw_wbuf *w, const pgw_%s_%s *item)\n{" % (m.cname, fl.name, m.cname, fl.name))
                for sf in fl.item:
                    o.extend(put(sf, "item->" + sf.name))
                o.append("}\n")
    o.append("bool pgw_encode(pgw_wbuf *w, pgw_msg_id id, const pgw_msg_body *body)\n{")
    o.append("\tswitch (id) {")
    for m in messages:
        arg = "w, &body->%s" % m.cname if m.fields else "w"
        o.append("\tcase %s:\n\t\treturn pgw_encode_%s(%s);" % (m.id, m.cname, arg))
    o.append("\tdefault:\n\t\t(void)body;\n\t\treturn false;\n\t}\n}")
    return "\n".join(o) + "\n"


# ---------------------------------------------------------------- vectors
#
# A sample of each message is laid out byte by byte with, for each offset,
# the error class a decoder must report if the body ends there. The
# invalid vectors follow from that map, so the expectations come from the
# grammar, not from the decoder under test.

class Sample:
    def __init__(self):
        self.data = bytearray()
        self.cut = []       # cut[i]: error class if the body ends at i
        self.patches = []   # (description, offset, new bytes, sqlstate, text)

    def add(self, bs, at_first, at_rest=None):
        for i, b in enumerate(bs):
            self.cut.append(at_first if i == 0 else (at_rest if at_rest is not None else at_first))
            self.data.append(b)


def sample_scalar(fl, s, name, idx):
    n = SCALARS[fl.kind]
    if fl.kind == "format":
        v = 1
        s.patches.append(("%s=2" % name, len(s.data), struct.pack(">h", 2), "22023", "unsupported format code: 2"))
    elif fl.check:
        v = fl.check[0][idx % len(fl.check[0])]
        bad = 88 if 88 not in fl.check[0] else 89
        s.patches.append(("%s=%d" % (name, bad), len(s.data), bytes([bad]), fl.check[1], fl.check[2].replace("%d", str(bad))))
    elif fl.kind in ("int8", "byte"):
        v = 0x41 + idx
    elif fl.kind == "int16":
        v = 0x0102 + idx
    else:
        v = 0x01020304 + idx
    fmt = {1: ">B", 2: ">h" if v < 0x8000 else ">H", 4: ">i"}[n]
    s.add(struct.pack(fmt, v), AT_BYTE if n == 1 else AT_INT)


def sample_field(fl, s, idx=0, last=False):
    k = fl.kind
    if k in SCALARS:
        sample_scalar(fl, s, fl.name, idx)
    elif k == "string":
        s.add(("%s%d" % (fl.name, idx)).encode() + b"\0", AT_STRING)
    elif k == "bytes":
        s.add(bytes(range(0xA0, 0xA0 + fl.size)), AT_INT)
    elif k == "value":
        v = b"v%d\x00\xff" % idx
        off = len(s.data)
        s.add(struct.pack(">i", len(v)), AT_INT)
        s.add(v, AT_INT)
        s.patches.append(("%s.len=-2" % fl.name, off, struct.pack(">i", -2), "08P01", AT_TEXT[AT_INT]))
    elif k == "rest":
        size = max(fl.rmin, min(8, fl.rmax if fl.rmax is not None else 8))
        if fl.rmax is not None and fl.rmax >= 32 and fl.rmin <= 32:
            size = 32
        s.add(bytes((0x30 + i) & 0xff for i in range(size)), None)
    elif k == "fields":
        for code, text in ((b"S", b"ERROR"), (b"C", b"42601"), (b"M", b"syntax error")):
            s.add(code, AT_BYTE)
            s.add(text + b"\0", AT_STRING)
        s.add(b"\0", AT_BYTE)
    elif k == "pairs":
        s.add(b"user\0alice\0database\0db1\0", AT_STRING)
        s.add(b"\0", AT_STRING)
    elif k == "strlist":
        s.add(b"SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0", AT_STRING)
        s.add(b"\0", AT_STRING)
    elif k == "array":
        items = fl.item if fl.is_record_array else [fl.item]
        nitems = 2
        count_fmt = ">H" if fl.count_bits == 16 else ">I"
        count_off = len(s.data)
        s.add(struct.pack(count_fmt, nitems), AT_INT)
        for i in range(nitems):
            for sf in items:
                sample_field(sf, s, i)
        # One item more than there is: when nothing follows the array, the
        # decoder runs out where the next item would start.
        more = first_at(items[0])
        if last:
            s.patches.append(("%s.count+1" % fl.name, count_off, struct.pack(count_fmt, nitems + 1),
                              "08P01", AT_TEXT[more] if fl.fixed_item_size is None else AT_TEXT[AT_INT]))
    else:
        raise GrammarError(k)


def frame(m, body):
    if m.type_byte is None:
        return struct.pack(">I", len(body) + 4) + body
    return bytes([m.type_byte]) + struct.pack(">I", len(body) + 4) + body


def message_sample(m):
    s = Sample()
    if m.tag not in (None, "*"):
        s.add(struct.pack(">I", m.tag), AT_INT)
    elif m.tag == "*":
        pass
    for i, fl in enumerate(m.fields):
        if m.startup and fl.name == "protocol":
            s.add(struct.pack(">I", 196610), AT_INT)
            continue
        sample_field(fl, s, i, last=i == len(m.fields) - 1)
    return s


def c_bytes(bs):
    return "".join("\\x%02x" % b for b in bs)


def expected_startup_error(m, body):
    """The answer PostgreSQL gives a malformed startup packet."""
    if m.name == "StartupMessage":
        return ("PGW_SEV_FATAL", "08P01", "invalid startup packet layout: expected terminator as last byte")
    if m.name == "CancelRequest":
        return ("PGW_SEV_COMMERROR", "08P01", "invalid length of cancel request packet")
    return ("PGW_SEV_COMMERROR", "08P01", "invalid length of startup packet")


def gen_vectors(messages, seeds_dir):
    vecs = []   # (name, id, dir, phase, bytes, ok, sev, state, text)

    def phases_of(m):
        if m.startup:
            return [("PGW_FRONTEND", "PGW_PH_STARTUP")]
        out = []
        if m.direction in ("F", "FB"):
            out.append(("PGW_FRONTEND", PHASES[m.phase] if m.phase else "PGW_PH_READY"))
        if m.direction in ("B", "FB"):
            out.append(("PGW_BACKEND", "PGW_PH_BACKEND"))
        return out

    for m in messages:
        s = message_sample(m)
        body = bytes(s.data)
        last_rest = m.fields and m.fields[-1].kind == "rest"
        rest_field = m.fields[-1] if last_rest else None
        rest_start = len(body) - (len([c for c in s.cut if c is None]) if last_rest else 0)
        for d, ph in phases_of(m):
            tag = "%s/%s" % (m.name, "fe" if d == "PGW_FRONTEND" else "be")
            vecs.append((tag + "/valid", m.id, d, ph, frame(m, body), True, None, None, None))
            # Every truncation of the body.
            for k in range(len(body)):
                if m.startup and k < 4:
                    continue  # too short to be a startup packet at all: a framing case
                cut_body = body[:k]
                if last_rest and k >= rest_start:
                    n = k - rest_start
                    if n >= rest_field.rmin:
                        vecs.append(("%s/short-rest@%d" % (tag, k), m.id, d, ph, frame(m, cut_body), True, None, None, None))
                        continue
                    err = ("PGW_SEV_ERROR", "08P01", AT_TEXT[AT_END])
                else:
                    err = ("PGW_SEV_ERROR", "08P01", AT_TEXT[s.cut[k]])
                if m.startup:
                    err = expected_startup_error(m, cut_body)
                vecs.append(("%s/truncated@%d" % (tag, k), m.id, d, ph, frame(m, cut_body), False) + err)
            # One byte too many.
            longer = body + b"\x00"
            if last_rest:
                ok = rest_field.rmax is None or len(longer) - rest_start <= rest_field.rmax
                if ok:
                    vecs.append((tag + "/longer-rest", m.id, d, ph, frame(m, longer), True, None, None, None))
                else:
                    err = expected_startup_error(m, longer) if m.startup else ("PGW_SEV_ERROR", "08P01", AT_TEXT[AT_END])
                    vecs.append((tag + "/trailing", m.id, d, ph, frame(m, longer), False) + err)
            else:
                err = expected_startup_error(m, longer) if m.startup else ("PGW_SEV_ERROR", "08P01", AT_TEXT[AT_END])
                vecs.append((tag + "/trailing", m.id, d, ph, frame(m, longer), False) + err)
            # Values that break a rule.
            for desc, off, new, state, text in s.patches:
                bad = bytearray(body)
                bad[off:off + len(new)] = new
                sev = "PGW_SEV_ERROR"
                if m.startup:
                    sev, state, text = expected_startup_error(m, bytes(bad))
                vecs.append(("%s/%s" % (tag, desc), m.id, d, ph, frame(m, bytes(bad)), False, sev, state, text))

    o = ["/* Generated from grammar/messages.pgw by gen/pgw_gen.py. Do not edit. */",
         '#include "pgw_vectors.h"\n', "const pgw_vector pgw_vectors[] = {"]
    for name, mid, d, ph, bs, ok, sev, state, text in vecs:
        o.append('\t{"%s", %s, %s, %s, (const uint8_t *)"%s", %d, %s, %s, %s, %s},' % (
            name, mid, d, ph, c_bytes(bs), len(bs), "true" if ok else "false",
            sev or "PGW_SEV_ERROR", '"%s"' % state if state else "NULL", '"%s"' % text if text else "NULL"))
    o.append("};\nconst size_t pgw_vector_count = sizeof pgw_vectors / sizeof pgw_vectors[0];")

    # Seed corpora: one file per valid message, in the form each fuzz
    # target reads (see fuzz/).
    if seeds_dir:
        for sub in ("frontend", "backend", "startup", "roundtrip"):
            os.makedirs(os.path.join(seeds_dir, sub), exist_ok=True)
        for i, (name, mid, d, ph, bs, ok, *_r) in enumerate(vecs):
            if not ok or "/short-rest" in name or "/longer-rest" in name:
                continue
            fn = re.sub(r"[^A-Za-z0-9]+", "-", name)
            if ph == "PGW_PH_STARTUP":
                targets = ["startup"]
            elif d == "PGW_FRONTEND":
                targets = ["frontend"]
            else:
                targets = ["backend"]
            for t in targets:
                with open(os.path.join(seeds_dir, t, fn), "wb") as f:
                    f.write(phase_prefix(ph) + bs)
            msg_index = [x.id for x in messages].index(mid)
            with open(os.path.join(seeds_dir, "roundtrip", fn), "wb") as f:
                f.write(bytes([msg_index + 1]) + (bs[4:] if ph == "PGW_PH_STARTUP" else bs[5:]))
    return "\n".join(o) + "\n"


PHASE_ORDER = ["PGW_PH_STARTUP", "PGW_PH_AUTH_PASSWORD", "PGW_PH_AUTH_SASL_INITIAL",
               "PGW_PH_AUTH_SASL", "PGW_PH_AUTH_GSS", "PGW_PH_READY", "PGW_PH_COPY_IN",
               "PGW_PH_SSL_ANSWER", "PGW_PH_GSSENC_ANSWER", "PGW_PH_BACKEND"]


def phase_prefix(ph):
    """Stream fuzz inputs start with one byte naming the decoder's phase."""
    return bytes([PHASE_ORDER.index(ph)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("grammar")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds")
    a = ap.parse_args()
    try:
        messages = parse_grammar(a.grammar)
    except GrammarError as e:
        print("pgw_gen: %s" % e, file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    outputs = {
        "pgw_messages.h": gen_header(messages),
        "pgw_bodies.rl": gen_ragel(messages),
        "pgw_encode.c": gen_encoders(messages),
        "pgw_vectors.c": gen_vectors(messages, a.seeds),
    }
    for name, text in outputs.items():
        path = os.path.join(a.out, name)
        old = None
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
        if old != text:
            with open(path, "w") as f:
                f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
