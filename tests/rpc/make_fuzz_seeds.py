#!/usr/bin/python3
# Writes the committed seed corpus fuzz/seeds/rpc_frames for fuzz_rpc_frames:
# HTTP/2 frames a gRPC client sends after its preface (byte 0 even), and
# 5-byte-prefixed messages for the reassembler (byte 0 odd).
#   tests/rpc/make_fuzz_seeds.py fuzz/seeds/rpc_frames
import os
import struct
import sys

PATH = "/multipoolerservice.MultiPoolerService/"


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack(headers):
    # Literal header fields without indexing, no Huffman coding.
    out = b""
    for n, v in headers:
        out += b"\x00" + bytes([len(n)]) + n.encode() + bytes([len(v)]) + v.encode()
    return out


def request(sid, method, ctype="application/grpc", timeout=None):
    h = [(":method", "POST"), (":scheme", "http"), (":path", PATH + method),
         (":authority", "x"), ("content-type", ctype), ("te", "trailers")]
    if timeout:
        h.append(("grpc-timeout", timeout))
    return frame(1, 0x4, sid, hpack(h))


def msg(body, flag=0):
    return bytes([flag]) + struct.pack(">I", len(body)) + body


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    q = b"\x0a\x08select 1"
    seeds = {
        "unary": request(1, "ExecuteQuery") + frame(0, 1, 1, msg(q)),
        "unary_split": request(1, "ExecuteQuery") + frame(0, 0, 1, msg(q)[:3]) + frame(0, 1, 1, msg(q)[3:]),
        "two_streams": request(1, "ExecuteQuery", timeout="100m") + request(3, "CopyBidiExecute")
        + frame(0, 0, 3, msg(b"\x08\x01\x32\x03abc")) + frame(0, 1, 1, msg(q)) + frame(3, 0, 3, b"\x00\x00\x00\x08"),
        "unknown": request(1, "Nope") + frame(0, 1, 1, msg(q)),
        "bad_ctype": request(1, "ExecuteQuery", ctype="text/plain") + frame(0, 1, 1, msg(q)),
        "compressed": request(1, "ExecuteQuery") + frame(0, 1, 1, msg(q, flag=1)),
        "oversize": request(1, "ExecuteQuery") + frame(0, 1, 1, b"\x00\xff\xff\xff\xff"),
        "ping_window": frame(6, 0, 0, b"12345678") + frame(8, 0, 0, b"\x00\x01\x00\x00")
        + request(1, "ExecuteQuery") + frame(0, 1, 1, msg(b"\xff\xff")),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"\x00" + data)
    reasm = msg(q) + msg(b"") + msg(b"\x22\x03abc")
    for chunk in (0, 1, 7, 255):
        with open(os.path.join(out, "reasm_%d" % chunk), "wb") as f:
            f.write(bytes([chunk * 2 + 1 & 0xFF]) + reasm)


main()
