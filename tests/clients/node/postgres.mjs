// postgres.js (npm `postgres`) against the server at DATABASE_URL: it prepares every statement and
// serializes parameters by the types the server describes, fetches array types from pg_type on
// connect, and reads cursors with Execute row limits (PortalSuspended).
import assert from 'node:assert/strict';
import postgres from 'postgres';

import {
  DAY, NAMES, TABLE, TIMESTAMP, TYPE_OIDS, check, echoSql, finish, params, target, url,
} from './matrix.mjs';

const sql = postgres(url, { max: 1, onnotice: () => {}, idle_timeout: 5 });

// What postgres.js returns for each column.
const RESULTS = {
  i2: -32768,
  i4: 2147483647,
  i8: '9007199254740993',
  f4: -1.5,
  f8: 3.141592653589793,
  num: '12345678.9010',
  txt: 'it\'s "ünïcödé", a\\b\ttab',
  flag: true,
  bin: Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x27, 0x5c]),
  day: DAY,
  clock: '13:45:30.123456',
  ts: TIMESTAMP,
  tstz: TIMESTAMP,
  span: '1 day 02:03:04.5',
  ints: [1, 2, -3],
  texts: ['a', 'b c', 'd,"e"'],
  nothing: null,
};

await check('session', async () => {
  const [row] = await sql`SELECT current_database() AS db, current_user AS who, version() AS version`;
  assert.equal(row.db, 'basin');
  assert.equal(row.who, 'basin');
  assert.match(row.version, /^PostgreSQL \d+\.\d+/);
  const [setting] = await sql`SELECT current_setting('DateStyle') AS style`;
  assert.equal(setting.style, 'ISO, MDY');
});

await check('every type as a parameter', async () => {
  // postgres.js parses a NULL element of a text-format array as 'NULL' (text) or NaN (numbers),
  // on PostgreSQL as on Basin, so its arrays here have no NULLs; pg.mjs covers NULL elements.
  const values = params();
  values[NAMES.indexOf('ints')] = [1, 2, -3];
  values[NAMES.indexOf('texts')] = ['a', 'b c', 'd,"e"'];
  const rows = await sql.unsafe(echoSql(), values);
  assert.deepEqual(rows.columns.map((c) => c.name), NAMES);
  assert.deepEqual(rows.columns.map((c) => c.type), NAMES.map((n) => TYPE_OIDS[n]));
  assert.deepEqual({ ...rows[0] }, RESULTS);
});

await check('describe reports parameter and column types', async () => {
  const described = await sql`SELECT ${1}::int4 + ${2}::int8 AS total, ${'x'}::text AS label`.describe();
  assert.deepEqual(described.types, [23, 20, 25]);
  assert.deepEqual(described.columns.map((c) => [c.name, c.type]), [['total', 20], ['label', 25]]);
});

await check('tagged template over the seeded table', async () => {
  const ids = [1, 2];
  const rows = await sql`SELECT id, num, day, tstz, i2 FROM ${sql(TABLE)} WHERE id IN ${sql(ids)} ORDER BY id`;
  assert.deepEqual(rows.map((r) => ({ ...r })), [
    { id: '1', num: '12345678.9010', day: DAY, tstz: TIMESTAMP, i2: -32768 },
    { id: '2', num: null, day: null, tstz: null, i2: null },
  ]);
  const [row] = await sql`SELECT count(*)::int AS n FROM ${sql(TABLE)} WHERE tstz = ${TIMESTAMP} OR flag = ${false}`;
  // The parameter is a millisecond Date: it does not equal the stored microseconds.
  assert.equal(row.n, 0);
});

await check('cursor reads in batches through portal row limits', async () => {
  const batches = [];
  await sql`SELECT x FROM generate_series(1, 7) AS t(x) ORDER BY x`.cursor(3, (rows) => {
    batches.push(rows.map((r) => Number(r.x)));
  });
  assert.deepEqual(batches, [[1, 2, 3], [4, 5, 6], [7]]);
});

await check('transaction and errors', async () => {
  const n = await sql.begin(async (tx) => {
    const [row] = await tx`SELECT count(*)::int AS n FROM ${tx(TABLE)} WHERE id < ${100}`;
    return row.n;
  });
  assert.equal(n, 2);
  await assert.rejects(sql`SELECT * FROM no_such_table_here`, (e) => e.code === '42P01');
  const [after] = await sql`SELECT ${41}::int + 1 AS n, ${40}::int + ${2}::int AS m`;
  // Basin types the literal 1 as bigint (docs/clients.md), which postgres.js returns as a string.
  assert.deepEqual({ ...after }, { n: target === 'basin' ? '42' : 42, m: 42 });
});

console.log(`target ${target}`);
await sql.end({ timeout: 5 });
finish();
