/*
 * pgw_proto: the multigres messages (proto/NAME.proto) as protobuf-c packs and
 * unpacks them, checked against the reference protobuf implementation.
 *
 * proto_fixtures.h is generated at build time by tests/proto/make_fixtures.py
 * with Debian's python3-protobuf from the same .proto files; it builds the
 * same messages as below (keep the values in step). Each message is checked
 * three ways: protobuf-c's bytes equal the reference bytes, protobuf-c
 * unpacks the reference bytes to every field we set, and what protobuf-c
 * packs unpacks back to the same. Map fields: the reference serializes them
 * deterministically (sorted by key) and protobuf-c in array order, so the
 * byte comparison uses sorted entries and a separate test compares an
 * unsorted map semantically.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clustermetadata.pb-c.h"
#include "mtrpc.pb-c.h"
#include "multipoolerservice.pb-c.h"
#include "query.pb-c.h"

#include "proto_fixtures.h"

/* ---- helpers */

static ProtobufCBinaryData bin(const void *p, size_t n)
{
	ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)p};
	return b;
}

static void assert_bin(ProtobufCBinaryData b, const void *p, size_t n)
{
	assert_int_equal(b.len, n);
	if (n)
		assert_memory_equal(b.data, p, n);
}

/* Packs m and compares with the reference bytes; returns the packed bytes. */
static uint8_t *pack_and_compare(const ProtobufCMessage *m, const unsigned char *fx, size_t fxlen)
{
	assert_true(protobuf_c_message_check(m));
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), n);
	if (n != fxlen || memcmp(buf, fx, n) != 0) {
		size_t i = 0;
		while (i < n && i < fxlen && buf[i] == fx[i])
			i++;
		fail_msg("protobuf-c packed %zu bytes, reference %zu; first difference at byte %zu", n, fxlen, i);
	}
	return buf;
}

/* A PgDiagnostic with all 15 fields, as diag() in make_fixtures.py. */
struct diag_buf {
	char code[16], message[32], detail[32], hint[32], internal_query[48];
	char where[64], table_name[32], column_name[32], constraint_name[32];
	Query__PgDiagnostic d;
};

static void fill_diag(struct diag_buf *b, int message_type, const char *base)
{
	Query__PgDiagnostic init = QUERY__PG_DIAGNOSTIC__INIT;
	b->d = init;
	snprintf(b->code, sizeof b->code, "%s01", base);
	snprintf(b->message, sizeof b->message, "message %s", base);
	snprintf(b->detail, sizeof b->detail, "detail %s", base);
	snprintf(b->hint, sizeof b->hint, "hint %s", base);
	snprintf(b->internal_query, sizeof b->internal_query, "SELECT internal %s", base);
	snprintf(b->where, sizeof b->where, "PL/pgSQL function f() line 3 %s", base);
	snprintf(b->table_name, sizeof b->table_name, "t_%s", base);
	snprintf(b->column_name, sizeof b->column_name, "c_%s", base);
	snprintf(b->constraint_name, sizeof b->constraint_name, "k_%s", base);
	b->d.severity = message_type == 'E' ? "ERROR" : "NOTICE";
	b->d.code = b->code;
	b->d.message = b->message;
	b->d.detail = b->detail;
	b->d.hint = b->hint;
	b->d.position = 12;
	b->d.internal_position = 300;
	b->d.internal_query = b->internal_query;
	b->d.where = b->where;
	b->d.schema_name = "public";
	b->d.table_name = b->table_name;
	b->d.column_name = b->column_name;
	b->d.data_type_name = "int4";
	b->d.constraint_name = b->constraint_name;
	b->d.message_type = message_type;
}

static void check_diag(const Query__PgDiagnostic *d, int message_type, const char *base)
{
	struct diag_buf want;
	assert_non_null(d);
	fill_diag(&want, message_type, base);
	assert_string_equal(d->severity, want.d.severity);
	assert_string_equal(d->code, want.d.code);
	assert_string_equal(d->message, want.d.message);
	assert_string_equal(d->detail, want.d.detail);
	assert_string_equal(d->hint, want.d.hint);
	assert_int_equal(d->position, 12);
	assert_int_equal(d->internal_position, 300);
	assert_string_equal(d->internal_query, want.d.internal_query);
	assert_string_equal(d->where, want.d.where);
	assert_string_equal(d->schema_name, "public");
	assert_string_equal(d->table_name, want.d.table_name);
	assert_string_equal(d->column_name, want.d.column_name);
	assert_string_equal(d->data_type_name, "int4");
	assert_string_equal(d->constraint_name, want.d.constraint_name);
	assert_int_equal(d->message_type, message_type);
}

