//! The sqlx part of the client matrix (tests/clients/test_sqlx_matrix.py runs it against real
//! PostgreSQL and against Basin on the table `matrix_data.py` seeds).
//!
//! sqlx prepares every statement with the parameter types of the Rust values bound to it, sends
//! and reads everything in binary, and refuses a result column whose described type does not
//! match the Rust type it is decoded into, so each check below also pins the type Basin
//! describes. `numeric`, dates and times go through sqlx's own `bigdecimal` and `chrono`
//! support, `interval` through `PgInterval`.
//!
//! Usage: `sqlx_matrix "host=... port=... user=basin dbname=basin"`. Prints `N checks passed`,
//! or exits 1 with the first failed check.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::types::PgInterval;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::types::BigDecimal;
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::{Column, Connection, Either, Executor, Row, Statement, TypeInfo};

type BoxError = Box<dyn Error + Sync + Send>;

struct Checks {
    passed: usize,
}

impl Checks {
    fn equal<T: PartialEq + std::fmt::Debug>(
        &mut self,
        want: T,
        got: T,
        what: &str,
    ) -> Result<(), BoxError> {
        if want != got {
            return Err(format!("{what}: want {want:?} got {got:?}").into());
        }
        self.passed += 1;
        Ok(())
    }
}

const TEXT: &str = "it's \"\u{fc}n\u{ef}c\u{f6}d\u{e9}\", a\\b\ttab";
const BYTES: &[u8] = b"\x00\x01\xfe\xff'\\";
const NUMERIC: &str = "12345678.9010";

fn day() -> Result<NaiveDate, BoxError> {
    NaiveDate::from_ymd_opt(2024, 2, 29).ok_or_else(|| "bad date".into())
}

fn clock() -> Result<NaiveTime, BoxError> {
    NaiveTime::from_hms_micro_opt(13, 45, 30, 123_456).ok_or_else(|| "bad time".into())
}

fn timestamp() -> Result<NaiveDateTime, BoxError> {
    Ok(day()?.and_time(clock()?))
}

fn span() -> PgInterval {
    PgInterval {
        months: 0,
        days: 1,
        microseconds: (2 * 3600 + 3 * 60 + 4) * 1_000_000 + 500_000,
    }
}

const ECHO: &str = "SELECT CAST($1 AS SMALLINT), CAST($2 AS INTEGER), CAST($3 AS BIGINT), \
    CAST($4 AS REAL), CAST($5 AS DOUBLE PRECISION), CAST($6 AS NUMERIC(12,4)), CAST($7 AS TEXT), \
    CAST($8 AS BOOLEAN), CAST($9 AS BYTEA), CAST($10 AS DATE), CAST($11 AS TIME), \
    CAST($12 AS TIMESTAMP), CAST($13 AS TIMESTAMPTZ), CAST($14 AS INTERVAL), \
    CAST($15 AS INTEGER[]), CAST($16 AS TEXT[]), CAST($17 AS INTEGER)";

const WANTED_TYPES: [&str; 17] = [
    "INT2",
    "INT4",
    "INT8",
    "FLOAT4",
    "FLOAT8",
    "NUMERIC",
    "TEXT",
    "BOOL",
    "BYTEA",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "INTERVAL",
    "INT4[]",
    "TEXT[]",
    "INT4",
];

/// `host=h port=p user=u dbname=d connect_timeout=s` (libpq keywords, as the tests pass them)
/// as sqlx options and the connect timeout (sqlx has none of its own for one connection).
fn connect_options(conninfo: &str) -> Result<(PgConnectOptions, Duration), BoxError> {
    let mut options = PgConnectOptions::new_without_pgpass();
    let mut timeout = Duration::from_secs(10);
    for pair in conninfo.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("not key=value: {pair}"))?;
        options = match key {
            "host" => options.host(value),
            "port" => options.port(value.parse()?),
            "user" => options.username(value),
            "dbname" => options.database(value),
            "password" => options.password(value),
            "connect_timeout" => {
                timeout = Duration::from_secs(value.parse()?);
                options
            }
            other => return Err(format!("unknown connection keyword {other}").into()),
        };
    }
    Ok((options, timeout))
}

