//! The tokio-postgres part of the client matrix (tests/clients/test_tokio_postgres_matrix.py runs
//! it against real PostgreSQL and against Basin on the table `matrix_data.py` seeds).
//!
//! tokio-postgres prepares every statement, checks each Rust value against the parameter type
//! the server describes, and sends and reads everything in binary. Types it has no built-in
//! mapping for without optional features (date, time, interval, numeric) are encoded here by
//! hand from Postgres's binary formats, so the test pins those formats exactly.
//!
//! Usage: `tokio_postgres_matrix "host=... port=... user=basin dbname=basin"`. Prints
//! `N checks passed`, or exits 1 with the first failed check.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls};

type BoxError = Box<dyn Error + Sync + Send>;

/// Days from 1970-01-01 to Postgres's epoch 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// `date`: days since 2000-01-01.
#[derive(Debug, PartialEq)]
struct Date(i32);

/// `time`: microseconds since midnight.
#[derive(Debug, PartialEq)]
struct Time(i64);

/// `interval`: microseconds, days, months, as Postgres keeps them apart.
#[derive(Debug, PartialEq)]
struct Interval {
    micros: i64,
    days: i32,
    months: i32,
}

/// `numeric` as its decimal text, carried in Postgres's base-10000 binary form.
#[derive(Debug, PartialEq)]
struct Numeric(String);

fn be_bytes<const N: usize>(raw: &[u8], at: usize) -> Result<[u8; N], BoxError> {
    raw.get(at..at + N)
        .and_then(|slice| slice.try_into().ok())
        .ok_or_else(|| "binary value too short".into())
}

impl ToSql for Date {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i32(self.0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Date {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(i32::from_be_bytes(be_bytes(raw, 0)?)))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }
}

impl ToSql for Time {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i64(self.0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Time {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(i64::from_be_bytes(be_bytes(raw, 0)?)))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }
}

impl ToSql for Interval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i64(self.micros);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self {
            micros: i64::from_be_bytes(be_bytes(raw, 0)?),
            days: i32::from_be_bytes(be_bytes(raw, 8)?),
            months: i32::from_be_bytes(be_bytes(raw, 12)?),
        })
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