/* ---- query.QueryResult, every field set */

static const uint8_t passthrough[] = {'D', 0, 0, 0, 11, 0, 1, 0, 0, 0, 1, 0xff};

static void check_query_result(const Query__QueryResult *r)
{
	assert_non_null(r);
	assert_int_equal(r->n_fields, 2);
	const Query__Field *f = r->fields[0];
	assert_string_equal(f->name, "id");
	assert_string_equal(f->type, "int4");
	assert_int_equal(f->table_oid, 16384);
	assert_int_equal(f->table_attribute_number, 1);
	assert_int_equal(f->data_type_oid, 23);
	assert_int_equal(f->data_type_size, 4);
	assert_int_equal(f->type_modifier, -1);
	assert_int_equal(f->format, 0);
	f = r->fields[1];
	assert_string_equal(f->name, "note");
	assert_string_equal(f->type, "text");
	assert_int_equal(f->table_oid, 4000000000u);
	assert_int_equal(f->table_attribute_number, 2);
	assert_int_equal(f->data_type_oid, 25);
	assert_int_equal(f->data_type_size, -1);
	assert_int_equal(f->type_modifier, -1);
	assert_int_equal(f->format, 1);
	assert_int_equal(r->rows_affected, 5000000000ull);
	assert_int_equal(r->n_rows, 2);
	assert_int_equal(r->rows[0]->n_lengths, 2);
	assert_true(r->rows[0]->lengths[0] == 1 && r->rows[0]->lengths[1] == -1);
	assert_bin(r->rows[0]->values, "7", 1);
	assert_int_equal(r->rows[1]->n_lengths, 2);
	assert_true(r->rows[1]->lengths[0] == 2 && r->rows[1]->lengths[1] == 0);
	assert_bin(r->rows[1]->values, "42", 2);
	assert_string_equal(r->command_tag, "SELECT 2");
	assert_true(r->has_fields);
	assert_int_equal(r->n_notices, 1);
	check_diag(r->notices[0], 'N', "N1");
	assert_bin(r->passthrough_block, passthrough, sizeof passthrough);
	assert_int_equal(r->passthrough_row_count, 1);
	assert_int_equal(r->n_parameter_status, 1);
	assert_string_equal(r->parameter_status[0]->key, "TimeZone");
	assert_string_equal(r->parameter_status[0]->value, "UTC");
	assert_true(r->passthrough_row_in_progress);
}

static void test_query_result(void **state)
{
	(void)state;
	Query__Field f0 = QUERY__FIELD__INIT, f1 = QUERY__FIELD__INIT;
	f0.name = "id";
	f0.type = "int4";
	f0.table_oid = 16384;
	f0.table_attribute_number = 1;
	f0.data_type_oid = 23;
	f0.data_type_size = 4;
	f0.type_modifier = -1;
	f0.format = 0;
	f1.name = "note";
	f1.type = "text";
	f1.table_oid = 4000000000u;
	f1.table_attribute_number = 2;
	f1.data_type_oid = 25;
	f1.data_type_size = -1;
	f1.type_modifier = -1;
	f1.format = 1;
	Query__Field *fields[] = {&f0, &f1};

	int64_t len0[] = {1, -1}, len1[] = {2, 0};
	Query__Row r0 = QUERY__ROW__INIT, r1 = QUERY__ROW__INIT;
	r0.n_lengths = 2;
	r0.lengths = len0;
	r0.values = bin("7", 1);
	r1.n_lengths = 2;
	r1.lengths = len1;
	r1.values = bin("42", 2);
	Query__Row *rows[] = {&r0, &r1};

	struct diag_buf notice;
	fill_diag(&notice, 'N', "N1");
	Query__PgDiagnostic *notices[] = {&notice.d};

	Query__QueryResult__ParameterStatusEntry ps = QUERY__QUERY_RESULT__PARAMETER_STATUS_ENTRY__INIT;
	ps.key = "TimeZone";
	ps.value = "UTC";
	Query__QueryResult__ParameterStatusEntry *pss[] = {&ps};

	Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
	r.n_fields = 2;
	r.fields = fields;
	r.rows_affected = 5000000000ull;
	r.n_rows = 2;
	r.rows = rows;
	r.command_tag = "SELECT 2";
	r.has_fields = 1;
	r.n_notices = 1;
	r.notices = notices;
	r.passthrough_block = bin(passthrough, sizeof passthrough);
	r.passthrough_row_count = 1;
	r.n_parameter_status = 1;
	r.parameter_status = pss;
	r.passthrough_row_in_progress = 1;

	uint8_t *buf = pack_and_compare(&r.base, fx_query_result, sizeof fx_query_result);
	Query__QueryResult *mine = query__query_result__unpack(NULL, sizeof fx_query_result, buf);
	check_query_result(mine);
	query__query_result__free_unpacked(mine, NULL);
	free(buf);

	Query__QueryResult *ref = query__query_result__unpack(NULL, sizeof fx_query_result, fx_query_result);
	check_query_result(ref);
	query__query_result__free_unpacked(ref, NULL);
}