async fn echo_round_trip(conn: &mut PgConnection, checks: &mut Checks) -> Result<(), BoxError> {
    // `prepare`, not `describe`: sqlx's `describe` (what its `query!` macros run at build time)
    // also asks `EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE ...` for nullability, which Basin does
    // not answer (docs/clients.md).
    let statement = conn.prepare(ECHO).await?;
    let wanted: Vec<String> = WANTED_TYPES.iter().map(|t| (*t).to_owned()).collect();
    let parameter_types: Vec<String> = match statement.parameters() {
        Some(Either::Left(types)) => types.iter().map(|t| t.name().to_owned()).collect(),
        _ => Vec::new(),
    };
    checks.equal(wanted.clone(), parameter_types, "described parameter types")?;
    let column_types: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.type_info().name().to_owned())
        .collect();
    checks.equal(wanted, column_types, "described column types")?;

    let ints = vec![Some(1_i32), None, Some(-3)];
    let texts = vec![
        Some("a".to_owned()),
        Some("b c".to_owned()),
        Some("d,\"e\"".to_owned()),
        None,
    ];
    let stamp = timestamp()?;
    let row: PgRow = sqlx::query(ECHO)
        .bind(-32768_i16)
        .bind(2_147_483_647_i32)
        .bind(9_007_199_254_740_993_i64)
        .bind(-1.5_f32)
        .bind(std::f64::consts::PI)
        .bind(BigDecimal::from_str(NUMERIC)?)
        .bind(TEXT)
        .bind(true)
        .bind(BYTES)
        .bind(day()?)
        .bind(clock()?)
        .bind(stamp)
        .bind(stamp.and_utc())
        .bind(span())
        .bind(&ints)
        .bind(&texts)
        .bind(None::<i32>)
        .fetch_one(&mut *conn)
        .await?;
    checks.equal(-32768_i16, row.try_get(0)?, "int2")?;
    checks.equal(2_147_483_647_i32, row.try_get(1)?, "int4")?;
    checks.equal(9_007_199_254_740_993_i64, row.try_get(2)?, "int8")?;
    checks.equal(-1.5_f32, row.try_get(3)?, "float4")?;
    checks.equal(std::f64::consts::PI, row.try_get(4)?, "float8")?;
    // Text, so the scale (trailing zeros) counts too.
    checks.equal(
        NUMERIC.to_owned(),
        row.try_get::<BigDecimal, _>(5)?.to_string(),
        "numeric(12,4)",
    )?;
    checks.equal(TEXT, row.try_get::<&str, _>(6)?, "text")?;
    checks.equal(true, row.try_get(7)?, "bool")?;
    checks.equal(BYTES, row.try_get::<&[u8], _>(8)?, "bytea")?;
    checks.equal(day()?, row.try_get(9)?, "date")?;
    checks.equal(clock()?, row.try_get(10)?, "time")?;
    checks.equal(stamp, row.try_get(11)?, "timestamp")?;
    checks.equal(
        stamp.and_utc(),
        row.try_get::<DateTime<Utc>, _>(12)?,
        "timestamptz",
    )?;
    checks.equal(span(), row.try_get(13)?, "interval")?;
    checks.equal(ints, row.try_get::<Vec<Option<i32>>, _>(14)?, "int4[]")?;
    checks.equal(texts, row.try_get::<Vec<Option<String>>, _>(15)?, "text[]")?;
    checks.equal(None, row.try_get::<Option<i32>, _>(16)?, "NULL int4")?;
    Ok(())
}

