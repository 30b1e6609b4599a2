/*
 * The SQL lexer behind the statement classifier (src/sql/stmt.c): the token
 * rules of PostgreSQL's scan.l, kept only as fine as splitting a query
 * string into statements and classifying them needs. Ragel 6 input.
 *
 * What must match the server byte for byte is where every string, quoted
 * identifier and comment starts and ends, because a ';' inside one of them
 * never separates statements. Everything else (numbers, operators) only has
 * to keep tokens apart. The scanner never fails: any byte no rule wants is
 * an STMT_TOK_OTHER token, and a string or comment still open at the end of
 * the input comes out as one token flagged unterminated.
 */
#include <string.h>

#include "stmt.h"

typedef struct stmt_lexer {
	stmt_tok_fn fn;
	void *arg;
	const unsigned char *open;   /* start of the string/comment being read, or NULL */
	const unsigned char *closed; /* a quote string's closing quote + 1, while deciding
				      * whether a continuation follows; else NULL */
	stmt_tok_type open_type;
	const unsigned char *tag; /* dollar quote: the opening delimiter, both '$' included */
	size_t tag_len;
	size_t depth; /* block comment nesting */
	int esc;      /* the quote string being read takes backslash escapes */
} stmt_lexer;

static void stmt_lex_emit(stmt_lexer *lx, stmt_tok_type type, const unsigned char *s,
			  const unsigned char *e, bool unterminated)
{
	stmt_tok t;
	t.type = type;
	t.unterminated = unterminated;
	t.s = (const char *)s;
	t.e = (const char *)e;
	lx->fn(lx->arg, &t);
}

/*
 * scan.l's operator rule: a run of operator characters stops before any
 * "/ *" or "--" (a comment starts there), and a multi-character operator
 * loses its trailing '+'/'-' unless it holds a character SQL operators never
 * use, so "=-1" is "=" then "-1". Emits the operator(s) in [ts, te) and
 * returns where the lexer goes on.
 */
static const unsigned char *stmt_lex_op(stmt_lexer *lx, const unsigned char *ts, const unsigned char *te,
					const unsigned char *pe)
{
	const unsigned char *cut = te, *end;
	/* The machine already refuses operators containing a comment start;
	 * the longest one it accepts may still end just before the second
	 * character of one. */
	if (cut < pe && ((cut[-1] == '/' && *cut == '*') || (cut[-1] == '-' && *cut == '-')))
		cut--;
	end = cut;
	if (end - ts > 1 && (end[-1] == '+' || end[-1] == '-')) {
		const unsigned char *q;
		for (q = ts; q < end - 1; q++)
			if (strchr("~!@#^&|`?%", *q) != NULL)
				break;
		if (q == end - 1) {
			do
				end--;
			while (end - ts > 1 && (end[-1] == '+' || end[-1] == '-'));
		}
	}
	stmt_lex_emit(lx, STMT_TOK_OP, ts, end, false);
	/* What was chopped off is all '+' and '-', so each is an operator of
	 * its own. scan.l finds them one at a time, reading the rest of the
	 * run again each time: quadratic on a long run, which a gateway
	 * lexing every query cannot afford. */
	for (; end < cut; end++)
		stmt_lex_emit(lx, STMT_TOK_OP, end, end + 1, false);
	return cut;
}

