-- COPY FROM STDIN (inline data) and COPY TO STDOUT.
CREATE TABLE cp (id int PRIMARY KEY, name text, score numeric, created date);
COPY cp FROM STDIN;
10	ten	10.5	2024-03-01
11	eleven	\N	\N
12	twelve	12	2024-03-03
\.
\echo :ROW_COUNT
COPY cp (id, name) FROM STDIN (FORMAT csv);
20,"twenty, quoted"
21,
22,"multi
line"
\.
COPY cp FROM STDIN (FORMAT csv, HEADER true, DELIMITER ';');
id;name;score;created
30;thirty;3.5;2024-05-05
\.
-- a bad row aborts the COPY
COPY cp FROM STDIN;
40	forty	1	2024-01-01
notanint	bad row	1	2024-01-01
\.
\echo :LAST_ERROR_SQLSTATE
-- duplicate key in COPY
COPY cp FROM STDIN;
10	dup	1	2024-01-01
\.
SELECT count(*) FROM cp;
COPY cp TO STDOUT;
COPY cp TO STDOUT (FORMAT csv, HEADER);
COPY (SELECT id, name FROM cp WHERE id > 15 ORDER BY id) TO STDOUT (FORMAT csv, FORCE_QUOTE *);
COPY (SELECT g, md5(g::text) FROM generate_series(1, 2000) g) TO STDOUT;
COPY (SELECT 'ünïcödé ☃' AS u, E'tab\there' AS t, NULL AS n) TO STDOUT;
-- COPY inside a transaction, rolled back
BEGIN;
COPY cp (id, name) FROM STDIN;
50	fifty
51	fifty-one
\.
SELECT count(*) FROM cp;
ROLLBACK;
SELECT count(*) FROM cp;
-- COPY inside a committed transaction
BEGIN;
COPY cp (id, name) FROM STDIN;
60	sixty
\.
COMMIT;
-- \copy (client-side file via COPY FROM STDIN / TO STDOUT)
\copy cp (id, name) FROM stdin
70	seventy
71	seventy-one
\.
\copy (SELECT id, name FROM cp WHERE id >= 60 ORDER BY id) TO stdout
-- empty COPY
COPY cp FROM STDIN;
\.
COPY (SELECT 1 WHERE false) TO STDOUT;
-- COPY errors
COPY no_such_table FROM STDIN;
COPY cp TO '/definitely/not/allowed/path';
SELECT count(*) FROM cp;
DROP TABLE cp;
