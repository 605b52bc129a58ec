//! Functions that need nothing but their arguments: type spelling, encodings, privileges
//! (Basin's single role may do everything), descriptions (none are stored yet), sizes and
//! array bounds.

use arrow::array::Array;
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Volatility;

use super::{PgFunction, arg, arg_i64, arg_oid, arg_text, boolean, oid, text};
use crate::pg_catalog::snapshot::quote_ident;
use crate::pg_catalog::system::builtin_proc;
use crate::pg_catalog::types::{builtin_type, format_type};

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
        ScalarValue::List(list) if !list.is_null(0) => Some(list.value_length(0).into()),
        ScalarValue::LargeList(list) if !list.is_null(0) => list.value_length(0).try_into().ok(),
        ScalarValue::FixedSizeList(list) if !list.is_null(0) => Some(list.value_length().into()),
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
    ];
    for (name, arities) in NULL_TEXT_FUNCTIONS {
        functions.push(PgFunction::new(
            name,
            arities,
            DataType::Utf8,
            Volatility::Stable,
            |_| Ok(text(None::<String>)),
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
}