async fn table_reads(conn: &mut PgConnection, checks: &mut Checks) -> Result<(), BoxError> {
    let rows = sqlx::query(
        "SELECT id, num, txt, bin, day, ts, tstz FROM matrix_types \
         WHERE num = $1 AND day = $2 AND bin = $3 AND txt = $4",
    )
    .bind(BigDecimal::from_str(NUMERIC)?)
    .bind(day()?)
    .bind(BYTES)
    .bind(TEXT)
    .fetch_all(&mut *conn)
    .await?;
    checks.equal(1, rows.len(), "rows found by parameters")?;
    let row = &rows[0];
    checks.equal(1_i64, row.try_get(0)?, "table id")?;
    checks.equal(
        NUMERIC.to_owned(),
        row.try_get::<BigDecimal, _>(1)?.to_string(),
        "table numeric(12,4)",
    )?;
    checks.equal(TEXT, row.try_get::<&str, _>(2)?, "table text")?;
    checks.equal(BYTES, row.try_get::<&[u8], _>(3)?, "table bytea")?;
    checks.equal(day()?, row.try_get(4)?, "table date")?;
    checks.equal(timestamp()?, row.try_get(5)?, "table timestamp")?;
    checks.equal(
        timestamp()?.and_utc(),
        row.try_get::<DateTime<Utc>, _>(6)?,
        "table timestamptz",
    )?;

    let nulls = sqlx::query("SELECT txt, day, num FROM matrix_types WHERE id = $1")
        .bind(2_i64)
        .fetch_one(&mut *conn)
        .await?;
    checks.equal(None, nulls.try_get::<Option<&str>, _>(0)?, "NULL text")?;
    checks.equal(None, nulls.try_get::<Option<NaiveDate>, _>(1)?, "NULL date")?;
    checks.equal(
        None,
        nulls.try_get::<Option<BigDecimal>, _>(2)?,
        "NULL numeric",
    )?;

    // query_as into a tuple, as application code reads rows.
    let view: Vec<(i64, String)> = sqlx::query_as("SELECT id, txt FROM matrix_view WHERE id = $1")
        .bind(1_i64)
        .fetch_all(&mut *conn)
        .await?;
    checks.equal(
        vec![(1_i64, TEXT.to_owned())],
        view,
        "view through query_as",
    )?;
    Ok(())
}

async fn introspect(conn: &mut PgConnection, checks: &mut Checks) -> Result<(), BoxError> {
    let columns: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         WHERE c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind("matrix_types")
    .fetch_all(&mut *conn)
    .await?;
    checks.equal(14, columns.len(), "pg_attribute column count")?;
    checks.equal(
        ("id".to_owned(), "bigint".to_owned(), true),
        columns[0].clone(),
        "pg_attribute of id",
    )?;
    checks.equal(
        ("num".to_owned(), "numeric(12,4)".to_owned(), false),
        columns[6].clone(),
        "pg_attribute of num",
    )?;
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name LIKE $2 ORDER BY table_name",
    )
    .bind("public")
    .bind("matrix%")
    .fetch_all(&mut *conn)
    .await?;
    checks.equal(
        vec![("matrix_types".to_owned(),), ("matrix_view".to_owned(),)],
        tables,
        "information_schema.tables",
    )?;
    Ok(())
}

async fn errors(conn: &mut PgConnection, checks: &mut Checks) -> Result<(), BoxError> {
    let missing = sqlx::query("SELECT * FROM sqlx_no_such_table")
        .fetch_all(&mut *conn)
        .await
        .err()
        .and_then(|err| {
            err.as_database_error()
                .and_then(|db| db.code().map(|code| code.into_owned()))
        });
    checks.equal(
        Some("42P01".to_owned()),
        missing,
        "SQLSTATE of a missing table",
    )?;
    let mut transaction = conn.begin().await?;
    // `int + 1` would be int8 on Basin (its integer literals are bigint, docs/clients.md).
    let inside: i32 = sqlx::query_scalar("SELECT CAST($1 AS INTEGER) + CAST(1 AS INTEGER)")
        .bind(41_i32)
        .fetch_one(&mut *transaction)
        .await?;
    transaction.commit().await?;
    checks.equal(42, inside, "a transaction after an error")?;
    Ok(())
}

async fn run(conn: &mut PgConnection, checks: &mut Checks) -> Result<(), BoxError> {
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut *conn)
        .await?;
    checks.equal(true, version.as_str() >= "15", "server_version")?;
    echo_round_trip(conn, checks).await?;
    table_reads(conn, checks).await?;
    introspect(conn, checks).await?;
    errors(conn, checks).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    let mut checks = Checks { passed: 0 };
    let outcome = async {
        let (options, timeout) = connect_options(&conninfo)?;
        let mut conn = tokio::time::timeout(timeout, PgConnection::connect_with(&options))
            .await
            .map_err(|_| "connect timed out")??;
        let result = run(&mut conn, &mut checks).await;
        let _ = conn.close().await;
        result
    }
    .await;
    let mut stdout = std::io::stdout();
    match outcome {
        Ok(()) => {
            let _ = writeln!(stdout, "sqlx: {} checks passed", checks.passed);
            ExitCode::SUCCESS
        }
        Err(err) => {
            let _ = writeln!(stdout, "FAILED after {} checks: {err}", checks.passed);
            ExitCode::FAILURE
        }
    }
}
