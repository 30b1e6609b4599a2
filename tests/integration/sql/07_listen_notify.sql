-- LISTEN/NOTIFY on one connection (the gateway must keep it on one backend).
LISTEN pgw_chan;
NOTIFY pgw_chan;
NOTIFY pgw_chan, 'hello listener';
SELECT pg_notify('pgw_chan', 'second payload');
SELECT 'a statement later' AS x;
NOTIFY pgw_chan, 'after another statement';
LISTEN "Other Chan";
NOTIFY "Other Chan", 'quoted channel ☃';
-- notifications in a transaction are delivered at commit
BEGIN;
NOTIFY pgw_chan, 'in tx 1';
NOTIFY pgw_chan, 'in tx 2';
NOTIFY pgw_chan, 'in tx 1';
SELECT 'before commit' AS x;
COMMIT;
BEGIN;
NOTIFY pgw_chan, 'rolled back';
ROLLBACK;
SELECT 1 AS nothing_delivered;
SELECT count(*) FROM pg_listening_channels();
UNLISTEN pgw_chan;
NOTIFY pgw_chan, 'not delivered';
NOTIFY "Other Chan", 'still delivered';
UNLISTEN *;
NOTIFY "Other Chan", 'not delivered either';
SELECT count(*) FROM pg_listening_channels();
