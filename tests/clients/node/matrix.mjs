// What the node clients send and expect back: the same values as tests/clients/matrix_data.py,
// in the forms node drivers use. The driver scripts run with TZ=UTC, so dates parse the same way
// on every machine. TARGET tells which server this is ("postgres" or "basin"); the scripts use it
// only where docs/clients.md lists a deliberate difference.

export const url = process.env.DATABASE_URL;
export const target = process.env.TARGET;
if (!url || !target) {
  throw new Error('DATABASE_URL and TARGET must be set');
}

export const TABLE = 'matrix_types';
export const VIEW = 'matrix_view';

// [column, SQL type, value sent as a parameter]
export const COLUMNS = [
  ['i2', 'SMALLINT', -32768],
  ['i4', 'INTEGER', 2147483647],
  ['i8', 'BIGINT', '9007199254740993'],
  ['f4', 'REAL', -1.5],
  ['f8', 'DOUBLE PRECISION', 3.141592653589793],
  ['num', 'NUMERIC(12,4)', '12345678.9010'],
  ['txt', 'TEXT', 'it\'s "ünïcödé", a\\b\ttab'],
  ['flag', 'BOOLEAN', true],
  ['bin', 'BYTEA', Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x27, 0x5c])],
  ['day', 'DATE', '2024-02-29'],
  ['clock', 'TIME', '13:45:30.123456'],
  ['ts', 'TIMESTAMP', '2024-02-29 13:45:30.123456'],
  ['tstz', 'TIMESTAMPTZ', '2024-02-29 13:45:30.123456+00'],
  ['span', 'INTERVAL', '1 day 02:03:04.5'],
  ['ints', 'INTEGER[]', [1, null, -3]],
  ['texts', 'TEXT[]', ['a', 'b c', 'd,"e"', null]],
  ['nothing', 'INTEGER', null],
];

export const NAMES = COLUMNS.map(([name]) => name);

export const TYPE_OIDS = {
  i2: 21, i4: 23, i8: 20, f4: 700, f8: 701, num: 1700, txt: 25, flag: 16, bin: 17, day: 1082,
  clock: 1083, ts: 1114, tstz: 1184, span: 1186, ints: 1007, texts: 1009, nothing: 23,
};

// SELECT CAST($1 AS SMALLINT) AS i2, ... over every column.
export function echoSql() {
  return 'SELECT ' + COLUMNS.map(([name, type], i) => `CAST($${i + 1} AS ${type}) AS ${name}`).join(', ');
}

export function params() {
  return COLUMNS.map(([, , value]) => value);
}

// Millisecond Dates: what both drivers make of the timestamps (JS Dates hold milliseconds).
export const TIMESTAMP = new Date(Date.UTC(2024, 1, 29, 13, 45, 30, 123));
export const DAY = new Date(Date.UTC(2024, 1, 29));

let failures = 0;

// Runs one named check; a failure is reported and makes the process exit non-zero at the end.
export async function check(name, body) {
  try {
    await body();
    console.log(`ok ${name}`);
  } catch (error) {
    failures += 1;
    console.log(`FAILED ${name}\n${error && error.stack ? error.stack : error}`);
  }
}

export function finish() {
  console.log(failures === 0 ? 'all checks passed' : `${failures} checks failed`);
  process.exitCode = failures === 0 ? 0 : 1;
}
