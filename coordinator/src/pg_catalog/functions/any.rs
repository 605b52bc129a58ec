//! `x = ANY($1)` with the array a bind parameter: DataFusion plans `= ANY` as `array_has`, which
//! needs the parameter's type while planning, and Basin plans before it sees the values. The
//! rewrite calls this function instead, which takes the array as it arrives (a list, or
//! Postgres' text form `{a,"b c",NULL}` from clients that send it untyped) and compares each
//! element, cast to the type of `x`, with `x`, with Postgres' NULL rules.

use arrow::array::Array;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::Volatility;

use super::{PgFunction, arg, arg_text};

/// The name of the function the rewrite calls for `x = ANY($n)`.
pub(in crate::pg_catalog) const ANY_EQUALS: &str = "__basin_any_equals";

pub(super) fn functions() -> Vec<PgFunction> {
    vec![PgFunction::new(
        ANY_EQUALS,
        &[2],
        DataType::Boolean,
        Volatility::Immutable,
        |args| any_equals(arg(args, 0), arg(args, 1)),
    )]
}

fn any_equals(array: &ScalarValue, needle: &ScalarValue) -> Result<ScalarValue> {
    let Some(elements) = elements(array)? else {
        return Ok(ScalarValue::Boolean(None));
    };
    if needle.is_null() {
        return Ok(ScalarValue::Boolean(None));
    }
    let target = needle.data_type();
    let mut saw_null = false;
    for element in elements {
        if element.is_null() {
            saw_null = true;
            continue;
        }
        let element = if element.data_type() == target {
            element
        } else {
            match element.cast_to(&target) {
                Ok(cast) => cast,
                Err(_) => {
                    return exec_err!(
                        "invalid input syntax for type {target}: \"{}\"",
                        arg_text(&element).unwrap_or_default()
                    );
                }
            }
        };
        if element == *needle {
            return Ok(ScalarValue::Boolean(Some(true)));
        }
    }
    // No element equals x: false, or NULL (unknown) if some element was NULL.
    Ok(ScalarValue::Boolean((!saw_null).then_some(false)))
}

/// The elements of a list value, or of an array in Postgres' text form; `None` for NULL.
fn elements(array: &ScalarValue) -> Result<Option<Vec<ScalarValue>>> {
    match array {
        value if value.is_null() => Ok(None),
        ScalarValue::List(list) => list_elements(list.value(0).as_ref()),
        ScalarValue::LargeList(list) => list_elements(list.value(0).as_ref()),
        ScalarValue::FixedSizeList(list) => list_elements(list.value(0).as_ref()),
        other => match arg_text(other) {
            Some(text) => parse_array_text(&text).map(Some),
            None => Ok(None),
        },
    }
}

fn list_elements(values: &dyn Array) -> Result<Option<Vec<ScalarValue>>> {
    (0..values.len())
        .map(|index| ScalarValue::try_from_array(values, index))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// `{a,"b c",NULL}` → `['a', 'b c', NULL]` (one dimension, as text).
fn parse_array_text(text: &str) -> Result<Vec<ScalarValue>> {
    let trimmed = text.trim();
    let Some(inner) = trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
        return exec_err!("malformed array literal: \"{text}\"");
    };
    let mut elements = Vec::new();
    if inner.trim().is_empty() {
        return Ok(elements);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return exec_err!("malformed array literal: \"{text}\""),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return exec_err!("malformed array literal: \"{text}\""),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        let element = if !quoted && value.eq_ignore_ascii_case("NULL") {
            ScalarValue::Utf8(None)
        } else {
            ScalarValue::Utf8(Some(value))
        };
        elements.push(element);
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return exec_err!("malformed array literal: \"{text}\""),
        }
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(value.to_owned()))
    }

    #[test]
    fn text_arrays_compare_by_the_needle_type() {
        let yes = ScalarValue::Boolean(Some(true));
        let no = ScalarValue::Boolean(Some(false));
        let unknown = ScalarValue::Boolean(None);
        let any =
            |array: &str, needle: ScalarValue| any_equals(&text(array), &needle).expect("compares");
        assert_eq!(any("{r,v,m}", text("v")), yes);
        assert_eq!(any("{\"b c\",\"d,e\"}", text("d,e")), yes);
        assert_eq!(any("{1, 3}", ScalarValue::Int64(Some(3))), yes);
        assert_eq!(any("{1,3}", ScalarValue::UInt32(Some(2))), no);
        assert_eq!(any("{1,NULL}", ScalarValue::Int64(Some(2))), unknown);
        assert_eq!(any("{1,NULL}", ScalarValue::Int64(Some(1))), yes);
        assert_eq!(any("{}", text("a")), no);
        assert_eq!(any("{a}", ScalarValue::Utf8(None)), unknown);
        assert!(any_equals(&text("{x}"), &ScalarValue::Int64(Some(1))).is_err());
        assert!(any_equals(&text("x"), &text("x")).is_err());
    }
}
