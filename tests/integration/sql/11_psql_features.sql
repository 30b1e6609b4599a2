-- psql features that only use the simple query protocol.
\set ECHO queries
SELECT 'echo queries' AS mode;
\set ECHO errors
SELECT 'echo errors' AS mode;
SELECT 1/0;
\set ECHO none
SELECT 'echo none' AS mode;
\set ECHO all
\echo :ECHO
SELECT 42 AS answer, 'forty-two' AS word \gset
\echo :answer :word
SELECT 'v_' || g AS name, g AS val FROM generate_series(1, 2) g \gset
SELECT 'SELECT ' || g || ' AS gexec' FROM generate_series(1, 3) g \gexec
\if :answer
\echo answer is true-ish
\else
\echo no
\endif
SELECT :answer + 1 AS plus;
SELECT :'word' AS quoted, :"word" IS NULL AS ident;
\set v 'it''s'
SELECT :'v' AS lit;
SELECT 1 AS a, 2 AS b \g
SELECT 'x' AS x, g FROM generate_series(1, 3) g \crosstabview x g g
\pset format html
SELECT 1 AS h, '<b>' AS tag;
\pset format aligned
\pset border 2
SELECT 1 AS a, 'b' AS b;
\pset border 1
\pset tuples_only on
SELECT 'tuples only' AS t;
\pset tuples_only off
\pset footer off
SELECT 1 AS nofooter;
\pset footer on
CREATE TABLE feat (id serial PRIMARY KEY, name text NOT NULL DEFAULT 'x', ts timestamptz);
CREATE INDEX feat_name ON feat(name);
COMMENT ON TABLE feat IS 'a table';
\d feat
\dt feat
\di feat*
\df+ pg_catalog.lower
\dn pg_catalog
\dT int4
\l pgw_no_such_db
INSERT INTO feat (name) VALUES ('a'), ('b') RETURNING id, name;
\echo :ROW_COUNT :ERROR
SELECT * FROM feat ORDER BY id \g
DROP TABLE feat;
\echo end
