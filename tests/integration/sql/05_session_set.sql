-- Session state (SET/SHOW) across statements: every statement may run on a
-- different pooled backend through the gateway.
SHOW search_path;
SHOW application_name;
SHOW TimeZone;
SHOW DateStyle;
CREATE SCHEMA s1;
CREATE TABLE s1.t (v text);
INSERT INTO s1.t VALUES ('from s1');
SET search_path = s1, public;
SHOW search_path;
SELECT * FROM t;
SELECT 1;
SELECT * FROM t;
SET application_name = 'psql-session-test';
SHOW application_name;
SELECT current_setting('application_name');
SET TimeZone = 'America/New_York';
SELECT timestamptz '2024-07-01 12:00:00+00' AS ny;
SHOW TimeZone;
SET DateStyle = 'German';
SELECT date '2024-01-02' AS german_date;
SET DateStyle = 'SQL, DMY';
SELECT date '2024-01-02' AS sql_dmy, timestamptz '2024-07-01 12:00:00+00' AS ts;
SET IntervalStyle = 'postgres_verbose';
SELECT interval '1 day 2 hours' AS iv;
SET extra_float_digits = 0;
SELECT 0.1::float8 + 0.2::float8 AS sum;
SET statement_timeout = '5s';
SHOW statement_timeout;
SET work_mem = '8MB';
SET my.custom_var = 'hello';
SELECT current_setting('my.custom_var');
SELECT set_config('my.other_var', 'via set_config', false);
SELECT current_setting('my.other_var');
SELECT 'several statements later' AS x;
SHOW work_mem;
SHOW statement_timeout;
SHOW DateStyle;
SHOW TimeZone;
SHOW search_path;
SHOW application_name;
-- SET LOCAL only lasts for the transaction
BEGIN;
SET LOCAL work_mem = '16MB';
SHOW work_mem;
COMMIT;
SHOW work_mem;
-- SET inside a rolled-back transaction is undone
BEGIN;
SET search_path = public;
SHOW search_path;
ROLLBACK;
SHOW search_path;
-- ... and inside a committed one it persists
BEGIN;
SET work_mem = '9MB';
COMMIT;
SHOW work_mem;
-- SET in a failed transaction
BEGIN;
SET work_mem = '10MB';
SELECT 1/0;
COMMIT;
SHOW work_mem;
-- SET inside a savepoint that is rolled back
BEGIN;
SAVEPOINT sp;
SET work_mem = '11MB';
ROLLBACK TO SAVEPOINT sp;
SHOW work_mem;
COMMIT;
SHOW work_mem;
-- RESET
RESET work_mem;
SHOW work_mem;
RESET ALL;
SHOW search_path;
SHOW DateStyle;
SHOW TimeZone;
SHOW application_name;
SHOW statement_timeout;
SELECT current_setting('my.custom_var', true) AS after_reset_all;
-- session characteristics
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ;
BEGIN;
SHOW transaction_isolation;
COMMIT;
SET default_transaction_read_only = on;
CREATE TABLE s1.should_fail (x int);
RESET default_transaction_read_only;
RESET default_transaction_isolation;
SHOW transaction_isolation;
-- SET ROLE / SESSION AUTHORIZATION
CREATE ROLE other_role_05;
SET ROLE other_role_05;
SELECT current_user, session_user;
SELECT 'again' AS x, current_user;
RESET ROLE;
SELECT current_user;
DROP ROLE other_role_05;
-- invalid SET
SET no_such_parameter = 1;
SET work_mem = 'lots';
\echo :LAST_ERROR_SQLSTATE
SET TimeZone = 'Not/AZone';
DROP SCHEMA s1 CASCADE;
