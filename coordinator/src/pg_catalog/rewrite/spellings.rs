//! Postgres spellings that drivers interpolating on the client side (psycopg2, pg8000's literal
//! mode) and ORMs put into statements, turned into what DataFusion means by them:
//!
//! * `'\x00ff'::bytea` (and `bytea '...'`): Postgres reads the string in bytea's input format,
//!   hex or escape; DataFusion would take the string's own bytes. The literal becomes `X'00ff'`.
//! * `x LIKE p ESCAPE 'c'` with `c` other than backslash (SQLAlchemy sends `ESCAPE '/'`):
//!   DataFusion only supports backslash, so the pattern becomes `like_escape(p, 'c')`, which
//!   rewrites it to backslash escapes (Postgres has the same function).
//! * `typreceive::text` and other casts of catalog `regproc` columns to text: Postgres gives
//!   the function's name (ADBC compares it with `'array_recv'`), a plain cast the OID's digits.
//!   The cast becomes `regprocout(column)`.
//! * `x = ANY($1)`: DataFusion needs the array's type to plan `= ANY`, and Basin plans before
//!   it has the parameter (clients send it as `text[]`, or untyped as `'{a,b}'`). The
//!   comparison becomes `__basin_any_equals($1, x)`, which takes either.
//! * `generate_subscripts(a, d)` next to `unnest(a)` in a select list (SQLAlchemy's key
//!   reflection): `unnest(generate_series(1, CASE WHEN d = 1 THEN cardinality(a) END))`, the
//!   subscripts of a one-dimensional, one-based array (Basin has no others).
//! * `i.indisprimary = 't'` (psqlODBC's key and index queries): Postgres reads the untyped
//!   literal as a boolean; DataFusion cannot compare Boolean with Utf8. A `'t'`/`'f'`/`'true'`/
//!   `'false'` compared with a boolean column of a catalog table becomes `true`/`false`. Only
//!   catalog tables' prefixed column names (`indisunique`, `attnotnull`) are recognised, not
//!   catalog views' generic ones (`active`, `granted`), which user tables may use.

use std::collections::HashSet;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Value, ValueWithSpan,
};

use super::{call, is_text_type};
use crate::pg_catalog::functions::{ANY_EQUALS, LIKE_ESCAPE};
use crate::pg_catalog::snapshot::system_specs;
use crate::pg_catalog::table::{ColumnType, parse_columns};

/// Names of the catalog tables' `regproc` columns (`typreceive`, `aggfnoid`, `oprcode` ...).
static REGPROC_COLUMNS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    system_specs()
        .filter_map(|(_, spec)| parse_columns(spec.name, spec.columns).ok())
        .flatten()
        .filter(|c| matches!(c.column_type, ColumnType::Regproc))
        .map(|c| c.name)
        .collect()
});

/// Names of the boolean columns of catalog tables (not views): `indisprimary`, `attnotnull` ...
static BOOL_COLUMNS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    system_specs()
        .filter(|(schema, spec)| *schema == "pg_catalog" && spec.relkind == 'r')
        .filter_map(|(_, spec)| parse_columns(spec.name, spec.columns).ok())
        .flatten()
        .filter(|c| matches!(c.column_type, ColumnType::Bool))
        .map(|c| c.name)
        .collect()
});

/// Rewrites `expr` in place if it is one of the spellings above.
pub(super) fn rewrite_spelling(expr: &mut Expr) {
    match expr {
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } if is_bytea(data_type) => {
            if let Some(hex) = string_literal(inner).and_then(bytea_hex) {
                *expr = Expr::value(Value::HexStringLiteral(hex));
            }
        }
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } if is_text_type(data_type) && is_regproc_column(inner) => {
            let column = std::mem::replace(inner.as_mut(), super::null());
            *expr = call("regprocout", vec![column]);
        }
        Expr::TypedString(typed) if is_bytea(&typed.data_type) => {
            if let Some(hex) = value_string(&typed.value).and_then(bytea_hex) {
                *expr = Expr::value(Value::HexStringLiteral(hex));
            }
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq | BinaryOperator::NotEq,
            right,
        } => {
            if is_column_in(left, &BOOL_COLUMNS)
                && let Some(value) = string_literal(right).and_then(bool_text)
            {
                **right = Expr::value(Value::Boolean(value));
            } else if is_column_in(right, &BOOL_COLUMNS)
                && let Some(value) = string_literal(left).and_then(bool_text)
            {
                **left = Expr::value(Value::Boolean(value));
            }
        }
        Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } if is_placeholder(right) => {
            let array = std::mem::replace(right.as_mut(), super::null());
            let needle = std::mem::replace(left.as_mut(), super::null());
            *expr = call(ANY_EQUALS, vec![array, needle]);
        }
        Expr::Function(function) if is_generate_subscripts(&function.name) => {
            if let Some((array, dimension)) = subscript_arguments(&function.args) {
                // A one-dimensional array has subscripts 1..n in dimension 1 and none in others.
                let one = || Expr::value(Value::Number("1".to_owned(), false));
                let count = Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: None,
                    conditions: vec![CaseWhen {
                        condition: Expr::BinaryOp {
                            left: Box::new(dimension),
                            op: BinaryOperator::Eq,
                            right: Box::new(one()),
                        },
                        result: call("cardinality", vec![array]),
                    }],
                    else_result: None,
                };
                *expr = call("unnest", vec![call("generate_series", vec![one(), count])]);
            }
        }
        Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } => {
            let Some(escape) = escape_char.as_ref().and_then(value_string) else {
                return;
            };
            if escape == "\\" {
                return;
            }
            let escape = escape.to_owned();
            let original = std::mem::replace(pattern.as_mut(), super::null());
            **pattern = call(
                LIKE_ESCAPE,
                vec![original, Expr::value(Value::SingleQuotedString(escape))],
            );
            *escape_char = None;
        }
        _ => {}
    }
}

