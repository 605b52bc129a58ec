//! What Basin sends over pgwire, rendered the way DataFusion's own runner renders Arrow values
//! (`datafusion-sqllogictest` 55, `src/engines/datafusion_engine/normalize.rs` and
//! `conversion.rs`), so DataFusion's expected output can be compared as it is written.
//!
//! Every value arrives as Postgres text; the column's type OID and type modifier (from a Describe
//! of the same statement) say how to read it back:
//!
//! | Postgres type | DataFusion rendering |
//! |---|---|
//! | `bool` | `true` / `false` |
//! | `float4`, `float8` | the shortest round-trip value rounded to 12 decimals, trailing zeros dropped, `NaN`, `Infinity` |
//! | `numeric(p, s)` | rounded to `s` decimals, trailing zeros dropped; `numeric` without a modifier is Basin's `UInt64` |
//! | text types | as sent, `(empty)` for the empty string, trailing newlines dropped |
//! | `bytea` | lower-case hex without `\x` |
//! | `time`, `timestamp` | `T` between date and time, fractions in groups of 3, 6 or 9 digits |
//! | `timestamptz` | as `timestamp` plus `Z` (Basin sends UTC) |
//! | `interval` | Arrow's `1 mons 2 days 3 hours 4 mins 5.000000000 secs` |
//! | arrays | Arrow's `[1, 2, NULL]`, elements rendered as Arrow displays them; dimensions nest: `[[1, 2], [3, 4]]` |
//!
//! NULL is `NULL` everywhere. Column type letters follow DataFusion's (`B`, `D`, `I`, `P`, `R`,
//! `T`, `?`).

use std::str::FromStr;
use std::sync::LazyLock;

use bigdecimal::BigDecimal;
use regex::Regex;
use sqllogictest::ColumnType;
use tokio_postgres::types::{Kind, Type};

/// DataFusion's column type letters (`datafusion-sqllogictest` `DFColumnType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DfColumnType {
    Boolean,
    DateTime,
    Integer,
    Float,
    Text,
    Timestamp,
    Another,
}

impl ColumnType for DfColumnType {
    fn from_char(value: char) -> Option<Self> {
        Some(match value {
            'B' => Self::Boolean,
            'D' => Self::DateTime,
            'I' => Self::Integer,
            'P' => Self::Timestamp,
            'R' => Self::Float,
            'T' => Self::Text,
            _ => Self::Another,
        })
    }

    fn to_char(&self) -> char {
        match self {
            Self::Boolean => 'B',
            Self::DateTime => 'D',
            Self::Integer => 'I',
            Self::Timestamp => 'P',
            Self::Float => 'R',
            Self::Text => 'T',
            Self::Another => '?',
        }
    }
}

/// The letter DataFusion would print for a column Basin sends as `ty` with modifier `typmod`.
pub fn column_type(ty: &Type, typmod: i32) -> DfColumnType {
    match *ty {
        Type::BOOL => DfColumnType::Boolean,
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => DfColumnType::Integer,
        // Basin sends `UInt64` as `numeric` without a modifier, decimals with one.
        Type::NUMERIC if typmod < 0 => DfColumnType::Integer,
        Type::NUMERIC | Type::FLOAT4 | Type::FLOAT8 => DfColumnType::Float,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DfColumnType::Text,
        Type::DATE | Type::TIME => DfColumnType::DateTime,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DfColumnType::Timestamp,
        _ => DfColumnType::Another,
    }
}

/// Column types match when equal, or when DataFusion says `?` and Basin sent text: types with
/// no Postgres counterpart (`Null`, `Map`, `Union`, lists of lists) go over the wire as text.
#[expect(
    clippy::ptr_arg,
    reason = "the signature sqllogictest's ColumnTypeValidator requires"
)]
pub fn column_validator(actual: &Vec<DfColumnType>, expected: &Vec<DfColumnType>) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(actual, expected)| {
            actual == expected
                || (*expected == DfColumnType::Another && *actual == DfColumnType::Text)
        })
}

