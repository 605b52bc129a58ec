//! Functions that need nothing but their arguments: type spelling, encodings, privileges
//! (Basin's single role may do everything), descriptions (none are stored yet), sizes and
//! array bounds.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, ListArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::Volatility;

use super::{PgFunction, arg, arg_i64, arg_oid, arg_text, boolean, oid, text};
use crate::pg_catalog::rewrite::EXPANDARRAY;
use crate::pg_catalog::snapshot::quote_ident;
use crate::pg_catalog::system::builtin_proc;
use crate::pg_catalog::types::{builtin_type, format_type};

/// `format()` takes a template and up to this many values.
const FORMAT_ARITIES: [usize; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// `pg_encoding_to_char`'s names for the encodings a Basin database can have.
const ENCODINGS: &[(i64, &str)] = &[(0, "SQL_ASCII"), (6, "UTF8")];

/// Functions that always return NULL: definitions of objects Basin does not have (constraints,
/// indexes, triggers, rules, partition keys, statistics objects, sequences) and comments.
const NULL_TEXT_FUNCTIONS: &[(&str, &[usize])] = &[
    ("obj_description", &[1, 2]),
    ("col_description", &[2]),
    ("shobj_description", &[2]),
    ("pg_get_constraintdef", &[1, 2]),
    ("pg_get_indexdef", &[1, 3]),
    ("pg_get_triggerdef", &[1, 2]),
    ("pg_get_ruledef", &[1, 2]),
    ("pg_get_partkeydef", &[1]),
    ("pg_get_statisticsobjdef_columns", &[1]),
    ("pg_get_serial_sequence", &[2]),
    ("pg_get_function_sqlbody", &[1]),
    ("pg_get_functiondef", &[1]),
    // Tablespaces have no directory of their own; Postgres shows '' for the built-in ones.
    ("pg_tablespace_location", &[1]),
];

/// Visibility of object kinds Basin has only built-in members of (or none): all visible, as
/// `pg_catalog`'s are.
const VISIBILITY_FUNCTIONS: &[&str] = &[
    "pg_collation_is_visible",
    "pg_conversion_is_visible",
    "pg_opclass_is_visible",
    "pg_operator_is_visible",
    "pg_opfamily_is_visible",
    "pg_statistics_obj_is_visible",
    "pg_ts_config_is_visible",
    "pg_ts_dict_is_visible",
    "pg_ts_parser_is_visible",
    "pg_ts_template_is_visible",
];

/// Privilege checks; every Basin session is its database's superuser.
const PRIVILEGE_FUNCTIONS: &[&str] = &[
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_column_privilege",
    "has_any_column_privilege",
    "has_function_privilege",
    "has_sequence_privilege",
    "pg_has_role",
];

/// `pg_size_pretty`: Postgres' units and rounding, so sizes read the same as there.
pub(super) fn size_pretty(size: i64) -> String {
    // (unit, limit below which it is used, rounds half up, bits it shifts by)
    const UNITS: &[(&str, i64, bool, u32)] = &[
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = size;
    for (index, (name, limit, round, bits)) in UNITS.iter().enumerate() {
        let next = UNITS.get(index + 1);
        if next.is_none() || size.abs() < *limit {
            if *round {
                size = half_rounded(size);
            }
            return format!("{size} {name}");
        }
        if let Some((_, _, next_round, next_bits)) = next {
            let shift = next_bits - bits - u32::from(*next_round) + u32::from(*round);
            size /= 1_i64 << shift;
        }
    }
    format!("{size} bytes")
}

/// `quote_literal`: a string as an SQL literal.
fn quote_literal(text: &str) -> String {
    if text.contains('\\') {
        format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// `format(fmt, args...)` with `%s`, `%I`, `%L`, `%%` and positions (`%2$s`).
fn format(args: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(template) = arg_text(arg(args, 0)) else {
        return Ok(text(None::<String>));
    };
    let mut out = String::new();
    let mut next = 1;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.next_if_eq(&'%').is_some() {
            out.push('%');
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            digits.push(d);
        }
        let position = if digits.is_empty() {
            next
        } else if chars.next_if_eq(&'$').is_some() {
            digits.parse().unwrap_or(0)
        } else {
            return exec_err!("unsupported format specifier in \"{template}\"");
        };
        let value = match args.get(position) {
            Some(value) if position > 0 => value,
            _ => return exec_err!("too few arguments for format()"),
        };
        next = position + 1;
        match chars.next() {
            Some('s') => out.push_str(&arg_text(value).unwrap_or_default()),
            Some('I') => match arg_text(value) {
                Some(name) => out.push_str(&quote_ident(&name)),
                None => return exec_err!("null values cannot be formatted as an SQL identifier"),
            },
            Some('L') => match arg_text(value) {
                Some(literal) => out.push_str(&quote_literal(&literal)),
                None => out.push_str("NULL"),
            },
            _ => return exec_err!("unrecognized format() type specifier in \"{template}\""),
        }
    }
    Ok(text(Some(out)))
}

/// The struct `information_schema._pg_expandarray` yields: element `x` at position `n`.
fn expanded_fields() -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("n", DataType::Int32, true),
    ])
}