%%{
	machine stmt_lexer;
	alphtype unsigned char;

	sql_space = [ \t\n\r\f\v];
	horiz_space = [ \t\f\v];
	newline = [\n\r];
	line_comment = '--' [^\n\r]*;
	high = 0x80..0xff;
	ident_start = [A-Za-z_] | high;
	ident_cont = ident_start | [0-9$];
	dolq_start = [A-Za-z_] | high;
	dolq_cont = dolq_start | [0-9];
	op_chars = [~!@#^&|`?+\-*/%<>=];
	dec_digit = [0-9];
	hex_digit = [0-9A-Fa-f];
	decint = dec_digit ('_'? dec_digit)*;
	numeric = decint '.' decint? | '.' decint;
	number = decint
	       | '0' [xX] ('_'? hex_digit)+
	       | '0' [oO] ('_'? [0-7])+
	       | '0' [bB] ('_'? [01])+
	       | numeric
	       | (decint | numeric) [eE] [+\-]? decint;
	# scan.l's {whitespace_with_newline}: a quote string followed by this and
	# another quote goes on (SQL's string continuation), in the same mode.
	ws_nl = (horiz_space | line_comment)* newline (sql_space | line_comment newline)*;

	# Nested block comments, as scan.l's <xc> state.
	comment := |*
		'/*' => { lx.depth++; };
		'*/' => {
			if (--lx.depth == 0) {
				stmt_lex_emit(&lx, STMT_TOK_COMMENT, lx.open, p + 1, false);
				lx.open = NULL;
				fgoto main;
			}
		};
		[^*/]+;
		any;
	*|;

	# '...' (standard_conforming_strings on), U&'...', B'...' and friends.
	sq := |*
		"''";
		[^']+;
		"'" => { lx.closed = p + 1; fgoto qcont; };
	*|;

	# E'...' and, with standard_conforming_strings off, '...'.
	esq := |*
		"''";
		'\\' any;
		'\\';
		[^'\\]+;
		"'" => { lx.closed = p + 1; fgoto qcont; };
	*|;

	# After a quote string's closing quote: either a continuation, or the
	# string ends at the quote and the lexer goes back over what it read.
	qcont := |*
		ws_nl "'" => {
			lx.closed = NULL;
			if (lx.esc)
				fgoto esq;
			fgoto sq;
		};
		any => {
			stmt_lex_emit(&lx, STMT_TOK_STRING, lx.open, lx.closed, false);
			lx.open = lx.closed = NULL;
			fexec ts;
			fgoto main;
		};
	*|;

	dq := |*
		'""';
		[^"]+;
		'"' => {
			stmt_lex_emit(&lx, STMT_TOK_QIDENT, lx.open, p + 1, false);
			lx.open = NULL;
			fgoto main;
		};
	*|;

	# Inside $tag$...$tag$. A delimiter with another tag ends nothing; its
	# last '$' may open the real end delimiter, so it is read again.
	dolq := |*
		'$' (dolq_start dolq_cont*)? '$' => {
			if ((size_t)(te - ts) == lx.tag_len && memcmp(ts, lx.tag, lx.tag_len) == 0) {
				stmt_lex_emit(&lx, STMT_TOK_STRING, lx.open, te, false);
				lx.open = NULL;
				fgoto main;
			}
			fexec te - 1;
		};
		'$' dolq_start dolq_cont*;
		[^$]+;
		'$';
	*|;

	main := |*
		sql_space+;
		line_comment => { stmt_lex_emit(&lx, STMT_TOK_COMMENT, ts, te, false); };
		'/*' => {
			lx.open = ts;
			lx.open_type = STMT_TOK_COMMENT;
			lx.depth = 1;
			fgoto comment;
		};
		"'" => {
			lx.open = ts;
			lx.open_type = STMT_TOK_STRING;
			lx.esc = backslash_quotes;
			if (lx.esc)
				fgoto esq;
			fgoto sq;
		};
		[eE] "'" => {
			lx.open = ts;
			lx.open_type = STMT_TOK_STRING;
			lx.esc = 1;
			fgoto esq;
		};
		[uU] '&' "'" => {
			lx.open = ts;
			lx.open_type = STMT_TOK_STRING;
			lx.esc = 0;
			fgoto sq;
		};
		'"' | [uU] '&' '"' => {
			lx.open = ts;
			lx.open_type = STMT_TOK_QIDENT;
			fgoto dq;
		};
		'$' (dolq_start dolq_cont*)? '$' => {
			lx.open = ts;
			lx.open_type = STMT_TOK_STRING;
			lx.tag = ts;
			lx.tag_len = (size_t)(te - ts);
			fgoto dolq;
		};
		'$' dec_digit+ => { stmt_lex_emit(&lx, STMT_TOK_PARAM, ts, te, false); };
		ident_start ident_cont* => { stmt_lex_emit(&lx, STMT_TOK_IDENT, ts, te, false); };
		number => { stmt_lex_emit(&lx, STMT_TOK_NUMBER, ts, te, false); };
		(op_chars+ - (any* ('/*' | '--') any*)) => {
			const unsigned char *cut = stmt_lex_op(&lx, ts, te, pe);
			if (cut != te)
				fexec cut;
		};
		';' => { stmt_lex_emit(&lx, STMT_TOK_SEMI, ts, te, false); };
		[()\[\],.:] => { stmt_lex_emit(&lx, STMT_TOK_PUNCT, ts, te, false); };
		any => { stmt_lex_emit(&lx, STMT_TOK_OTHER, ts, te, false); };
	*|;

	write data noerror nofinal noentry;
}%%

void stmt_lex(const char *sql, size_t len, unsigned opts, stmt_tok_fn fn, void *arg)
{
	const unsigned char *p = (const unsigned char *)sql;
	const unsigned char *pe = p + len;
	const unsigned char *eof = pe;
	const unsigned char *ts = NULL, *te = NULL;
	int cs, act = 0;
	const int backslash_quotes = (opts & STMT_OPT_BACKSLASH_QUOTES) != 0;
	stmt_lexer lx;

	memset(&lx, 0, sizeof lx);
	lx.fn = fn;
	lx.arg = arg;
	if (len == 0)
		return;
	%% write init;
	%% write exec;
	(void)act;

	if (lx.closed != NULL) {
		/* Input ended right after a closing quote: a complete string. */
		stmt_lex_emit(&lx, STMT_TOK_STRING, lx.open, lx.closed, false);
	} else if (lx.open != NULL) {
		/* The server will report "unterminated ..." itself. */
		stmt_lex_emit(&lx, lx.open_type, lx.open, pe, true);
	} else if (p < pe) {
		/* Not reachable (every machine takes any byte); if it ever is,
		 * the rest is one unreadable token rather than lost. */
		stmt_lex_emit(&lx, STMT_TOK_OTHER, p, pe, true);
	}
}
