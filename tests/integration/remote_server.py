#!/usr/bin/python3
"""A reference MultiPoolerService: Debian's python3-grpcio serving the
multigres proto, each call run on a real PostgreSQL through libpq (psycopg's
pq module). It exists so that multigateway's remote path can be checked
against a gRPC stack and a pooler that share no code with ours; it is small
on purpose, not a second pooler.

What it does: StreamExecute and PortalStreamExecute (rows as DataRow bytes in
passthrough_block), Describe, ConcludeTransaction, ReleaseReservedConnection,
StreamPoolerHealth, with reservations (one PostgreSQL connection each) and
session settings; every other method answers UNIMPLEMENTED. Errors end the
call with a gRPC status whose grpc-status-details-bin holds a google.rpc.Status
carrying an mtrpc.RPCError with PostgreSQL's diagnostic.

Limits: no COPY, no row-limited Execute (max_rows), one result format for
all columns of a portal (libpq's), and each PortalStreamExecute ends with a
Sync (libpq's exec), so an implicit transaction spans one Execute. libpq
binds and executes in one step: a portal's description (include_describe)
is sent before PostgreSQL has judged the Bind.

    remote_server.py --listen 127.0.0.1:15432 --backend 'host=127.0.0.1 port=5432'

Packages: python3-grpcio, python3-protobuf, python3-psycopg, protobuf-compiler.
"""
import argparse
import atexit
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from psycopg import pq
from psycopg.errors import Diagnostic

PROTO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "proto")


def load_stubs(proto_dir):
    """Python modules for the .proto files, made by protoc in a temp dir."""
    out = tempfile.mkdtemp(prefix="pgw-refpooler.")
    atexit.register(shutil.rmtree, out, True)
    files = sorted(f for f in os.listdir(proto_dir) if f.endswith(".proto"))
    subprocess.run(["protoc", "--python_out=" + out, "-I", proto_dir] + files,
                   cwd=proto_dir, check=True)
    sys.path.insert(0, out)


load_stubs(os.environ.get("PGW_PROTO_DIR", PROTO_DIR))
import clustermetadata_pb2 as cm  # noqa: E402
import google_rpc_status_pb2 as gstatus  # noqa: E402
import mtrpc_pb2 as mtrpc  # noqa: E402
import multipoolerservice_pb2 as svc  # noqa: E402
import query_pb2 as q  # noqa: E402

SERVICE = "multipoolerservice.MultiPoolerService"
TRANSACTION, PORTAL, COPY = 1, 4, 8
STICKY = ~(TRANSACTION | PORTAL | COPY)  # reasons kept until released
CHUNK = 64 * 1024                        # passthrough_block size per message
# The parameters PostgreSQL reports to clients when they change (GUC_REPORT).
REPORTED = [b"application_name", b"client_encoding", b"DateStyle",
            b"default_transaction_read_only", b"in_hot_standby", b"integer_datetimes",
            b"IntervalStyle", b"is_superuser", b"server_encoding", b"server_version",
            b"session_authorization", b"standard_conforming_strings", b"TimeZone"]


class CallError(Exception):
    """Ends a call: a gRPC status, and PostgreSQL's diagnostic when there is one."""

    def __init__(self, code, message, diag=None):
        super().__init__(message)
        self.code, self.message, self.diag = code, message, diag


def text(b):
    return b.decode("utf-8", "replace") if b else ""


def diagnostic(res, kind="E"):
    """query.PgDiagnostic from an error or notice result."""
    d = Diagnostic(res)
    return q.PgDiagnostic(
        severity=d.severity or "", code=d.sqlstate or "", message=d.message_primary or "",
        detail=d.message_detail or "", hint=d.message_hint or "",
        position=int(d.statement_position or 0), internal_position=int(d.internal_position or 0),
        internal_query=d.internal_query or "", where=d.context or "",
        schema_name=d.schema_name or "", table_name=d.table_name or "",
        column_name=d.column_name or "", data_type_name=d.datatype_name or "",
        constraint_name=d.constraint_name or "", message_type=ord(kind))


