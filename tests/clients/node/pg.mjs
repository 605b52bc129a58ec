// node-postgres (npm `pg`) against the server at DATABASE_URL: session and catalog, every type as
// a parameter, the seeded table, errors with SQLSTATEs. Results are read as text, pg's default:
// its `binary: true` mode decodes int4, float8, dates and arrays wrongly on PostgreSQL itself.
import assert from 'node:assert/strict';
import pg from 'pg';

import {
  DAY, NAMES, TABLE, TIMESTAMP, TYPE_OIDS, VIEW, check, echoSql, finish, params, target, url,
} from './matrix.mjs';

const client = new pg.Client({ connectionString: url });
await client.connect();

// What node-postgres returns for each column in text format.
const TEXT_RESULTS = {
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
  span: { days: 1, hours: 2, minutes: 3, seconds: 4, milliseconds: 500 },
  ints: [1, null, -3],
  texts: ['a', 'b c', 'd,"e"', null],
  nothing: null,
};

function plain(row) {
  // pg's interval is a PostgresInterval object; compare its fields.
  return { ...row, span: row.span === null ? null : { ...row.span } };
}

await check('session and catalog', async () => {
  const version = await client.query('SHOW server_version_num');
  assert.ok(Number(version.rows[0].server_version_num) >= 150000);
  const who = await client.query('SELECT current_database() AS db, current_schema() AS schema, version() AS version');
  assert.equal(who.rows[0].db, 'basin');
  assert.equal(who.rows[0].schema, 'public');
  assert.match(who.rows[0].version, /^PostgreSQL \d+\.\d+/);
  const columns = await client.query(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    ['public', TABLE],
  );
  assert.deepEqual(columns.rows.slice(0, 7), [
    { attname: 'id', type: 'bigint', attnotnull: true },
    { attname: 'i2', type: 'smallint', attnotnull: false },
    { attname: 'i4', type: 'integer', attnotnull: false },
    { attname: 'i8', type: 'bigint', attnotnull: false },
    { attname: 'f4', type: 'real', attnotnull: false },
    { attname: 'f8', type: 'double precision', attnotnull: false },
    { attname: 'num', type: 'numeric(12,4)', attnotnull: false },
  ]);
  assert.deepEqual(columns.rows.slice(-3).map((r) => r.type), ['timestamp without time zone', 'timestamp with time zone', 'integer']);
  const relations = await client.query(
    `SELECT relname, relkind FROM pg_catalog.pg_class WHERE relname = ANY($1) ORDER BY relname`,
    [[TABLE, VIEW]],
  );
  assert.deepEqual(relations.rows, [{ relname: TABLE, relkind: 'r' }, { relname: VIEW, relkind: 'v' }]);
});

await check('every type as a parameter, text results', async () => {
  const result = await client.query({ text: echoSql(), values: params() });
  assert.deepEqual(result.fields.map((f) => f.name), NAMES);
  assert.deepEqual(result.fields.map((f) => f.dataTypeID), NAMES.map((n) => TYPE_OIDS[n]));
  assert.deepEqual(plain(result.rows[0]), plain(TEXT_RESULTS));
});

await check('seeded table by parameter', async () => {
  const result = await client.query(`SELECT id, i8, num, txt, day, tstz, bin FROM ${TABLE} WHERE id = ANY($1) ORDER BY id`, [[1, 2]]);
  assert.deepEqual(result.rows, [
    { id: '1', i8: '9007199254740993', num: '12345678.9010', txt: TEXT_RESULTS.txt, day: DAY, tstz: TIMESTAMP, bin: TEXT_RESULTS.bin },
    { id: '2', i8: null, num: null, txt: null, day: null, tstz: null, bin: null },
  ]);
  const view = await client.query(`SELECT * FROM ${VIEW}`);
  assert.deepEqual(view.rows, [{ id: '1', txt: TEXT_RESULTS.txt, num: '12345678.9010' }]);
});

await check('errors carry SQLSTATEs and the connection survives', async () => {
  await assert.rejects(client.query('SELECT * FROM no_such_table_here'), (e) => e.code === '42P01');
  await assert.rejects(client.query('SELECT no_such_column FROM matrix_types'), (e) => e.code === '42703');
  await assert.rejects(client.query('SELEC 1'), (e) => e.code === '42601');
  const after = await client.query('SELECT $1::int + 1 AS n, $2::int + $3::int AS m', [41, 40, 2]);
  // Basin types the integer literal 1 as bigint, so int + 1 is bigint (pg returns int8 as a
  // string); Postgres types it int4 (docs/clients.md). int + int is int on both.
  assert.deepEqual(after.rows, [{ n: target === 'basin' ? '42' : 42, m: 42 }]);
});

await check('transaction block', async () => {
  await client.query('BEGIN');
  const inside = await client.query('SELECT count(*)::int AS n FROM matrix_types WHERE id < $1', [100]);
  await client.query('COMMIT');
  assert.deepEqual(inside.rows, [{ n: 2 }]);
});

console.log(`target ${target}`);
await client.end();
finish();
