/*
 * SCRAM message syntax (RFC 5802 section 7) as Ragel machines, one per
 * message: a whole message is checked and split into views, nothing is
 * copied. ragel -G2 turns this into scram_attrs.c in the build tree.
 */
#include <string.h>

#include "auth/scram.h"

%%{
	machine scram_common;
	alphtype unsigned char;

	# UTF8-2 / UTF8-3 / UTF8-4 of RFC 3629: no overlongs, surrogates or
	# code points past U+10FFFF.
	tail = 0x80..0xBF;
	utf8_mb = 0xC2..0xDF tail
		| 0xE0 0xA0..0xBF tail | 0xE1..0xEC tail tail
		| 0xED 0x80..0x9F tail | 0xEE..0xEF tail tail
		| 0xF0 0x90..0xBF tail tail | 0xF1..0xF3 tail tail tail
		| 0xF4 0x80..0x8F tail tail;

	# value-safe-char: UTF-8 but NUL, "," and "=".
	value_safe = 0x01..0x2B | 0x2D..0x3C | 0x3E..0x7F | utf8_mb;
	value = (value_safe | '=')+;
	saslname_char = value_safe | '=2C' | '=3D';
	# printable: %x21-2B / %x2D-7E (no ",").
	printable = 0x21..0x2B | 0x2D..0x7E;
	b64 = [A-Za-z0-9+/];
	# Non-empty base64 with its padding.
	base64 = b64{4}+ | b64{4}* (b64{3} '=' | b64{2} '==');
	posit_number = [1-9] [0-9]{0,9};
	cb_name = [A-Za-z0-9.\-]+;

	# An extension may not reuse a letter SCRAM gives a meaning to, so a
	# repeated or misplaced attribute cannot pass as one.
	ext_name = [A-Za-z] - [acimnprsve];
	extensions = ext_name '=' value (',' ext_name '=' value)*;

	action mark { mark = p + 1; }
}%%

static void set_view(scram_view *v, const uint8_t *from, const uint8_t *to)
{
	v->ptr = from;
	v->len = (size_t)(to - from);
}

int scram_parse_server_first(const uint8_t *msg, size_t len, scram_server_first_msg *out)
{
	memset(out, 0, sizeof *out);
	if (!msg)
		return SCRAM_ERR_SYNTAX;
	const uint8_t *p = msg, *pe = msg + len, *eof = pe, *mark = msg;
	int64_t iterations = 0;
	int cs;
	(void)eof;
	%%{
		machine scram_server_first;
		include scram_common;

		action mext { set_view(&out->reserved_mext, mark, p); }
		action nonce { set_view(&out->nonce, mark, p); }
		action salt { set_view(&out->salt, mark, p); }
		action digit { iterations = iterations * 10 + (fc - '0'); }
		action ext_start { out->extensions.ptr = p; }
		action ext { set_view(&out->extensions, out->extensions.ptr, p); }

		main := ('m=' @mark value %mext ',')?
			'r=' @mark printable+ %nonce ','
			's=' @mark base64 %salt ','
			'i=' posit_number $digit
			(',' extensions >ext_start %ext)?;

		write data noerror nofinal noentry;
		write init;
		write exec;
	}%%
	if (cs < %%{ write first_final; }%% || p != pe || iterations > INT32_MAX) {
		memset(out, 0, sizeof *out);
		return SCRAM_ERR_SYNTAX;
	}
	out->iterations = (int32_t)iterations;
	return SCRAM_OK;
}