def pg_error(res):
    d = diagnostic(res)
    code = grpc.StatusCode.RESOURCE_EXHAUSTED if d.code == "53300" else grpc.StatusCode.UNKNOWN
    return CallError(code, d.message, d)


def simple_error(code, sqlstate, message, severity="ERROR"):
    return CallError(code, message, q.PgDiagnostic(severity=severity, code=sqlstate,
                                                   message=message, message_type=ord("E")))


def fields_of(res):
    return [q.Field(name=text(res.fname(i)), table_oid=res.ftable(i),
                    table_attribute_number=res.ftablecol(i), data_type_oid=res.ftype(i),
                    data_type_size=res.fsize(i), type_modifier=res.fmod(i),
                    format=res.fformat(i))
            for i in range(res.nfields)]


def data_row(res, row):
    """The DataRow message PostgreSQL sent for this row, rebuilt from libpq."""
    parts = [struct.pack("!h", res.nfields)]
    for col in range(res.nfields):
        v = res.get_value(row, col)
        parts.append(b"\xff\xff\xff\xff" if v is None else struct.pack("!i", len(v)) + v)
    body = b"".join(parts)
    return b"D" + struct.pack("!i", len(body) + 4) + body


def conninfo_value(v):
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Backend:
    """One PostgreSQL connection and the statements prepared on it."""

    def __init__(self, conninfo):
        self.pg = pq.PGconn.connect(conninfo.encode())
        if self.pg.status != pq.ConnStatus.OK:
            msg = text(self.pg.error_message).strip()
            self.pg.finish()
            raise simple_error(grpc.StatusCode.UNAVAILABLE, "08006", msg, "FATAL")
        self.cancel = self.pg.get_cancel()
        self.statements = {}  # (query, parameter types) -> name
        self.notices = []
        self.pg.notice_handler = lambda res: self.notices.append(diagnostic(res, "N"))

    @property
    def pid(self):
        return self.pg.backend_pid

    def in_transaction(self):
        return self.pg.transaction_status != pq.TransactionStatus.IDLE

    def run(self, sql):
        """A statement of our own; its failure is the call's error."""
        res = self.pg.exec_(sql.encode())
        if res.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise pg_error(res)

    def prepare(self, query, types):
        key = (query, tuple(types))
        name = self.statements.get(key)
        if name is None:
            name = b"ref_%d" % (len(self.statements) + 1)
            res = self.pg.prepare(name, query.encode(), list(types) or None)
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise pg_error(res)
            self.statements[key] = name
        return name

    def describe(self, name):
        res = self.pg.describe_prepared(name)
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise pg_error(res)
        return res

    def reset(self):
        """Clean for the next user: False when the connection is not worth keeping."""
        if self.pg.status != pq.ConnStatus.OK:
            return False
        try:
            if self.in_transaction():
                self.run("ROLLBACK")
            self.run("DISCARD ALL")
        except CallError:
            return False
        self.statements.clear()
        self.notices.clear()
        return True


class Reservation:
    def __init__(self, rid, backend, reasons):
        self.id, self.backend, self.reasons = rid, backend, reasons
        self.busy = True
        self.key = None        # (database, user), for the pool it returns to
        self.last_used = time.monotonic()