/// DataFusion's `value_normalizer`: trailing whitespace of an expected line does not count.
#[expect(
    clippy::ptr_arg,
    reason = "the signature sqllogictest's Normalizer requires"
)]
pub fn value_normalizer(line: &String) -> String {
    line.trim_end().to_string()
}

/// DataFusion's `df_value_validator` (rows joined by single spaces, trailing whitespace dropped,
/// `<slt:ignore>` fragments), plus one allowance: timestamps with a UTC offset compare as
/// instants, because Basin sends every `timestamptz` in UTC where DataFusion prints it in the
/// column's own zone (`2020-01-01T05:00:00+05:00` is `2020-01-01T00:00:00Z`).
pub fn value_validator(
    normalizer: sqllogictest::Normalizer,
    actual: &[Vec<String>],
    expected: &[String],
) -> bool {
    const IGNORE_MARKER: &str = "<slt:ignore>";
    let expected: Vec<String> = expected.iter().map(normalizer).collect();
    let actual: Vec<String> = actual
        .iter()
        .map(|row| row.join(" ").trim_end().to_string())
        .collect();
    if expected.iter().any(|line| line.contains(IGNORE_MARKER)) {
        return fragments_match(&expected.join("\n"), &actual.join("\n"), IGNORE_MARKER);
    }
    if actual == expected {
        return true;
    }
    actual.len() == expected.len()
        && actual.iter().zip(&expected).all(|(actual, expected)| {
            actual == expected || utc_instants(actual) == utc_instants(expected)
        })
}

/// DataFusion's `<slt:ignore>` matching: the fragments between markers appear in order, the
/// first one at the start.
fn fragments_match(expected: &str, actual: &str, marker: &str) -> bool {
    let mut position = 0;
    for (index, fragment) in expected.split(marker).enumerate() {
        if fragment.is_empty() {
            continue;
        }
        match actual[position..].find(fragment) {
            Some(found) if index > 0 || found == 0 => position += found + fragment.len(),
            _ => return false,
        }
    }
    true
}

static ZONED_TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
        .expect("valid regex")
});

/// `line` with every RFC 3339 timestamp rewritten in UTC.
fn utc_instants(line: &str) -> String {
    ZONED_TIMESTAMP
        .replace_all(line, |captures: &regex::Captures<'_>| {
            let text = &captures[0];
            match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(time) => time
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                Err(_) => text.to_string(),
            }
        })
        .into_owned()
}

/// One value as DataFusion renders it; `value` is Basin's text for a column of type `ty`.
pub fn render(ty: &Type, typmod: i32, value: Option<&str>) -> String {
    let Some(text) = value else {
        return "NULL".to_string();
    };
    match *ty {
        Type::BOOL => bool_text(text).to_string(),
        Type::FLOAT4 => match text.parse::<f32>() {
            Ok(value) if value.is_finite() => decimal_text(&value.to_string(), None),
            Ok(value) => special_float(f64::from(value)),
            Err(_) => text.to_string(),
        },
        Type::FLOAT8 => match text.parse::<f64>() {
            Ok(value) if value.is_finite() => decimal_text(&value.to_string(), None),
            Ok(value) => special_float(value),
            Err(_) => text.to_string(),
        },
        Type::NUMERIC if typmod >= 4 => {
            let scale = i64::from((typmod - 4) & 0xffff);
            decimal_text(text, Some(scale))
        }
        Type::BYTEA => text.strip_prefix("\\x").unwrap_or(text).to_string(),
        Type::TIME => fraction_groups(text),
        Type::TIMESTAMP => fraction_groups(&text.replacen(' ', "T", 1)),
        Type::TIMESTAMPTZ => {
            let local = text.strip_suffix("+00").unwrap_or(text);
            let mut rendered = fraction_groups(&local.replacen(' ', "T", 1));
            if local.len() != text.len() {
                rendered.push('Z');
            }
            rendered
        }
        Type::INTERVAL => interval_text(text).unwrap_or_else(|| text.to_string()),
        _ => match ty.kind() {
            Kind::Array(element) => array_text(element, text).unwrap_or_else(|| text.to_string()),
            _ => string_text(text),
        },
    }
}

