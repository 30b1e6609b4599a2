-- Notices/warnings with DETAIL, HINT and every field.
DO $$BEGIN RAISE NOTICE 'hello from DO block'; END$$;
DO $$BEGIN RAISE NOTICE 'with detail' USING DETAIL = 'the detail', HINT = 'the hint'; END$$;
DO $$BEGIN RAISE WARNING 'a warning' USING ERRCODE = '01001'; END$$;
DO $$BEGIN RAISE INFO 'an info'; END$$;
DO $$BEGIN RAISE LOG 'a log line (not sent)'; END$$;
SET client_min_messages = debug1;
DO $$BEGIN RAISE DEBUG 'a debug line'; END$$;
RESET client_min_messages;
DO $$BEGIN RAISE DEBUG 'debug not sent anymore'; END$$;
\set VERBOSITY verbose
\set SHOW_CONTEXT always
DO $$BEGIN
  RAISE NOTICE USING MESSAGE = 'verbose notice', DETAIL = 'd', HINT = 'h',
    COLUMN = 'c', CONSTRAINT = 'k', DATATYPE = 't', TABLE = 'tb', SCHEMA = 's';
END$$;
\set VERBOSITY default
\set SHOW_CONTEXT errors
-- notices interleaved with data rows
CREATE FUNCTION noisy(i int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'row %', i;
  RETURN i * 10;
END$$;
SELECT noisy(g) FROM generate_series(1, 5) g;
-- server-generated notices
DROP TABLE IF EXISTS no_such_table_here;
CREATE TEMP TABLE IF NOT EXISTS nt(x int);
CREATE TEMP TABLE IF NOT EXISTS nt(x int);
-- notice followed by an error in the same statement
DO $$BEGIN RAISE NOTICE 'before the error'; PERFORM 1/0; END$$;
DROP FUNCTION noisy(int);