fn expanded_type() -> DataType {
    DataType::new_list(DataType::Struct(expanded_fields()), true)
}

/// `_pg_expandarray(a)`: the (element, position) pairs of `a` as a list, for the rewrite to
/// unnest. Drivers expand `int2vector` and `oid[]` columns with it, so elements are integers.
fn expand_array(args: &[ScalarValue]) -> Result<ScalarValue> {
    let values = match arg(args, 0) {
        ScalarValue::List(list) if !list.is_null(0) => list.value(0),
        ScalarValue::LargeList(list) if !list.is_null(0) => list.value(0),
        ScalarValue::FixedSizeList(list) if !list.is_null(0) => list.value(0),
        _ => return ScalarValue::try_new_null(&expanded_type()),
    };
    let mut elements = Vec::with_capacity(values.len());
    for index in 0..values.len() {
        elements.push(arg_i64(&ScalarValue::try_from_array(&values, index)?));
    }
    let positions = (1..).take(elements.len()).map(Some).collect::<Int32Array>();
    let pairs = StructArray::try_new(
        expanded_fields(),
        vec![
            Arc::new(elements.into_iter().collect::<Int64Array>()) as ArrayRef,
            Arc::new(positions),
        ],
        None,
    )?;
    let item = Arc::new(Field::new_list_field(
        DataType::Struct(expanded_fields()),
        true,
    ));
    let list = ListArray::try_new(
        item,
        OffsetBuffer::from_lengths([pairs.len()]),
        Arc::new(pairs),
        None,
    )?;
    Ok(ScalarValue::List(Arc::new(list)))
}

fn function_arguments(args: &[ScalarValue]) -> ScalarValue {
    let described = arg_oid(arg(args, 0)).and_then(builtin_proc).map(|p| {
        p.args
            .iter()
            .map(|a| format_type(*a, None))
            .collect::<Vec<_>>()
            .join(", ")
    });
    text(described)
}

/// `array_upper(a, 1)` / `array_lower(a, 1)`: Basin arrays are one-dimensional, 1-based.
fn array_bound(args: &[ScalarValue], upper: bool) -> ScalarValue {
    let length = match arg(args, 0) {
        ScalarValue::List(list) if !list.is_null(0) => Some(list.value_length(0)),
        ScalarValue::LargeList(list) if !list.is_null(0) => list.value_length(0).try_into().ok(),
        ScalarValue::FixedSizeList(list) if !list.is_null(0) => Some(list.value_length()),
        _ => None,
    };
    let bound = match (length, arg_i64(arg(args, 1))) {
        (Some(length), Some(1)) if length > 0 => Some(if upper { length } else { 1 }),
        _ => None,
    };
    ScalarValue::Int32(bound)
}