/* ---- multipoolerservice.StreamExecuteRequest */

static uint8_t client_key[32], server_key[32];

static void init_keys(void)
{
	for (int i = 0; i < 32; i++) {
		client_key[i] = (uint8_t)i;
		server_key[i] = (uint8_t)(255 - i);
	}
}

static const char *setting(const Query__ExecuteOptions *o, const char *key)
{
	for (size_t i = 0; i < o->n_session_settings; i++)
		if (strcmp(o->session_settings[i]->key, key) == 0)
			return o->session_settings[i]->value;
	return NULL;
}

/* Semantic check: map entries are looked up by key, whatever their order. */
static void check_stream_execute_request(const Multipoolerservice__StreamExecuteRequest *m)
{
	assert_non_null(m);
	assert_string_equal(m->query, "SELECT $1::int");
	assert_non_null(m->target);
	assert_non_null(m->target->shard_key);
	assert_string_equal(m->target->shard_key->database, "postgres");
	assert_string_equal(m->target->shard_key->table_group, "default");
	assert_string_equal(m->target->shard_key->shard, "0-inf");
	assert_int_equal(m->target->mode, QUERY__TARGET__MODE__CONSISTENT);
	assert_non_null(m->caller_id);
	assert_string_equal(m->caller_id->principal, "alice");
	assert_string_equal(m->caller_id->component, "multigateway");
	assert_string_equal(m->caller_id->subcomponent, "test_proto");
	assert_int_equal(m->caller_id->n_groups, 2);
	assert_string_equal(m->caller_id->groups[0], "g1");
	assert_string_equal(m->caller_id->groups[1], "g2");
	const Query__ExecuteOptions *o = m->options;
	assert_non_null(o);
	assert_int_equal(o->n_session_settings, 2);
	assert_non_null(setting(o, "search_path"));
	assert_string_equal(setting(o, "search_path"), "public");
	assert_non_null(setting(o, "application_name"));
	assert_string_equal(setting(o, "application_name"), "psql");
	assert_string_equal(o->user, "alice");
	assert_int_equal(o->max_rows, 100);
	assert_int_equal(o->reserved_connection_id, 77);
	assert_non_null(o->user_auth);
	assert_bin(o->user_auth->client_key, client_key, 32);
	assert_bin(o->user_auth->server_key, server_key, 32);
	assert_int_equal(o->client_connection_id, 4242);
	assert_non_null(m->reservation_options);
	assert_int_equal(m->reservation_options->reasons,
			 MULTIPOOLERSERVICE__RESERVATION_REASON__TRANSACTION |
				 MULTIPOOLERSERVICE__RESERVATION_REASON__TEMP_TABLE);
	assert_string_equal(m->reservation_options->begin_query, "BEGIN ISOLATION LEVEL SERIALIZABLE");
}

/* Builds the request; sorted puts the map entries in key order (as the
 * reference's deterministic serialization does), otherwise insertion order. */
