-- Several statements in one Query message, and the empty query.
SELECT 1 AS first \; SELECT 'second' AS second \; SELECT 3 AS third;
SELECT 1 AS a \; SELECT 1/0 AS boom \; SELECT 3 AS never;
\echo :SQLSTATE :LAST_ERROR_SQLSTATE
CREATE TEMP TABLE m(x int) \; INSERT INTO m VALUES (1), (2) \; UPDATE m SET x = x + 10 \; SELECT * FROM m ORDER BY x;
\echo :ROW_COUNT
INSERT INTO m VALUES (3) \; DELETE FROM m WHERE x = 3 \; SELECT count(*) FROM m;
-- the empty query (EmptyQueryResponse)
;
\echo :SQLSTATE
;;;
SELECT 'after empty' AS x;
-- a comment-only query is also empty
-- just a comment
/* block comment only */ ;
-- empty statements inside a multi-statement string
SELECT 1 AS x \; \; SELECT 2 AS y;
-- transaction control inside a multi-statement string
BEGIN \; INSERT INTO m VALUES (100) \; COMMIT \; SELECT count(*) FROM m;
BEGIN \; INSERT INTO m VALUES (200) \; ROLLBACK \; SELECT count(*) FROM m;
-- implicit transaction: an error rolls back the whole string
INSERT INTO m VALUES (300) \; SELECT 1/0 \; INSERT INTO m VALUES (301);
SELECT count(*) AS after_implicit_rollback FROM m;
-- a SET inside a failed implicit transaction block does not stick
SET work_mem = '7MB' \; SELECT 1/0;
SHOW work_mem;
-- notices between results
SELECT 1 AS a \; DO $$BEGIN RAISE NOTICE 'between'; END$$ \; SELECT 2 AS b;