impl ToSql for Numeric {
    /// Non-negative decimals only (all the matrix sends): ndigits, weight, sign, dscale, then
    /// base-10000 digits, the integer part grouped from the point leftwards, the fraction
    /// rightwards.
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let (int_part, frac_part) = self.0.split_once('.').unwrap_or((&self.0, ""));
        let int_part = int_part.trim_start_matches('0');
        let pad_left = (4 - int_part.len() % 4) % 4;
        let pad_right = (4 - frac_part.len() % 4) % 4;
        let digits_text = format!(
            "{}{int_part}{frac_part}{}",
            "0".repeat(pad_left),
            "0".repeat(pad_right)
        );
        let mut digits = Vec::new();
        for chunk in digits_text.as_bytes().chunks(4) {
            digits.push(std::str::from_utf8(chunk)?.parse::<i16>()?);
        }
        let weight = i16::try_from((int_part.len() + pad_left) / 4)? - 1;
        out.put_i16(i16::try_from(digits.len())?);
        out.put_i16(weight);
        out.put_i16(0);
        out.put_i16(i16::try_from(frac_part.len())?);
        for digit in digits {
            out.put_i16(digit);
        }
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let count = usize::try_from(i16::from_be_bytes(be_bytes(raw, 0)?))?;
        let weight = i32::from(i16::from_be_bytes(be_bytes(raw, 2)?));
        let sign = u16::from_be_bytes(be_bytes(raw, 4)?);
        let scale = usize::try_from(i16::from_be_bytes(be_bytes(raw, 6)?))?;
        let mut digits = Vec::with_capacity(count);
        for index in 0..count {
            digits.push(i16::from_be_bytes(be_bytes(raw, 8 + 2 * index)?));
        }
        let group = |position: i32| -> String {
            usize::try_from(position)
                .ok()
                .and_then(|index| digits.get(index))
                .map_or_else(|| "0000".to_owned(), |digit| format!("{digit:04}"))
        };
        let text: String = (0..=weight).map(group).collect();
        let text = text.trim_start_matches('0');
        let mut text = if text.is_empty() {
            "0".to_owned()
        } else {
            text.to_owned()
        };
        if scale > 0 {
            let fraction: String = (weight + 1..weight + 1 + i32::try_from(scale.div_ceil(4))?)
                .map(group)
                .collect();
            text.push('.');
            text.push_str(
                fraction
                    .get(..scale)
                    .ok_or("numeric scale beyond its digits")?,
            );
        }
        if sign == 0x4000 {
            text.insert(0, '-');
        }
        Ok(Self(text))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

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
/// 2024-02-29 as days since 2000-01-01.
const DAY: i32 = 8_825;
/// 13:45:30.123456 in microseconds.
const CLOCK: i64 = (13 * 3600 + 45 * 60 + 30) * 1_000_000 + 123_456;

fn timestamp() -> SystemTime {
    let days = u64::try_from(DAY + PG_EPOCH_DAYS).unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(days * 86_400) + Duration::from_micros(CLOCK as u64)
}

const ECHO: &str = "SELECT CAST($1 AS SMALLINT), CAST($2 AS INTEGER), CAST($3 AS BIGINT), \
    CAST($4 AS REAL), CAST($5 AS DOUBLE PRECISION), CAST($6 AS NUMERIC(12,4)), CAST($7 AS TEXT), \
    CAST($8 AS BOOLEAN), CAST($9 AS BYTEA), CAST($10 AS DATE), CAST($11 AS TIME), \
    CAST($12 AS TIMESTAMP), CAST($13 AS TIMESTAMPTZ), CAST($14 AS INTERVAL), \
    CAST($15 AS INTEGER[]), CAST($16 AS TEXT[]), CAST($17 AS INTEGER)";

async fn run(client: &Client, checks: &mut Checks) -> Result<(), BoxError> {
    let version = client.query_one("SHOW server_version", &[]).await?;
    let version: String = version.try_get(0)?;
    checks.equal(true, version.as_str() >= "15", "server_version")?;

    let statement = client.prepare(ECHO).await?;
    let param_types: Vec<&str> = statement.params().iter().map(Type::name).collect();
    let wanted = [
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "numeric",
        "text",
        "bool",
        "bytea",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "interval",
        "_int4",
        "_text",
        "int4",
    ];
    checks.equal(wanted.to_vec(), param_types, "described parameter types")?;
    let column_types: Vec<&str> = statement
        .columns()
        .iter()
        .map(|c| c.type_().name())
        .collect();
    checks.equal(wanted.to_vec(), column_types, "described column types")?;

    let ints = vec![Some(1_i32), None, Some(-3)];
    let texts = vec![Some("a"), Some("b c"), Some("d,\"e\""), None];
    let span = Interval {
        micros: (2 * 3600 + 3 * 60 + 4) * 1_000_000 + 500_000,
        days: 1,
        months: 0,
    };
    let row = client
        .query_one(
            &statement,
            &[
                &-32768_i16,
                &2_147_483_647_i32,
                &9_007_199_254_740_993_i64,
                &-1.5_f32,
                &std::f64::consts::PI,
                &Numeric("12345678.9010".to_owned()),
                &TEXT,
                &true,
                &BYTES,
                &Date(DAY),
                &Time(CLOCK),
                &timestamp(),
                &timestamp(),
                &span,
                &ints,
                &texts,
                &None::<i32>,
            ],
        )
        .await?;
    checks.equal(-32768_i16, row.try_get(0)?, "int2")?;
    checks.equal(2_147_483_647_i32, row.try_get(1)?, "int4")?;
    checks.equal(9_007_199_254_740_993_i64, row.try_get(2)?, "int8")?;
    checks.equal(-1.5_f32, row.try_get(3)?, "float4")?;
    checks.equal(std::f64::consts::PI, row.try_get(4)?, "float8")?;
    checks.equal(
        Numeric("12345678.9010".to_owned()),
        row.try_get(5)?,
        "numeric",
    )?;
    checks.equal(TEXT, row.try_get(6)?, "text")?;
    checks.equal(true, row.try_get(7)?, "bool")?;
    checks.equal(BYTES, row.try_get(8)?, "bytea")?;
    checks.equal(Date(DAY), row.try_get(9)?, "date")?;
    checks.equal(Time(CLOCK), row.try_get(10)?, "time")?;
    checks.equal(timestamp(), row.try_get(11)?, "timestamp")?;
    checks.equal(timestamp(), row.try_get(12)?, "timestamptz")?;
    checks.equal(span, row.try_get(13)?, "interval")?;
    checks.equal(ints, row.try_get::<_, Vec<Option<i32>>>(14)?, "int4[]")?;
    checks.equal(texts, row.try_get::<_, Vec<Option<&str>>>(15)?, "text[]")?;
    checks.equal(None, row.try_get::<_, Option<i32>>(16)?, "NULL int4")?;

    // The seeded table, found by parameters of several types, read in binary.
    let rows = client
        .query(
            "SELECT id, num, txt, bin, day, ts, tstz FROM matrix_types \
             WHERE num = $1 AND day = $2 AND bin = $3 AND txt = $4",
            &[
                &Numeric("12345678.9010".to_owned()),
                &Date(DAY),
                &BYTES,
                &TEXT,
            ],
        )
        .await?;
    checks.equal(1, rows.len(), "rows found by parameters")?;
    let row = &rows[0];
    checks.equal(1_i64, row.try_get(0)?, "table id")?;
    checks.equal(
        Numeric("12345678.9010".to_owned()),
        row.try_get(1)?,
        "table numeric(12,4)",
    )?;
    checks.equal(TEXT, row.try_get(2)?, "table text")?;
    checks.equal(BYTES, row.try_get(3)?, "table bytea")?;
    checks.equal(Date(DAY), row.try_get(4)?, "table date")?;
    checks.equal(timestamp(), row.try_get(5)?, "table timestamp")?;
    checks.equal(timestamp(), row.try_get(6)?, "table timestamptz")?;

    let nulls = client
        .query_one(
            "SELECT txt, day, num FROM matrix_types WHERE id = $1",
            &[&2_i64],
        )
        .await?;
    checks.equal(None, nulls.try_get::<_, Option<&str>>(0)?, "NULL text")?;
    checks.equal(None, nulls.try_get::<_, Option<Date>>(1)?, "NULL date")?;
    checks.equal(
        None,
        nulls.try_get::<_, Option<Numeric>>(2)?,
        "NULL numeric",
    )?;

    // Catalog introspection as a Rust tool would do it.
    let columns: Vec<(String, String, bool)> = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
             FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             WHERE c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&"matrix_types"],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;
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

    let missing = client
        .query("SELECT * FROM tokio_no_such_table", &[])
        .await
        .err()
        .and_then(|err| err.code().map(|code| code.code().to_owned()));
    checks.equal(
        Some("42P01".to_owned()),
        missing,
        "SQLSTATE of a missing table",
    )?;
    let alive: i32 = client
        .query_one("SELECT CAST(1 AS INTEGER)", &[])
        .await?
        .try_get(0)?;
    checks.equal(1, alive, "connection usable after an error")?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    let mut checks = Checks { passed: 0 };
    let outcome = async {
        let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await?;
        let driver = tokio::spawn(connection);
        let result = run(&client, &mut checks).await;
        drop(client);
        let _ = driver.await;
        result
    }
    .await;
    let mut stdout = std::io::stdout();
    match outcome {
        Ok(()) => {
            let _ = writeln!(stdout, "tokio-postgres: {} checks passed", checks.passed);
            ExitCode::SUCCESS
        }
        Err(err) => {
            let _ = writeln!(stdout, "FAILED after {} checks: {err}", checks.passed);
            ExitCode::FAILURE
        }
    }
}