pub(super) fn functions() -> Vec<PgFunction> {
    let mut functions = vec![
        PgFunction::new(
            "format_type",
            &[2],
            DataType::Utf8,
            Volatility::Immutable,
            |args| {
                let Some(type_oid) = arg_oid(arg(args, 0)) else {
                    return Ok(text(None::<String>));
                };
                let typmod = arg_i64(arg(args, 1)).and_then(|m| i32::try_from(m).ok());
                Ok(text(Some(format_type(type_oid, typmod))))
            },
        ),
        // Basin stores default and partition expressions as SQL text already.
        PgFunction::new(
            "pg_get_expr",
            &[2, 3],
            DataType::Utf8,
            Volatility::Immutable,
            |args| Ok(text(arg_text(arg(args, 0)))),
        ),
        PgFunction::new(
            "pg_encoding_to_char",
            &[1],
            DataType::Utf8,
            Volatility::Immutable,
            |args| {
                let number = arg_i64(arg(args, 0));
                let name = ENCODINGS
                    .iter()
                    .find(|(code, _)| Some(*code) == number)
                    .map_or("", |(_, name)| name);
                Ok(text(number.map(|_| name)))
            },
        ),
        PgFunction::new(
            "pg_char_to_encoding",
            &[1],
            DataType::Int32,
            Volatility::Immutable,
            |args| {
                let name = arg_text(arg(args, 0));
                let code = name.map(|name| {
                    ENCODINGS
                        .iter()
                        .find(|(_, known)| known.eq_ignore_ascii_case(&name))
                        .map_or(-1, |(code, _)| i32::try_from(*code).unwrap_or(-1))
                });
                Ok(ScalarValue::Int32(code))
            },
        ),
        PgFunction::new(
            "pg_type_is_visible",
            &[1],
            DataType::Boolean,
            Volatility::Immutable,
            |args| {
                Ok(boolean(
                    arg_oid(arg(args, 0)).and_then(builtin_type).map(|_| true),
                ))
            },
        ),
        PgFunction::new(
            "pg_function_is_visible",
            &[1],
            DataType::Boolean,
            Volatility::Immutable,
            |args| {
                Ok(boolean(
                    arg_oid(arg(args, 0)).and_then(builtin_proc).map(|_| true),
                ))
            },
        ),
        PgFunction::new(
            "pg_get_function_result",
            &[1],
            DataType::Utf8,
            Volatility::Immutable,
            |args| {
                let result = arg_oid(arg(args, 0))
                    .and_then(builtin_proc)
                    .map(|p| format_type(p.result, None));
                Ok(text(result))
            },
        ),
        PgFunction::new(
            "pg_get_function_arguments",
            &[1],
            DataType::Utf8,
            Volatility::Immutable,
            |args| Ok(function_arguments(args)),
        ),
        PgFunction::new(
            "pg_get_function_identity_arguments",
            &[1],
            DataType::Utf8,
            Volatility::Immutable,
            |args| Ok(function_arguments(args)),
        ),
        PgFunction::new(
            "pg_relation_is_publishable",
            &[1],
            DataType::Boolean,
            Volatility::Immutable,
            |_| Ok(boolean(Some(false))),
        ),
        PgFunction::new(
            "pg_size_pretty",
            &[1],
            DataType::Utf8,
            Volatility::Immutable,
            |args| Ok(text(arg_i64(arg(args, 0)).map(size_pretty))),
        ),
        PgFunction::new(
            "format",
            &FORMAT_ARITIES,
            DataType::Utf8,
            Volatility::Stable,
            format,
        ),
        PgFunction::new(
            EXPANDARRAY,
            &[1],
            expanded_type(),
            Volatility::Immutable,
            expand_array,
        ),
        PgFunction::new(
            "quote_literal",
            &[1],
            DataType::Utf8,
            Volatility::Immutable,
            |args| {
                Ok(text(
                    arg_text(arg(args, 0)).map(|value| quote_literal(&value)),
                ))
            },
        ),
        PgFunction::new(
            "quote_ident",
            &[1],
            DataType::Utf8,
            Volatility::Immutable,
            |args| Ok(text(arg_text(arg(args, 0)).map(|name| quote_ident(&name)))),
        ),
        PgFunction::new(
            "array_upper",
            &[2],
            DataType::Int32,
            Volatility::Immutable,
            |args| Ok(array_bound(args, true)),
        ),
        PgFunction::new(
            "array_lower",
            &[2],
            DataType::Int32,
            Volatility::Immutable,
            |args| Ok(array_bound(args, false)),
        ),
        // Basin has no temporary schemas and no standbys.
        PgFunction::new(
            "pg_my_temp_schema",
            &[0],
            DataType::UInt32,
            Volatility::Stable,
            |_| Ok(oid(Some(0))),
        ),
        PgFunction::new(
            "pg_is_other_temp_schema",
            &[1],
            DataType::Boolean,
            Volatility::Stable,
            |_| Ok(boolean(Some(false))),
        ),
        PgFunction::new(
            "pg_is_in_recovery",
            &[0],
            DataType::Boolean,
            Volatility::Volatile,
            |_| Ok(boolean(Some(false))),
        ),
        PgFunction::new(
            "getdatabaseencoding",
            &[0],
            DataType::Utf8,
            Volatility::Stable,
            |_| Ok(text(Some("UTF8"))),
        ),
    ];
    // Basin does not track sizes yet.
    for name in ["pg_database_size", "pg_tablespace_size"] {
        functions.push(PgFunction::new(
            name,
            &[1],
            DataType::Int64,
            Volatility::Volatile,
            |args| Ok(ScalarValue::Int64((!arg(args, 0).is_null()).then_some(0))),
        ));
    }
    for (name, arities) in NULL_TEXT_FUNCTIONS {
        functions.push(PgFunction::new(
            name,
            arities,
            DataType::Utf8,
            Volatility::Stable,
            |_| Ok(text(None::<String>)),
        ));
    }
    for name in VISIBILITY_FUNCTIONS {
        functions.push(PgFunction::new(
            name,
            &[1],
            DataType::Boolean,
            Volatility::Stable,
            |args| Ok(boolean((!arg(args, 0).is_null()).then_some(true))),
        ));
    }
    for name in PRIVILEGE_FUNCTIONS {
        functions.push(PgFunction::new(
            name,
            &[2, 3, 4],
            DataType::Boolean,
            Volatility::Stable,
            |_| Ok(boolean(Some(true))),
        ));
    }
    functions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_postgres() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(8192), "8192 bytes");
        assert_eq!(size_pretty(10 * 1024), "10 kB");
        assert_eq!(size_pretty(123_456_789), "118 MB");
        assert_eq!(size_pretty(-10 * 1024 * 1024), "-10 MB");
    }

    #[test]
    fn format_substitutes_like_postgres() {
        let args = |values: &[&str]| -> Vec<ScalarValue> {
            values
                .iter()
                .map(|v| ScalarValue::Utf8(Some((*v).to_owned())))
                .collect()
        };
        let formatted = |values: &[&str]| format(&args(values)).expect("formats").to_string();
        assert_eq!(
            formatted(&["%I.%I", "public", "Line Item"]),
            "public.\"Line Item\""
        );
        assert_eq!(formatted(&["%s = %L", "a", "it's"]), "a = 'it''s'");
        assert_eq!(formatted(&["%2$s %1$s %%", "a", "b"]), "b a %");
        assert!(format(&args(&["%s %s", "a"])).is_err());
    }
}