/// DataFusion's `expand_row`: a last cell of several lines (EXPLAIN plans) becomes one row per
/// line, numbered, with leading spaces turned into `-` so indentation survives comparison.
pub fn expand_row(mut row: Vec<String>) -> Vec<Vec<String>> {
    let Some(last) = row.pop() else {
        return vec![row];
    };
    if !last.contains('\n') {
        row.push(last);
        return vec![row];
    }
    let mut rows = vec![row];
    for (index, line) in last.split('\n').enumerate() {
        let content = line.trim_start();
        let indent = "-".repeat(line.len() - content.len());
        rows.push(vec![format!("{:02}){indent}{content}", index + 1)]);
    }
    rows
}

fn bool_text(text: &str) -> &str {
    match text {
        "t" => "true",
        "f" => "false",
        other => other,
    }
}

/// `varchar_to_str`: `(empty)` for the empty string, trailing newlines dropped.
fn string_text(text: &str) -> String {
    if text.is_empty() {
        "(empty)".to_string()
    } else {
        text.trim_end_matches('\n').replace('\u{0}', "\\0")
    }
}

fn special_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value > 0.0 {
        "Infinity".to_string()
    } else {
        "-Infinity".to_string()
    }
}

/// `big_decimal_to_str`: rounded to `scale` decimals (12 when `None`), trailing zeros dropped.
fn decimal_text(text: &str, scale: Option<i64>) -> String {
    match BigDecimal::from_str(text) {
        Ok(value) => value
            .round(scale.unwrap_or(12))
            .normalized()
            .to_plain_string(),
        Err(_) => text.to_string(),
    }
}

/// Postgres trims a time's fraction (`.5`); Arrow prints 3, 6 or 9 digits (`.500`).
fn fraction_groups(text: &str) -> String {
    let Some((whole, fraction)) = text.split_once('.') else {
        return text.to_string();
    };
    let digits = fraction.chars().take_while(char::is_ascii_digit).count();
    let (fraction, rest) = fraction.split_at(digits);
    let width = match digits {
        0..=3 => 3,
        4..=6 => 6,
        _ => 9,
    };
    format!("{whole}.{fraction:0<width$}{rest}")
}

/// Postgres's `1 year 2 mons 3 days 04:05:06.5` as Arrow prints a month-day-nano interval.
fn interval_text(text: &str) -> Option<String> {
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        if word.contains(':') {
            let (negative, clock) = match word.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, word.strip_prefix('+').unwrap_or(word)),
            };
            let mut parts = clock.split(':');
            let hours: i64 = parts.next()?.parse().ok()?;
            let minutes: i64 = parts.next()?.parse().ok()?;
            let seconds = parts.next().unwrap_or("0");
            let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
            let whole: i64 = whole.parse().ok()?;
            let fraction: i64 = if fraction.is_empty() {
                0
            } else {
                format!("{fraction:0<9}").get(..9)?.parse().ok()?
            };
            let total = ((hours * 60 + minutes) * 60 + whole) * 1_000_000_000 + fraction;
            nanos += if negative { -total } else { total };
            continue;
        }
        let amount: i64 = word.parse().ok()?;
        match words.next()? {
            "year" | "years" => months += amount * 12,
            "mon" | "mons" => months += amount,
            "day" | "days" => days += amount,
            _ => return None,
        }
    }
    if months == 0 && days == 0 && nanos == 0 {
        return Some("0 secs".to_string());
    }
    let mut parts = Vec::new();
    if months != 0 {
        parts.push(format!("{months} mons"));
    }
    if days != 0 {
        parts.push(format!("{days} days"));
    }
    if nanos != 0 {
        let seconds = nanos / 1_000_000_000;
        let minutes = seconds / 60;
        let hours = minutes / 60;
        let (seconds, minutes) = (seconds - minutes * 60, minutes - hours * 60);
        let fraction = nanos % 1_000_000_000;
        if hours != 0 {
            parts.push(format!("{hours} hours"));
        }
        if minutes != 0 {
            parts.push(format!("{minutes} mins"));
        }
        if seconds != 0 || fraction != 0 {
            let sign = if seconds < 0 || fraction < 0 { "-" } else { "" };
            parts.push(format!(
                "{sign}{}.{:09} secs",
                seconds.abs(),
                fraction.abs()
            ));
        }
    }
    Some(parts.join(" "))
}

