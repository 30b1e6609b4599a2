-- Errors with every field, in all verbosity levels.
SELEC 1;
\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
SELECT 1/0;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM no_such_table;
\echo :LAST_ERROR_SQLSTATE
SELECT no_such_column FROM (SELECT 1 AS a) s;
SELECT 'abc'::int;
SELECT 1 +
  ;
CREATE TABLE err_t (id int PRIMARY KEY, name text NOT NULL, qty int CHECK (qty > 0),
                    parent int REFERENCES err_t(id));
INSERT INTO err_t VALUES (1, 'one', 1, NULL);
INSERT INTO err_t VALUES (1, 'dup', 1, NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO err_t VALUES (2, NULL, 1, NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO err_t VALUES (3, 'three', -5, NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO err_t VALUES (4, 'four', 4, 99);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY verbose
INSERT INTO err_t VALUES (1, 'dup', 1, NULL);
INSERT INTO err_t VALUES (2, NULL, 1, NULL);
INSERT INTO err_t VALUES (3, 'three', -5, NULL);
INSERT INTO err_t VALUES (4, 'four', 4, 99);
SELECT 1/0;
SELEC 1;
-- RAISE with every optional field
DO $$BEGIN
  RAISE EXCEPTION USING MESSAGE = 'custom failure', ERRCODE = 'P0042',
    DETAIL = 'some detail', HINT = 'some hint', COLUMN = 'col', CONSTRAINT = 'con',
    DATATYPE = 'typ', TABLE = 'tab', SCHEMA = 'sch';
END$$;
\echo :LAST_ERROR_SQLSTATE
-- error with CONTEXT from a PL/pgSQL function, internal query and position
CREATE FUNCTION err_f(x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN x / 0;
END$$;
SELECT err_f(1);
CREATE FUNCTION err_g() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'SELECT * FROM missing_in_dynamic';
END$$;
SELECT err_g();
\set SHOW_CONTEXT always
SELECT err_f(2);
\set VERBOSITY terse
SELECT 1/0;
INSERT INTO err_t VALUES (1, 'dup', 1, NULL);
\set VERBOSITY sqlstate
SELECT 1/0;
\set VERBOSITY default
\set SHOW_CONTEXT errors
-- unicode in error messages
SELECT "colonne_é☃" FROM err_t;
SELECT 'x' || E'\xff';
DROP TABLE err_t;
SELECT 'still alive' AS ok;
