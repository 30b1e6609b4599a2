// node-postgres through an endpoint: named statements, row-limited
// cursors (pg-cursor: Execute with a row count and Flush, no Sync until the
// cursor is done, also outside a transaction), errors, a pool. Prints one
// JSON document of everything seen, for comparison with another endpoint.
'use strict';
const { Client, Pool } = require('pg');
const Cursor = require('pg-cursor');

const port = Number(process.argv[2]);
const cfg = { host: '127.0.0.1', port, user: 'pgw', database: 'pgw' };

function err(e) {
  return { error: e.code, message: e.message, position: e.position || null };
}

async function attempt(out, fn) {
  try {
    out.push(await fn());
  } catch (e) {
    out.push(err(e));
  }
}

function read(cursor, n) {
  return new Promise((resolve, reject) => {
    cursor.read(n, (e, rows) => (e ? reject(e) : resolve(rows)));
  });
}

async function main() {
  const out = [];
  const a = new Client(cfg);
  const b = new Client(cfg);
  await a.connect();
  await b.connect();
  await a.query('DROP TABLE IF EXISTS node_t');
  await a.query('CREATE TABLE node_t (id int PRIMARY KEY, v text)');
  for (let i = 0; i < 10; i++) {
    const c = i % 2 ? a : b;
    const r = await c.query({ name: 'ins', text: 'INSERT INTO node_t VALUES ($1, $2) RETURNING id', values: [i, 'v' + i] });
    out.push(r.rows);
    const s = await c.query({ name: 'sel', text: 'SELECT v, $1::int AS k FROM node_t WHERE id = $1', values: [i] });
    out.push(s.rows, s.fields.map((f) => [f.name, f.dataTypeID]));
  }
  for (let i = 0; i < 6; i++) {
    await attempt(out, async () => (await a.query({ name: 'q' + i, text: 'SELECT $1::int + ' + i + ' AS x', values: [i] })).rows);
  }
  await attempt(out, async () => (await a.query({ name: 'bad', text: 'SELECT * FROM node_nope WHERE a = $1', values: [1] })).rows);
  await attempt(out, async () => (await a.query({ name: 'ins', text: 'INSERT INTO node_t VALUES ($1, $2) RETURNING id', values: [1, 'dup'] })).rows);
  await attempt(out, async () => (await a.query({ name: 'sel', text: 'SELECT v, $1::int AS k FROM node_t WHERE id = $1', values: [3] })).rows);
  await attempt(out, async () => (await a.query('SELECT 1/$1::int AS z', [0])).rows);
  await attempt(out, async () => (await a.query('SELECT $1::jsonb AS j, $2::bytea AS b', ['{"a":1}', Buffer.from([1, 2])])).rows);
  // Row-limited cursors: outside a transaction, then inside one.
  for (const c of [a, b]) {
    const cur = c.query(new Cursor('SELECT id FROM node_t WHERE id >= $1 ORDER BY id', [2]));
    out.push(await read(cur, 3), await read(cur, 3), await read(cur, 10), await read(cur, 1));
    await new Promise((resolve) => cur.close(resolve));
  }
  await b.query('BEGIN');
  const cur = b.query(new Cursor('SELECT g FROM generate_series(1, 100) g'));
  let total = 0;
  for (;;) {
    const rows = await read(cur, 17);
    if (rows.length === 0) break;
    total += rows.reduce((s, r) => s + r.g, 0);
  }
  out.push(total);
  await new Promise((resolve) => cur.close(resolve));
  await b.query('COMMIT');
  await a.end();
  await b.end();
  const pool = new Pool({ ...cfg, max: 4 });
  const res = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    pool.query({ name: 'p', text: 'SELECT $1::int * 2 AS d', values: [i] })));
  out.push(res.reduce((s, r) => s + r.rows[0].d, 0));
  await pool.end();
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
  process.stderr.write('scenario failed: ' + (e.stack || e) + '\n');
  process.exit(1);
});