/// A Postgres array literal as Arrow prints a list: `[1, NULL, a]`; a multidimensional one as
/// nested lists, `[[1, 2], [3, 4]]`.
fn array_text(element: &Type, text: &str) -> Option<String> {
    let mut chars = text.chars().peekable();
    let array = parse_array(&mut chars)?;
    if chars.next().is_some() {
        return None;
    }
    let mut out = String::new();
    render_item(&mut out, element, &array);
    Some(out)
}

/// One element of a parsed array literal.
enum Item {
    Null,
    Value(String),
    Array(Vec<Item>),
}

fn render_item(out: &mut String, element: &Type, item: &Item) {
    match item {
        Item::Null => out.push_str("NULL"),
        Item::Value(value) => out.push_str(&list_element(element, value)),
        Item::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                render_item(out, element, item);
            }
            out.push(']');
        }
    }
}

/// A list element as Arrow's display (not DataFusion's cell rendering) prints it.
fn list_element(ty: &Type, text: &str) -> String {
    match *ty {
        Type::BOOL => bool_text(text).to_string(),
        Type::FLOAT4 => match text.parse::<f32>() {
            Ok(value) => ryu::Buffer::new().format(value).to_string(),
            Err(_) => text.to_string(),
        },
        Type::FLOAT8 => match text.parse::<f64>() {
            Ok(value) => ryu::Buffer::new().format(value).to_string(),
            Err(_) => text.to_string(),
        },
        Type::BYTEA => text.strip_prefix("\\x").unwrap_or(text).to_string(),
        Type::TIMESTAMP => fraction_groups(&text.replacen(' ', "T", 1)),
        Type::TIME => fraction_groups(text),
        Type::TIMESTAMPTZ => {
            let local = text.strip_suffix("+00").unwrap_or(text);
            format!("{}Z", fraction_groups(&local.replacen(' ', "T", 1)))
        }
        Type::INTERVAL => interval_text(text).unwrap_or_else(|| text.to_string()),
        _ => text.to_string(),
    }
}