int scram_parse_server_final(const uint8_t *msg, size_t len, scram_server_final_msg *out)
{
	memset(out, 0, sizeof *out);
	if (!msg)
		return SCRAM_ERR_SYNTAX;
	const uint8_t *p = msg, *pe = msg + len, *eof = pe, *mark = msg;
	int cs;
	(void)eof;
	%%{
		machine scram_server_final;
		include scram_common;

		action error { set_view(&out->error, mark, p); }
		action verifier { set_view(&out->verifier, mark, p); }
		action ext_start { out->extensions.ptr = p; }
		action ext { set_view(&out->extensions, out->extensions.ptr, p); }

		# server-error-value is open-ended (server-error-value-ext =
		# value), so any value is taken and the caller reads it.
		main := ('e=' @mark value %error | 'v=' @mark base64 %verifier)
			(',' extensions >ext_start %ext)?;

		write data noerror nofinal noentry;
		write init;
		write exec;
	}%%
	if (cs < %%{ write first_final; }%% || p != pe) {
		memset(out, 0, sizeof *out);
		return SCRAM_ERR_SYNTAX;
	}
	return SCRAM_OK;
}

int scram_parse_client_first(const uint8_t *msg, size_t len, scram_client_first_msg *out)
{
	memset(out, 0, sizeof *out);
	if (!msg)
		return SCRAM_ERR_SYNTAX;
	const uint8_t *p = msg, *pe = msg + len, *eof = pe, *mark = msg;
	int cs;
	(void)eof;
	%%{
		machine scram_client_first;
		include scram_common;

		action flag { out->cbind_flag = fc; }
		action cb_name { set_view(&out->cbind_name, mark, p); }
		action authzid { set_view(&out->authzid, mark, p); }
		action bare { out->bare.ptr = p; }
		action mext { set_view(&out->reserved_mext, mark, p); }
		action user { set_view(&out->user, mark, p); }
		action nonce { set_view(&out->nonce, mark, p); }
		action ext_start { out->extensions.ptr = p; }
		action ext { set_view(&out->extensions, out->extensions.ptr, p); }

		gs2_cbind_flag = 'p' @flag '=' @mark cb_name %cb_name | ('n' | 'y') @flag;
		gs2_header = gs2_cbind_flag ',' ('a=' @mark saslname_char+ %authzid)? ',';
		# n= may be empty: libpq sends "n=," (PostgreSQL ignores it).
		bare = ('m=' @mark value %mext ',')?
			'n=' @mark saslname_char* %user ','
			'r=' @mark printable+ %nonce
			(',' extensions >ext_start %ext)?;

		main := gs2_header bare >bare;

		write data noerror nofinal noentry;
		write init;
		write exec;
	}%%
	if (cs < %%{ write first_final; }%% || p != pe) {
		memset(out, 0, sizeof *out);
		return SCRAM_ERR_SYNTAX;
	}
	out->bare.len = (size_t)(pe - out->bare.ptr);
	return SCRAM_OK;
}

int scram_parse_client_final(const uint8_t *msg, size_t len, scram_client_final_msg *out)
{
	memset(out, 0, sizeof *out);
	if (!msg)
		return SCRAM_ERR_SYNTAX;
	const uint8_t *p = msg, *pe = msg + len, *eof = pe, *mark = msg;
	const uint8_t *proof_comma = msg;
	int cs;
	(void)eof;
	%%{
		machine scram_client_final;
		include scram_common;

		action channel_binding { set_view(&out->channel_binding, mark, p); }
		action nonce { set_view(&out->nonce, mark, p); }
		action ext_start { out->extensions.ptr = p; }
		action ext { set_view(&out->extensions, out->extensions.ptr, p); }
		action proof_comma { proof_comma = p; }
		action proof { set_view(&out->proof, mark, p); }

		# Extensions cannot be named p, so the "," before "p=" is known
		# once the letter after it is read; proof_comma is set at every
		# candidate and the last one stands.
		main := 'c=' @mark base64 %channel_binding ','
			'r=' @mark printable+ %nonce
			(',' extensions >ext_start %ext)?
			',' >proof_comma 'p=' @mark base64 %proof;

		write data noerror nofinal noentry;
		write init;
		write exec;
	}%%
	if (cs < %%{ write first_final; }%% || p != pe) {
		memset(out, 0, sizeof *out);
		return SCRAM_ERR_SYNTAX;
	}
	set_view(&out->without_proof, msg, proof_comma);
	return SCRAM_OK;
}
