-- Transactions: BEGIN/COMMIT/ROLLBACK, errors inside, savepoints.
CREATE TABLE tx (id int PRIMARY KEY, v text);
BEGIN;
INSERT INTO tx VALUES (1, 'a');
SELECT * FROM tx;
COMMIT;
BEGIN;
INSERT INTO tx VALUES (2, 'b');
ROLLBACK;
SELECT * FROM tx ORDER BY id;
-- error inside a transaction, then ROLLBACK
BEGIN;
INSERT INTO tx VALUES (3, 'c');
INSERT INTO tx VALUES (1, 'dup');
SELECT 1;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tx VALUES (4, 'd');
ROLLBACK;
SELECT * FROM tx ORDER BY id;
-- COMMIT of a failed transaction reports ROLLBACK
BEGIN;
SELECT 1/0;
COMMIT;
SELECT 'after failed commit' AS x;
-- SAVEPOINTs
BEGIN;
INSERT INTO tx VALUES (10, 'ten');
SAVEPOINT a;
INSERT INTO tx VALUES (11, 'eleven');
SAVEPOINT b;
INSERT INTO tx VALUES (1, 'dup');
ROLLBACK TO SAVEPOINT b;
INSERT INTO tx VALUES (12, 'twelve');
RELEASE SAVEPOINT a;
SAVEPOINT c;
INSERT INTO tx VALUES (13, 'thirteen');
ROLLBACK TO c;
COMMIT;
SELECT * FROM tx ORDER BY id;
ROLLBACK TO SAVEPOINT nowhere;
BEGIN;
ROLLBACK TO SAVEPOINT nowhere;
ROLLBACK;
-- warnings from transaction control
COMMIT;
ROLLBACK;
BEGIN;
BEGIN;
COMMIT;
-- START TRANSACTION with modes
START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY;
SHOW transaction_isolation;
SHOW transaction_read_only;
INSERT INTO tx VALUES (20, 'ro');
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM tx;
COMMIT AND CHAIN;
SHOW transaction_isolation;
INSERT INTO tx VALUES (21, 'chained');
COMMIT;
BEGIN;
SELECT 1;
END;
BEGIN;
INSERT INTO tx VALUES (22, 'aborted via ABORT');
ABORT;
SELECT * FROM tx ORDER BY id;
-- statements that cannot run in a transaction block
BEGIN;
VACUUM tx;
ROLLBACK;
VACUUM tx;
-- transaction with a multi-statement string inside
BEGIN;
INSERT INTO tx VALUES (30, 'x') \; INSERT INTO tx VALUES (31, 'y');
SELECT count(*) FROM tx;
ROLLBACK;
-- PREPARE TRANSACTION is disabled (max_prepared_transactions = 0)
BEGIN;
PREPARE TRANSACTION 'gid1';
SELECT txid_current_if_assigned() IS NULL AS no_xid;
DROP TABLE tx;