class Service:
    def __init__(self, backend_conninfo, pooler_id, reserved_timeout):
        self.conninfo = backend_conninfo
        self.reserved_timeout = reserved_timeout
        self.pooler_id = pooler_id
        self.lock = threading.Lock()
        self.idle = {}          # (database, user) -> [Backend]
        self.reservations = {}  # id -> Reservation
        self.next_id = 1
        self.stopping = threading.Event()

    # -- connections --------------------------------------------------------
    def take(self, target, options):
        """The connection a call runs on: its reservation's, or one from the pool."""
        rid = options.reserved_connection_id
        if rid:
            with self.lock:
                r = self.reservations.get(rid)
                if r is None:
                    raise simple_error(grpc.StatusCode.NOT_FOUND, "08003",
                                       "reserved connection %d not found" % rid)
                if r.busy:
                    raise simple_error(grpc.StatusCode.FAILED_PRECONDITION, "55000",
                                       "reserved connection %d is busy" % rid)
                r.busy = True
                return r.backend, r
        key = (target.shard_key.database or "postgres", options.user)
        with self.lock:
            pool = self.idle.get(key)
            if pool:
                return pool.pop(), None
        info = "%s dbname=%s" % (self.conninfo, conninfo_value(key[0]))
        if key[1]:
            info += " user=%s" % conninfo_value(key[1])
        return Backend(info), None

    def give_back(self, be, key):
        if be.reset():
            with self.lock:
                self.idle.setdefault(key, []).append(be)
        else:
            be.pg.finish()

    def finish(self, be, r, target, options, asked, can_reserve=True):
        """After a call: keep the connection reserved while something (a
        transaction, a reason the caller gave) needs it, else pool it.
        Returns the ReservedState to report."""
        keep = ((r.reasons if r else 0) | asked) & STICKY
        if be.in_transaction():
            keep |= TRANSACTION
        if be.pg.status != pq.ConnStatus.OK:
            keep = 0  # the server went away: nothing left to reserve
        pid = be.pid
        with self.lock:
            if keep and (r or can_reserve):
                if r is None:
                    r = Reservation(self.next_id, be, keep)
                    self.next_id += 1
                    self.reservations[r.id] = r
                r.reasons, r.busy = keep, False
                r.key = (target.shard_key.database or "postgres", options.user)
                r.last_used = time.monotonic()
                return q.ReservedState(reserved_connection_id=r.id, pooler_id=self.pooler_id,
                                       reservation_reasons=keep, backend_process_id=pid)
            if r:
                del self.reservations[r.id]
        self.give_back(be, (target.shard_key.database or "postgres", options.user))
        return q.ReservedState(pooler_id=self.pooler_id, backend_process_id=pid)

    def apply_settings(self, be, options):
        for name, value in sorted(options.session_settings.items()):
            res = be.pg.exec_params(b"SELECT pg_catalog.set_config($1, $2, false)",
                                    [name.encode(), value.encode()])
            if res.status != pq.ExecStatus.TUPLES_OK:
                raise pg_error(res)

    # -- running statements ------------------------------------------------
    def results(self, be, send, with_fields=True):
        """Send a query (send() does), then yield QueryResultPayloads as the
        results arrive, one row at a time from libpq, in CHUNK-sized blocks.
        Raises CallError after the last payload if the server reported one."""
        before = {n: be.pg.parameter_status(n) for n in REPORTED}
        send()
        be.pg.set_single_row_mode()
        error, rows, size, fields_sent = None, [], 0, False
        while True:
            res = be.pg.get_result()
            while be.notices:
                yield q.QueryResultPayload(diagnostic=be.notices.pop(0))
            if res is None:
                break
            st = res.status
            if st == pq.ExecStatus.SINGLE_TUPLE:
                rows.append(data_row(res, 0))
                size += len(rows[-1])
                if size >= CHUNK:
                    yield q.QueryResultPayload(result=q.QueryResult(
                        fields=fields_of(res) if with_fields and not fields_sent else [],
                        has_fields=True, passthrough_block=b"".join(rows),
                        passthrough_row_count=len(rows), passthrough_row_in_progress=False))
                    fields_sent, rows, size = True, [], 0
            elif st in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
                rows += [data_row(res, i) for i in range(res.ntuples)]
                tuples = st == pq.ExecStatus.TUPLES_OK
                yield q.QueryResultPayload(result=q.QueryResult(
                    fields=fields_of(res) if tuples and with_fields and not fields_sent else [],
                    has_fields=tuples, passthrough_block=b"".join(rows),
                    passthrough_row_count=len(rows), command_tag=text(res.command_status),
                    rows_affected=int(res.command_tuples or 0)))
                fields_sent, rows, size = False, [], 0
            elif st == pq.ExecStatus.FATAL_ERROR:
                if rows:  # what came before the error still reaches the client
                    yield q.QueryResultPayload(result=q.QueryResult(
                        has_fields=True, passthrough_block=b"".join(rows),
                        passthrough_row_count=len(rows)))
                    rows, size = [], 0
                error = pg_error(res)
            elif st == pq.ExecStatus.COPY_IN:
                be.pg.put_copy_end(b"COPY is not supported by this pooler")
            elif st == pq.ExecStatus.COPY_OUT:
                while be.pg.get_copy_data(0)[0] > 0:
                    pass
                error = error or simple_error(grpc.StatusCode.UNIMPLEMENTED, "0A000",
                                              "COPY is not supported by this pooler")
            # EMPTY_QUERY: nothing to say; the gateway answers EmptyQueryResponse.
        while True:
            n = be.pg.notifies()
            if n is None:
                break
            yield q.QueryResultPayload(notification=q.PgNotification(
                pid=n.be_pid, channel=text(n.relname), payload=text(n.extra)))
        changed = {text(n): text(be.pg.parameter_status(n)) for n in REPORTED
                   if be.pg.parameter_status(n) != before[n]}
        if changed:
            yield q.QueryResultPayload(result=q.QueryResult(parameter_status=changed))
        if error:
            raise error

    def stream_call(self, req, ctx, response, asked, prepare_and_send, with_fields=True):
        """The common shape of StreamExecute and PortalStreamExecute:
        prepare_and_send(be) returns the payloads to send first and the
        function that sends the query."""
        target, options = req.target, req.options
        be, r = self.take(target, options)
        known = r is not None  # does the caller know this reservation?
        running = [True]
        # The gateway cancelling the call cancels the statement.
        ctx.add_callback(lambda: running[0] and be.cancel.cancel())
        error = None
        try:
            self.apply_settings(be, options)
            begin = req.reservation_options.begin_query or (
                "BEGIN" if asked & TRANSACTION else "")
            if begin and not be.in_transaction():
                be.run(begin)
            lead, send = prepare_and_send(be)
            for payload in lead:
                yield response(result=payload)
            for payload in self.results(be, send, with_fields):
                yield response(result=payload)
        except CallError as e:
            error = e
        except GeneratorExit:
            # The call ended under us: take what the server still sends; a
            # reservation the caller never heard of is not kept.
            running[0] = False
            while be.pg.get_result() is not None:
                pass
            self.finish(be, r, target, options, asked if known else 0, can_reserve=known)
            raise
        running[0] = False
        state = self.finish(be, r, target, options, asked)
        yield response(reserved_state=state)
        if error:
            abort(ctx, error)

    # -- the RPCs ---------------------------------------------------------------
    def StreamExecute(self, req, ctx):
        sql = req.query.encode()
        try:
            yield from self.stream_call(req, ctx, svc.StreamExecuteResponse,
                                        req.reservation_options.reasons,
                                        lambda be: ((), lambda: be.pg.send_query(sql)))
        except CallError as e:
            abort(ctx, e)

    def PortalStreamExecute(self, req, ctx):
        ps, portal = req.prepared_statement, req.portal
        values, at = [], 0
        for n in portal.param_lengths:
            values.append(None if n < 0 else portal.param_values[at:at + n])
            at += max(n, 0)
        pformats = list(portal.param_formats)
        if len(pformats) == 1:
            pformats *= len(values)
        rformats = set(portal.result_formats)
        try:
            if len(rformats) > 1:
                raise simple_error(grpc.StatusCode.UNIMPLEMENTED, "0A000",
                                   "mixed result formats are not supported by this pooler")
            if req.options.max_rows:
                raise simple_error(grpc.StatusCode.UNIMPLEMENTED, "0A000",
                                   "a row-limited Execute is not supported by this pooler")
            fmt = rformats.pop() if rformats else 0

            def prepare_and_send(be):
                name = be.prepare(ps.query, ps.param_types)
                lead = []
                if req.portal_options.include_describe:
                    # The portal's description, from the statement's: libpq
                    # binds and executes in one step, so it comes before
                    # the server's verdict on Bind.
                    fields = fields_of(be.describe(name))
                    for f in fields:
                        f.format = fmt
                    lead.append(q.QueryResultPayload(result=q.QueryResult(
                        fields=fields, has_fields=bool(fields))))
                return lead, lambda: be.pg.send_query_prepared(name, values, pformats or None,
                                                               fmt)

            yield from self.stream_call(req, ctx, svc.PortalStreamExecuteResponse,
                                        req.reservation_options.reasons, prepare_and_send,
                                        with_fields=False)
        except CallError as e:
            abort(ctx, e)

    def Describe(self, req, ctx):
        try:
            be, r = self.take(req.target, req.options)
        except CallError as e:
            abort(ctx, e)
        try:
            res = be.describe(be.prepare(req.prepared_statement.query,
                                         req.prepared_statement.param_types))
            return svc.DescribeResponse(description=q.StatementDescription(
                parameters=[q.ParameterDescription(data_type_oid=res.param_type(i))
                            for i in range(res.nparams)],
                fields=fields_of(res)))
        except CallError as e:
            abort(ctx, e)
        finally:
            be.notices.clear()
            self.finish(be, r, req.target, req.options, 0, can_reserve=False)

    def ConcludeTransaction(self, req, ctx):
        Conclusion = svc.ConcludeTransactionRequest
        sql = {Conclusion.COMMIT: "COMMIT", Conclusion.ROLLBACK: "ROLLBACK"}.get(req.conclusion)
        try:
            if sql is None:
                raise simple_error(grpc.StatusCode.INVALID_ARGUMENT, "22023",
                                   "conclusion must be COMMIT or ROLLBACK")
            if not req.options.reserved_connection_id:
                raise simple_error(grpc.StatusCode.INVALID_ARGUMENT, "22023",
                                   "ConcludeTransaction needs a reserved_connection_id")
            be, r = self.take(req.target, req.options)
        except CallError as e:
            abort(ctx, e)
        result, error = None, None
        try:
            for p in self.results(be, lambda: be.pg.send_query(sql.encode())):
                if p.HasField("result") and p.result.command_tag:
                    result = p.result
        except CallError as e:
            error = e
        state = self.finish(be, r, req.target, req.options, 0)
        if error:
            abort(ctx, error)
        return svc.ConcludeTransactionResponse(result=result, reserved_state=state)

    def ReleaseReservedConnection(self, req, ctx):
        rid = req.options.reserved_connection_id
        with self.lock:
            r = self.reservations.get(rid)
            if r is None or r.busy:
                err = (simple_error(grpc.StatusCode.NOT_FOUND, "08003",
                                    "reserved connection %d not found" % rid) if r is None else
                       simple_error(grpc.StatusCode.FAILED_PRECONDITION, "55000",
                                    "reserved connection %d is busy" % rid))
            else:
                err = None
                del self.reservations[rid]
        if err:
            abort(ctx, err)
        pid = r.backend.pid
        self.give_back(r.backend, (req.target.shard_key.database or "postgres",
                                   req.options.user))
        return svc.ReleaseReservedConnectionResponse(reserved_state=q.ReservedState(
            pooler_id=self.pooler_id, backend_process_id=pid))

    def sweep(self):
        """A reservation its holder forgot (a gateway gone) is rolled back
        and pooled after reserved_timeout seconds unused."""
        while not self.stopping.wait(1.0):
            now = time.monotonic()
            with self.lock:
                old = [r for r in self.reservations.values()
                       if not r.busy and now - r.last_used > self.reserved_timeout]
                for r in old:
                    del self.reservations[r.id]
            for r in old:
                print("reserved connection %d unused for %gs: released" % (r.id, now - r.last_used),
                      flush=True)
                self.give_back(r.backend, r.key)

    def StreamPoolerHealth(self, req, ctx):
        yield svc.StreamPoolerHealthResponse(pooler_id=self.pooler_id, serving=True)
        while ctx.is_active() and not self.stopping.wait(1.0):
            pass
        if self.stopping.is_set():
            yield svc.StreamPoolerHealthResponse(pooler_id=self.pooler_id, serving=False,
                                                 reason="shutting down")

    def close(self):
        with self.lock:
            for pool in self.idle.values():
                for be in pool:
                    be.pg.finish()
            self.idle.clear()