fn is_placeholder(expr: &Expr) -> bool {
    match expr {
        Expr::Value(value) => matches!(value.value, Value::Placeholder(_)),
        Expr::Nested(inner) => is_placeholder(inner),
        _ => false,
    }
}

fn is_generate_subscripts(name: &datafusion::sql::sqlparser::ast::ObjectName) -> bool {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .is_some_and(|ident| ident.value.eq_ignore_ascii_case("generate_subscripts"))
}

/// The array and dimension of `generate_subscripts(array, dimension)`.
fn subscript_arguments(args: &FunctionArguments) -> Option<(Expr, Expr)> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    match list.args.as_slice() {
        [
            FunctionArg::Unnamed(FunctionArgExpr::Expr(array)),
            FunctionArg::Unnamed(FunctionArgExpr::Expr(dimension)),
        ] => Some((array.clone(), dimension.clone())),
        _ => None,
    }
}

fn is_regproc_column(expr: &Expr) -> bool {
    is_column_in(expr, &REGPROC_COLUMNS)
}

/// Whether `expr` is a (possibly qualified) column whose name is in `names`.
fn is_column_in(expr: &Expr, names: &HashSet<String>) -> bool {
    let name = match expr {
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(last) => last,
            None => return false,
        },
        Expr::Nested(inner) => return is_column_in(inner, names),
        _ => return false,
    };
    names.contains(&name.value.to_ascii_lowercase())
}

/// The boolean an untyped literal spells the way catalog queries write it.
fn bool_text(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "t" | "true" => Some(true),
        "f" | "false" => Some(false),
        _ => None,
    }
}

fn is_bytea(data_type: &DataType) -> bool {
    match data_type {
        DataType::Bytea => true,
        DataType::Custom(name, modifiers) => {
            modifiers.is_empty()
                && name
                    .0
                    .last()
                    .and_then(|part| part.as_ident())
                    .is_some_and(|ident| ident.value.eq_ignore_ascii_case("bytea"))
        }
        _ => false,
    }
}

fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(value) => value_string(value),
        Expr::Nested(inner) => string_literal(inner),
        _ => None,
    }
}

fn value_string(value: &ValueWithSpan) -> Option<&str> {
    match &value.value {
        Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s),
        _ => None,
    }
}

/// The bytes of bytea input text (`\x` hex, or the escape format with `\\` and `\ooo`) as hex
/// digits; `None` if the text is not valid bytea input, leaving the cast to report it.
fn bytea_hex(text: &str) -> Option<String> {
    let bytes = if let Some(hex) = text.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return None;
        }
        digits
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(pair, 16).ok()
            })
            .collect::<Option<Vec<u8>>>()?
    } else {
        let raw = text.as_bytes();
        let mut bytes = Vec::with_capacity(raw.len());
        let mut index = 0;
        while index < raw.len() {
            if raw[index] != b'\\' {
                bytes.push(raw[index]);
                index += 1;
            } else if raw.get(index + 1) == Some(&b'\\') {
                bytes.push(b'\\');
                index += 2;
            } else {
                let octal = raw.get(index + 1..index + 4)?;
                if !octal.iter().all(|b| (b'0'..=b'7').contains(b)) || octal[0] > b'3' {
                    return None;
                }
                bytes.push(octal.iter().fold(0u8, |acc, b| acc * 8 + (b - b'0')));
                index += 4;
            }
        }
        bytes
    };
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytea_input_formats() {
        assert_eq!(bytea_hex("\\x00FFfe").as_deref(), Some("00fffe"));
        assert_eq!(bytea_hex("\\x").as_deref(), Some(""));
        assert_eq!(
            bytea_hex("ab\\\\c\\000\\377").as_deref(),
            Some("61625c6300ff")
        );
        assert_eq!(bytea_hex("\\x0"), None);
        assert_eq!(bytea_hex("\\xzz"), None);
        assert_eq!(bytea_hex("a\\9"), None);
    }
}
