#!/usr/bin/python3
"""A stand-in for multigateway, to validate the harness and bench/pgbench.sh
before the real gateway exists:

    PGW_GATEWAY=tests/integration/fake_gateway.py /usr/bin/python3 tests/integration/run.py

It accepts the gateway's command line, listens on TCP (and on
DIR/.s.PGSQL.PORT with --socket-dir) and splices every client connection
byte for byte to its own backend connection. There is NO pooling: each client
gets its own PostgreSQL connection, --pool-* flags are accepted and ignored.
So the tests that check pooling (backend count limits, pool timeout) are
expected to fail against it; everything else should pass. SSLRequest and
CancelRequest are forwarded as-is (PostgreSQL answers 'N' / cancels).
Stops on SIGTERM/SIGINT with exit status 0; bad flags: one line, exit 2.
"""
import argparse
import asyncio
import os
import signal
import sys


class ArgParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write("fake_gateway: %s\n" % message)
        sys.exit(2)


def parse_backend(s):
    kv = {}
    for part in s.split():
        if "=" not in part:
            raise ValueError("bad --backend item %r" % part)
        k, v = part.split("=", 1)
        kv[k] = v
    if "host" not in kv or "port" not in kv:
        raise ValueError("--backend needs host= and port=")
    return kv["host"], int(kv["port"])


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def handle(creader, cwriter, backend):
    try:
        if backend[0].startswith("/"):
            breader, bwriter = await asyncio.open_unix_connection(
                os.path.join(backend[0], ".s.PGSQL.%d" % backend[1]))
        else:
            breader, bwriter = await asyncio.open_connection(*backend)
    except OSError as e:
        sys.stderr.write("fake_gateway: backend connect failed: %s\n" % e)
        cwriter.close()
        return
    t1 = asyncio.ensure_future(pipe(creader, bwriter))
    t2 = asyncio.ensure_future(pipe(breader, cwriter))
    await asyncio.wait([t1, t2], return_when=asyncio.FIRST_COMPLETED)
    # one side closed: give the other direction a moment, then close both
    await asyncio.wait([t1, t2], timeout=1.0)
    for t in (t1, t2):
        t.cancel()
    for w in (bwriter, cwriter):
        try:
            w.close()
        except OSError:
            pass


async def main_async(args, backend):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, _, port = args.listen.rpartition(":")
    port = int(port)

    def cb(r, w):
        return handle(r, w, backend)
    servers = [await asyncio.start_server(cb, host or "127.0.0.1", port, backlog=4096)]
    sock_path = None
    if args.socket_dir:
        sock_path = os.path.join(args.socket_dir, ".s.PGSQL.%d" % port)
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        servers.append(await asyncio.start_unix_server(cb, sock_path, backlog=4096))
        os.chmod(sock_path, 0o777)
    sys.stderr.write("fake_gateway: listening on %s (socket %s), backend %s:%d, NO pooling\n"
                     % (args.listen, sock_path, backend[0], backend[1]))
    sys.stderr.flush()
    await stop.wait()
    for s in servers:
        s.close()
    if sock_path and os.path.exists(sock_path):
        os.unlink(sock_path)
    sys.stderr.write("fake_gateway: stopped\n")


def main():
    ap = ArgParser(prog="fake_gateway", add_help=True)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--socket-dir")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--pool-size", type=int)
    ap.add_argument("--pool-mode", choices=["transaction", "session"])
    ap.add_argument("--pool-timeout", type=float)
    args = ap.parse_args()
    try:
        backend = parse_backend(args.backend)
        if ":" not in args.listen:
            raise ValueError("--listen wants HOST:PORT")
    except ValueError as e:
        sys.stderr.write("fake_gateway: %s\n" % e)
        return 2
    asyncio.run(main_async(args, backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
