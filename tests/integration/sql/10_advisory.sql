-- Advisory locks held across statements.
SELECT pg_advisory_lock(1);
SELECT 'in between' AS x;
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT pg_try_advisory_lock(1) AS relock;
SELECT pg_advisory_unlock(1);
SELECT pg_advisory_unlock(1);
SELECT pg_advisory_unlock(1);
SELECT pg_try_advisory_lock(2, 3);
SELECT pg_advisory_lock_shared(4);
SELECT objid, mode, granted FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY objid, mode;
SELECT pg_advisory_unlock_all();
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- transaction-level advisory locks
BEGIN;
SELECT pg_advisory_xact_lock(7);
SELECT pg_try_advisory_xact_lock(8);
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
COMMIT;
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- a session lock taken inside a rolled-back transaction is kept
BEGIN;
SELECT pg_advisory_lock(9);
ROLLBACK;
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT pg_advisory_unlock(9);