static void stream_execute_request(int sorted, void (*use)(Multipoolerservice__StreamExecuteRequest *))
{
	init_keys();
	Clustermetadata__ShardKey sk = CLUSTERMETADATA__SHARD_KEY__INIT;
	sk.database = "postgres";
	sk.table_group = "default";
	sk.shard = "0-inf";
	Query__Target target = QUERY__TARGET__INIT;
	target.shard_key = &sk;
	target.mode = QUERY__TARGET__MODE__CONSISTENT;

	char *groups[] = {"g1", "g2"};
	Mtrpc__CallerID caller = MTRPC__CALLER_ID__INIT;
	caller.principal = "alice";
	caller.component = "multigateway";
	caller.subcomponent = "test_proto";
	caller.n_groups = 2;
	caller.groups = groups;

	Query__ExecuteOptions__SessionSettingsEntry sp = QUERY__EXECUTE_OPTIONS__SESSION_SETTINGS_ENTRY__INIT;
	Query__ExecuteOptions__SessionSettingsEntry an = QUERY__EXECUTE_OPTIONS__SESSION_SETTINGS_ENTRY__INIT;
	sp.key = "search_path";
	sp.value = "public";
	an.key = "application_name";
	an.value = "psql";
	Query__ExecuteOptions__SessionSettingsEntry *settings[2];
	settings[0] = sorted ? &an : &sp;
	settings[1] = sorted ? &sp : &an;

	Query__UserAuth ua = QUERY__USER_AUTH__INIT;
	ua.client_key = bin(client_key, 32);
	ua.server_key = bin(server_key, 32);

	Query__ExecuteOptions opts = QUERY__EXECUTE_OPTIONS__INIT;
	opts.n_session_settings = 2;
	opts.session_settings = settings;
	opts.user = "alice";
	opts.max_rows = 100;
	opts.reserved_connection_id = 77;
	opts.user_auth = &ua;
	opts.client_connection_id = 4242;

	Query__ReservationOptions ro = QUERY__RESERVATION_OPTIONS__INIT;
	ro.reasons = MULTIPOOLERSERVICE__RESERVATION_REASON__TRANSACTION |
		     MULTIPOOLERSERVICE__RESERVATION_REASON__TEMP_TABLE;
	ro.begin_query = "BEGIN ISOLATION LEVEL SERIALIZABLE";

	Multipoolerservice__StreamExecuteRequest m = MULTIPOOLERSERVICE__STREAM_EXECUTE_REQUEST__INIT;
	m.query = "SELECT $1::int";
	m.target = &target;
	m.caller_id = &caller;
	m.options = &opts;
	m.reservation_options = &ro;
	use(&m);
}

static void sorted_request(Multipoolerservice__StreamExecuteRequest *m)
{
	uint8_t *buf = pack_and_compare(&m->base, fx_stream_execute_request, sizeof fx_stream_execute_request);
	Multipoolerservice__StreamExecuteRequest *back =
		multipoolerservice__stream_execute_request__unpack(NULL, sizeof fx_stream_execute_request, buf);
	check_stream_execute_request(back);
	multipoolerservice__stream_execute_request__free_unpacked(back, NULL);
	free(buf);
}

static void unsorted_request(Multipoolerservice__StreamExecuteRequest *m)
{
	/* Same message, map entries in another order: the bytes need not match,
	 * the meaning must. */
	size_t n = multipoolerservice__stream_execute_request__get_packed_size(m);
	assert_int_equal(n, sizeof fx_stream_execute_request);
	uint8_t *buf = malloc(n);
	assert_non_null(buf);
	assert_int_equal(multipoolerservice__stream_execute_request__pack(m, buf), n);
	Multipoolerservice__StreamExecuteRequest *back =
		multipoolerservice__stream_execute_request__unpack(NULL, n, buf);
	check_stream_execute_request(back);
	multipoolerservice__stream_execute_request__free_unpacked(back, NULL);
	free(buf);
}

static void test_stream_execute_request(void **state)
{
	(void)state;
	stream_execute_request(1, sorted_request);
	stream_execute_request(0, unsorted_request);

	init_keys();
	Multipoolerservice__StreamExecuteRequest *ref = multipoolerservice__stream_execute_request__unpack(
		NULL, sizeof fx_stream_execute_request, fx_stream_execute_request);
	check_stream_execute_request(ref);
	multipoolerservice__stream_execute_request__free_unpacked(ref, NULL);
}

/* ---- multipoolerservice.StreamExecuteResponse: the payload oneof, ReservedState */

static void check_stream_execute_response(const Multipoolerservice__StreamExecuteResponse *m)
{
	assert_non_null(m);
	assert_non_null(m->result);
	assert_int_equal(m->result->payload_case, QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_NOTIFICATION);
	assert_int_equal(m->result->notification->pid, 31337);
	assert_string_equal(m->result->notification->channel, "jobs");
	assert_string_equal(m->result->notification->payload, "hello");
	const Query__ReservedState *rs = m->reserved_state;
	assert_non_null(rs);
	assert_int_equal(rs->reserved_connection_id, 77);
	assert_non_null(rs->pooler_id);
	assert_int_equal(rs->pooler_id->component, CLUSTERMETADATA__ID__COMPONENT__MULTIPOOLER);
	assert_string_equal(rs->pooler_id->cell, "zone1");
	assert_string_equal(rs->pooler_id->name, "pooler-1");
	assert_int_equal(rs->reservation_reasons, MULTIPOOLERSERVICE__RESERVATION_REASON__TRANSACTION |
							  MULTIPOOLERSERVICE__RESERVATION_REASON__LISTEN);
	assert_int_equal(rs->backend_process_id, 123456);
}