/// An array literal `{a,"b c",NULL,{1,2}}` from `chars`, which it reads up to its closing
/// brace; `None` when the text is no array literal.
fn parse_array(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Item> {
    if chars.next()? != '{' {
        return None;
    }
    let mut items = Vec::new();
    if chars.peek() == Some(&'}') {
        chars.next();
        return Some(Item::Array(items));
    }
    loop {
        let item = match chars.peek()? {
            '{' => parse_array(chars)?,
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next()? {
                        '\\' => value.push(chars.next()?),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                Item::Value(value)
            }
            _ => {
                let mut value = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ',' || c == '}' {
                        break;
                    }
                    if c == '{' || c == '"' {
                        return None;
                    }
                    value.push(c);
                    chars.next();
                }
                if value == "NULL" {
                    Item::Null
                } else {
                    Item::Value(value)
                }
            }
        };
        items.push(item);
        match chars.next()? {
            ',' => {}
            '}' => return Some(Item::Array(items)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_render_like_datafusion() {
        assert_eq!(render(&Type::BOOL, -1, Some("t")), "true");
        assert_eq!(render(&Type::INT4, -1, None), "NULL");
        assert_eq!(render(&Type::TEXT, -1, Some("")), "(empty)");
        assert_eq!(render(&Type::FLOAT8, -1, Some("1.5")), "1.5");
        assert_eq!(render(&Type::FLOAT8, -1, Some("0.1")), "0.1");
        assert_eq!(
            render(&Type::FLOAT8, -1, Some("1e+20")),
            "100000000000000000000"
        );
        assert_eq!(
            render(&Type::FLOAT8, -1, Some("3.14159265358979")),
            "3.14159265359"
        );
        assert_eq!(render(&Type::FLOAT8, -1, Some("NaN")), "NaN");
        assert_eq!(render(&Type::FLOAT4, -1, Some("-Infinity")), "-Infinity");
        assert_eq!(render(&Type::FLOAT8, -1, Some("2")), "2");
        // numeric(10,3)
        assert_eq!(
            render(&Type::NUMERIC, (10 << 16) + 3 + 4, Some("1.230")),
            "1.23"
        );
        assert_eq!(
            render(&Type::NUMERIC, -1, Some("18446744073709551615")),
            "18446744073709551615"
        );
        assert_eq!(render(&Type::BYTEA, -1, Some("\\x0aff")), "0aff");
    }

    #[test]
    fn times_render_like_arrow() {
        assert_eq!(
            render(&Type::TIMESTAMP, -1, Some("2020-01-01 00:00:00")),
            "2020-01-01T00:00:00"
        );
        assert_eq!(
            render(&Type::TIMESTAMP, -1, Some("2020-01-01 00:00:00.5")),
            "2020-01-01T00:00:00.500"
        );
        assert_eq!(
            render(&Type::TIMESTAMPTZ, -1, Some("2020-01-01 00:00:00.1234+00")),
            "2020-01-01T00:00:00.123400Z"
        );
        assert_eq!(render(&Type::TIME, -1, Some("01:02:03.25")), "01:02:03.250");
        assert_eq!(
            render(&Type::INTERVAL, -1, Some("1 year 2 mons 3 days 04:05:06.5")),
            "14 mons 3 days 4 hours 5 mins 6.500000000 secs"
        );
        assert_eq!(render(&Type::INTERVAL, -1, Some("-1 days")), "-1 days");
        assert_eq!(render(&Type::INTERVAL, -1, Some("00:00:00")), "0 secs");
        assert_eq!(
            render(&Type::INTERVAL, -1, Some("-00:00:01.5")),
            "-1.500000000 secs"
        );
    }

    #[test]
    fn arrays_render_like_arrow_lists() {
        assert_eq!(
            render(&Type::INT4_ARRAY, -1, Some("{1,2,NULL}")),
            "[1, 2, NULL]"
        );
        assert_eq!(
            render(&Type::TEXT_ARRAY, -1, Some(r#"{a,"b c","",NULL,"NULL"}"#)),
            "[a, b c, , NULL, NULL]"
        );
        assert_eq!(
            render(&Type::FLOAT8_ARRAY, -1, Some("{1,2.5}")),
            "[1.0, 2.5]"
        );
        assert_eq!(
            render(&Type::BOOL_ARRAY, -1, Some("{t,f}")),
            "[true, false]"
        );
        assert_eq!(render(&Type::INT4_ARRAY, -1, Some("{}")), "[]");
        assert_eq!(
            render(&Type::INT8_ARRAY, -1, Some("{{1,2},{3,NULL},NULL,{}}")),
            "[[1, 2], [3, NULL], NULL, []]"
        );
        assert_eq!(
            render(&Type::TEXT_ARRAY, -1, Some(r#"{{"a}",b}}"#)),
            "[[a}, b]]"
        );
        assert_eq!(render(&Type::INT4_ARRAY, -1, Some("{1,2")), "{1,2");
    }

    #[test]
    fn multi_line_cells_expand_like_datafusion() {
        let rows = expand_row(vec!["plan".to_string(), "A\n  B".to_string()]);
        assert_eq!(
            rows,
            vec![
                vec!["plan".to_string()],
                vec!["01)A".to_string()],
                vec!["02)--B".to_string()]
            ]
        );
    }

    #[test]
    fn zoned_timestamps_compare_as_instants() {
        let actual = vec![vec!["2020-01-01T00:00:00Z".to_string(), "x".to_string()]];
        let expected = vec!["2020-01-01T05:00:00+05:00 x".to_string()];
        assert!(value_validator(value_normalizer, &actual, &expected));
        let wrong = vec!["2020-01-01T06:00:00+05:00 x".to_string()];
        assert!(!value_validator(value_normalizer, &actual, &wrong));
    }

    #[test]
    fn ignore_markers_match_fragments() {
        let actual = vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]];
        assert!(value_validator(
            value_normalizer,
            &actual,
            &["a <slt:ignore> c".to_string()]
        ));
        assert!(!value_validator(
            value_normalizer,
            &actual,
            &["b <slt:ignore>".to_string()]
        ));
    }
}