def abort(ctx, e):
    """End the call with e (code, message, the details trailer); raises."""
    detail = mtrpc.RPCError(message=e.message, code=e.code.value[0], pg_diagnostic=e.diag)
    status = gstatus.Status(code=e.code.value[0], message=e.message, details=[gstatus.Any(
        type_url="type.googleapis.com/mtrpc.RPCError", value=detail.SerializeToString())])
    ctx.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    ctx.abort(e.code, e.message)


def handlers(service):
    """Only the implemented methods: grpcio answers UNIMPLEMENTED for the rest."""
    def unary(fn, req, resp):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString)

    def stream(fn, req, resp):
        return grpc.unary_stream_rpc_method_handler(
            fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString)

    return grpc.method_handlers_generic_handler(SERVICE, {
        "StreamExecute": stream(service.StreamExecute, svc.StreamExecuteRequest,
                                svc.StreamExecuteResponse),
        "PortalStreamExecute": stream(service.PortalStreamExecute, svc.PortalStreamExecuteRequest,
                                      svc.PortalStreamExecuteResponse),
        "Describe": unary(service.Describe, svc.DescribeRequest, svc.DescribeResponse),
        "ConcludeTransaction": unary(service.ConcludeTransaction, svc.ConcludeTransactionRequest,
                                     svc.ConcludeTransactionResponse),
        "ReleaseReservedConnection": unary(service.ReleaseReservedConnection,
                                           svc.ReleaseReservedConnectionRequest,
                                           svc.ReleaseReservedConnectionResponse),
        "StreamPoolerHealth": stream(service.StreamPoolerHealth, svc.StreamPoolerHealthRequest,
                                     svc.StreamPoolerHealthResponse),
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:15432", help="HOST:PORT to serve gRPC on")
    ap.add_argument("--backend", default="host=127.0.0.1 port=5432",
                    help="libpq conninfo of the PostgreSQL server (dbname and user come "
                         "from each request)")
    ap.add_argument("--pooler-id", default="local/refpooler", help="CELL/NAME reported")
    ap.add_argument("--threads", type=int, default=64, help="concurrent calls served")
    ap.add_argument("--reserved-timeout", type=float, default=60,
                    help="release a reservation unused this many seconds")
    args = ap.parse_args()
    cell, _, name = args.pooler_id.partition("/")
    service = Service(args.backend, cm.ID(component=cm.ID.MULTIPOOLER, cell=cell, name=name),
                      args.reserved_timeout)
    threading.Thread(target=service.sweep, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.threads))
    server.add_generic_rpc_handlers((handlers(service),))
    if not server.add_insecure_port(args.listen):
        sys.exit("cannot listen on %s" % args.listen)
    server.start()
    print("serving %s on %s" % (SERVICE, args.listen), flush=True)

    def stop(signum, frame):
        service.stopping.set()
        threading.Thread(target=server.stop, args=(2,), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait_for_termination()
    service.close()


if __name__ == "__main__":
    main()