static void test_stream_execute_response(void **state)
{
	(void)state;
	Query__PgNotification n = QUERY__PG_NOTIFICATION__INIT;
	n.pid = 31337;
	n.channel = "jobs";
	n.payload = "hello";
	Query__QueryResultPayload p = QUERY__QUERY_RESULT_PAYLOAD__INIT;
	p.payload_case = QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_NOTIFICATION;
	p.notification = &n;
	Clustermetadata__ID id = CLUSTERMETADATA__ID__INIT;
	id.component = CLUSTERMETADATA__ID__COMPONENT__MULTIPOOLER;
	id.cell = "zone1";
	id.name = "pooler-1";
	Query__ReservedState rs = QUERY__RESERVED_STATE__INIT;
	rs.reserved_connection_id = 77;
	rs.pooler_id = &id;
	rs.reservation_reasons = MULTIPOOLERSERVICE__RESERVATION_REASON__TRANSACTION |
				 MULTIPOOLERSERVICE__RESERVATION_REASON__LISTEN;
	rs.backend_process_id = 123456;
	Multipoolerservice__StreamExecuteResponse m = MULTIPOOLERSERVICE__STREAM_EXECUTE_RESPONSE__INIT;
	m.result = &p;
	m.reserved_state = &rs;

	uint8_t *buf = pack_and_compare(&m.base, fx_stream_execute_response, sizeof fx_stream_execute_response);
	free(buf);
	Multipoolerservice__StreamExecuteResponse *ref = multipoolerservice__stream_execute_response__unpack(
		NULL, sizeof fx_stream_execute_response, fx_stream_execute_response);
	check_stream_execute_response(ref);
	multipoolerservice__stream_execute_response__free_unpacked(ref, NULL);
}

/* ---- mtrpc.RPCError with a PgDiagnostic */

static void test_rpc_error(void **state)
{
	(void)state;
	struct diag_buf err;
	fill_diag(&err, 'E', "42P");
	Mtrpc__RPCError m = MTRPC__RPCERROR__INIT;
	m.message = "relation \"nope\" does not exist";
	m.code = MTRPC__CODE__INVALID_ARGUMENT;
	m.pg_diagnostic = &err.d;

	uint8_t *buf = pack_and_compare(&m.base, fx_rpc_error, sizeof fx_rpc_error);
	free(buf);
	Mtrpc__RPCError *ref = mtrpc__rpcerror__unpack(NULL, sizeof fx_rpc_error, fx_rpc_error);
	assert_non_null(ref);
	assert_string_equal(ref->message, "relation \"nope\" does not exist");
	assert_int_equal(ref->code, MTRPC__CODE__INVALID_ARGUMENT);
	check_diag(ref->pg_diagnostic, 'E', "42P");
	mtrpc__rpcerror__free_unpacked(ref, NULL);
}

/* ---- the service descriptor: gRPC paths come from these names */

static void test_service_descriptor(void **state)
{
	(void)state;
	const ProtobufCServiceDescriptor *s = &multipoolerservice__multi_pooler_service__descriptor;
	assert_string_equal(s->name, "multipoolerservice.MultiPoolerService");
	static const char *const methods[] = {
		"ExecuteQuery",	   "StreamExecute",	  "PortalStreamExecute",
		"Describe",	   "GetAuthCredentials",  "CopyBidiExecute",
		"ConcludeTransaction", "ReleaseReservedConnection", "StreamPoolerHealth",
	};
	assert_int_equal(s->n_methods, sizeof methods / sizeof methods[0]);
	for (size_t i = 0; i < s->n_methods; i++)
		assert_string_equal(s->methods[i].name, methods[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_result),
		cmocka_unit_test(test_stream_execute_request),
		cmocka_unit_test(test_stream_execute_response),
		cmocka_unit_test(test_rpc_error),
		cmocka_unit_test(test_service_descriptor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
