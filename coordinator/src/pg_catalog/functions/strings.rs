//! Text-building functions ORMs put in their introspection queries: `json_build_object`
//! (SQLAlchemy's column reflection asks for identity and collation details with it) and
//! `like_escape`, which the rewrite uses for `LIKE ... ESCAPE` with an escape character other
//! than backslash (SQLAlchemy's schema listing sends `ESCAPE '/'`), and `parse_ident`
//! (Grafana splits a `schema.table` name with it).

use std::fmt::Write as _;

use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::Volatility;

use super::{PgFunction, arg, arg_text, text};

/// The name of the function the rewrite calls for `LIKE pattern ESCAPE 'c'`.
pub(in crate::pg_catalog) const LIKE_ESCAPE: &str = "like_escape";

/// `json_build_object` takes up to this many key/value pairs.
const MAX_PAIRS: usize = 16;

pub(super) fn functions() -> Vec<PgFunction> {
    let arities: Vec<usize> = (0..=MAX_PAIRS).map(|pairs| pairs * 2).collect();
    vec![
        PgFunction::new(
            "json_build_object",
            &arities,
            DataType::Utf8,
            Volatility::Stable,
            json_build_object,
        ),
        PgFunction::new(
            "parse_ident",
            &[1, 2],
            DataType::new_list(DataType::Utf8, true),
            Volatility::Immutable,
            |args| {
                let Some(name) = arg_text(arg(args, 0)) else {
                    return ScalarValue::try_new_null(&DataType::new_list(DataType::Utf8, true));
                };
                let parts: Vec<ScalarValue> = parse_ident(&name)?
                    .into_iter()
                    .map(|part| ScalarValue::Utf8(Some(part)))
                    .collect();
                Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                    &parts,
                    &DataType::Utf8,
                )))
            },
        ),
        PgFunction::new(
            LIKE_ESCAPE,
            &[2],
            DataType::Utf8,
            Volatility::Immutable,
            |args| {
                let (Some(pattern), Some(escape)) =
                    (arg_text(arg(args, 0)), arg_text(arg(args, 1)))
                else {
                    return Ok(text(None::<String>));
                };
                Ok(text(Some(like_escape(&pattern, &escape)?)))
            },
        ),
    ]
}

/// `parse_ident('a."B c".d')`: the dot-separated identifiers, unquoted names folded to lower
/// case, quoted ones kept as written (`""` is a quote), as Postgres splits them.
fn parse_ident(name: &str) -> Result<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return exec_err!("string is not a valid identifier: \"{name}\""),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' || c.is_whitespace() {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return exec_err!("string is not a valid identifier: \"{name}\"");
        }
        parts.push(part);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(_) => return exec_err!("string is not a valid identifier: \"{name}\""),
        }
    }
}

/// `json_build_object(k1, v1, ...)` in Postgres' spelling: `{"k1" : v1, "k2" : "text"}`.
fn json_build_object(args: &[ScalarValue]) -> Result<ScalarValue> {
    let mut out = String::from("{");
    for (index, pair) in args.chunks(2).enumerate() {
        let [key, value] = pair else {
            return exec_err!("argument list must have even number of elements");
        };
        let Some(key) = arg_text(key) else {
            return exec_err!("null value not allowed for object key");
        };
        if index > 0 {
            out.push_str(", ");
        }
        json_string(&mut out, &key);
        out.push_str(" : ");
        json_value(&mut out, value);
    }
    out.push('}');
    Ok(text(Some(out)))
}

fn json_value(out: &mut String, value: &ScalarValue) {
    match value {
        v if v.is_null() => out.push_str("null"),
        ScalarValue::Boolean(Some(b)) => out.push_str(if *b { "true" } else { "false" }),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_)
        | ScalarValue::Decimal128(..) => {
            let _ = write!(out, "{value}");
        }
        ScalarValue::Float32(Some(f)) if f.is_finite() => {
            let _ = write!(out, "{f}");
        }
        ScalarValue::Float64(Some(f)) if f.is_finite() => {
            let _ = write!(out, "{f}");
        }
        other => json_string(out, &arg_text(other).unwrap_or_default()),
    }
}

fn json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Postgres' `like_escape(pattern, escape)`: the pattern rewritten to use backslash as its escape
/// character. An empty escape turns escaping off (every backslash becomes literal).
fn like_escape(pattern: &str, escape: &str) -> Result<String> {
    let mut escape_chars = escape.chars();
    let escape = match (escape_chars.next(), escape_chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => return exec_err!("invalid escape string"),
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(escaped) => {
                    out.push('\\');
                    out.push(escaped);
                }
                None => return exec_err!("LIKE pattern must not end with escape character"),
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escape_matches_postgres() {
        assert_eq!(like_escape("pg/_%", "/").expect("valid"), "pg\\_%");
        assert_eq!(like_escape("a//b", "/").expect("valid"), "a\\/b");
        assert_eq!(like_escape("a\\b", "/").expect("valid"), "a\\\\b");
        assert_eq!(like_escape("a\\b", "").expect("valid"), "a\\\\b");
        assert!(like_escape("a/", "/").is_err());
        assert!(like_escape("a", "//").is_err());
    }

    #[test]
    fn parse_ident_splits_like_postgres() {
        assert_eq!(
            parse_ident("Public.Metrics").expect("valid"),
            ["public", "metrics"]
        );
        assert_eq!(
            parse_ident(r#" "My ""T"". x" . y "#).expect("valid"),
            [r#"My "T". x"#, "y"]
        );
        assert!(parse_ident("a.").is_err());
        assert!(parse_ident("a b").is_err());
        assert!(parse_ident(r#""open"#).is_err());
    }

    #[test]
    fn json_build_object_spells_like_postgres() {
        let args = [
            ScalarValue::Utf8(Some("always".into())),
            ScalarValue::Boolean(Some(false)),
            ScalarValue::Utf8(Some("start".into())),
            ScalarValue::Int64(Some(1)),
            ScalarValue::Utf8(Some("name".into())),
            ScalarValue::Utf8(Some("a \"b\"\n".into())),
            ScalarValue::Utf8(Some("none".into())),
            ScalarValue::Null,
        ];
        let built = json_build_object(&args).expect("builds").to_string();
        assert_eq!(
            built,
            r#"{"always" : false, "start" : 1, "name" : "a \"b\"\n", "none" : null}"#
        );
        assert!(json_build_object(&args[..3]).is_err());
    }
}
