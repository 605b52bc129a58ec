//! Size limits on the scalar functions whose one result value can be gigabytes.
//!
//! `repeat('x', 2000000000)`, `lpad('x', 2000000000)` or `range(1, 2000000000)` build one value
//! in a single call, outside DataFusion's memory accounting and without yielding: seconds to
//! minutes of one thread and up to 16 GB of memory for one row, enough for the kernel to kill
//! the server. PostgreSQL refuses such values up front (a field is at most 1 GB, an array at
//! most 134,217,727 elements) with SQLSTATE 54000; Basin wraps these functions to do the same
//! before they allocate. Every role registers the wrapped versions (see
//! [`crate::session::session_builder`]), so a fragment on an executor is held to them too.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// The largest value one call may build, in bytes (PostgreSQL's limit for one field).
pub const MAX_VALUE_BYTES: u64 = 1 << 30;
/// The most elements one array may hold (PostgreSQL's `MaxArraySize`).
pub const MAX_ARRAY_ELEMENTS: u64 = 134_217_727;
/// Error text prefix; the SQLSTATE mapping gives it 54000 (program_limit_exceeded).
pub const LIMIT_MESSAGE: &str = "requested length too large";

/// What is checked before a wrapped function runs.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Check {
    /// `repeat(text, n)`: longest text × largest n.
    Repeat,
    /// `lpad/rpad(text, n [, fill])`: n characters of up to 4 bytes.
    Pad,
    /// `range/generate_series(start, stop [, step])` on integers: the element count.
    Range,
    /// `string_to_array(text, delimiter [, null])`: the elements one string splits into.
    Split,
}

/// `functions` with the functions named in [`Check`] wrapped in their limit.
pub fn bound(functions: &mut [Arc<ScalarUDF>]) {
    for function in functions.iter_mut() {
        let check = match function.name() {
            "repeat" => Check::Repeat,
            "lpad" | "rpad" => Check::Pad,
            "range" | "generate_series" => Check::Range,
            "string_to_array" => Check::Split,
            _ => continue,
        };
        *function = Arc::new(ScalarUDF::new_from_impl(Bounded {
            inner: Arc::clone(function),
            check,
        }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    check: Check,
}

fn too_large(what: String) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!("{LIMIT_MESSAGE}: {what}"))
}

/// The largest integer of an argument (NULLs ignored); `None` when it has none or is not an
/// integer.
fn max_int(value: &ColumnarValue) -> Option<i64> {
    match value {
        ColumnarValue::Scalar(scalar) => match scalar.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(v) => v,
            _ => None,
        },
        ColumnarValue::Array(array) => {
            let array = arrow::compute::cast(array, &DataType::Int64).ok()?;
            arrow::compute::max(array.as_primitive::<arrow::datatypes::Int64Type>())
        }
    }
}

/// The smallest integer of an argument, as [`max_int`].
fn min_int(value: &ColumnarValue) -> Option<i64> {
    match value {
        ColumnarValue::Scalar(_) => max_int(value),
        ColumnarValue::Array(array) => {
            let array = arrow::compute::cast(array, &DataType::Int64).ok()?;
            arrow::compute::min(array.as_primitive::<arrow::datatypes::Int64Type>())
        }
    }
}

/// The longest string of an argument, in bytes (0 for non-strings).
fn max_len(value: &ColumnarValue) -> u64 {
    let len = |s: Option<&str>| s.map_or(0, |s| s.len() as u64);
    match value {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s),
        ) => len(s.as_deref()),
        ColumnarValue::Scalar(_) => 0,
        ColumnarValue::Array(array) => match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().iter().map(len).max(),
            DataType::LargeUtf8 => array.as_string::<i64>().iter().map(len).max(),
            DataType::Utf8View => array.as_string_view().iter().map(len).max(),
            _ => None,
        }
        .unwrap_or(0),
    }
}

/// The most elements one string of `text` splits into at `delimiter` (characters when it is
/// NULL, as Postgres splits then; one element when it is empty), counted up to just past
/// [`MAX_ARRAY_ELEMENTS`]: a 600 MB string of delimiters need not be read to its end to know it is
/// too many. Ends early with an error when the statement is cancelled meanwhile.
fn max_split(text: &ColumnarValue, delimiter: Option<&str>) -> Result<u64> {
    const CHECK_EVERY: u64 = 1 << 20;
    let count = |s: Option<&str>| -> Result<u64> {
        let Some(s) = s else { return Ok(0) };
        let mut n = 0;
        let tick = |n: &mut u64| -> Result<bool> {
            *n += 1;
            if n.is_multiple_of(CHECK_EVERY) {
                crate::cancellation::check()?;
            }
            Ok(*n > MAX_ARRAY_ELEMENTS)
        };
        match delimiter {
            None => {
                for _ in s.chars() {
                    if tick(&mut n)? {
                        break;
                    }
                }
            }
            Some("") => n = 1,
            Some(d) => {
                n = 1;
                for _ in memchr::memmem::find_iter(s.as_bytes(), d.as_bytes()) {
                    if tick(&mut n)? {
                        break;
                    }
                }
            }
        }
        Ok(n)
    };
    match text {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s),
        ) => count(s.as_deref()),
        ColumnarValue::Scalar(_) => Ok(0),
        ColumnarValue::Array(array) => match array.data_type() {
            DataType::Utf8 => most(array.as_string::<i32>().iter().map(count)),
            DataType::LargeUtf8 => most(array.as_string::<i64>().iter().map(count)),
            DataType::Utf8View => most(array.as_string_view().iter().map(count)),
            _ => Ok(0),
        },
    }
}

fn most(mut counts: impl Iterator<Item = Result<u64>>) -> Result<u64> {
    counts.try_fold(0, |most, n| Ok(most.max(n?)))
}

impl Bounded {
    fn admit(&self, args: &[ColumnarValue]) -> Result<()> {
        match self.check {
            Check::Repeat => {
                let (Some(text), Some(count)) = (args.first(), args.get(1)) else {
                    return Ok(());
                };
                let count = max_int(count).unwrap_or(0).max(0) as u64;
                let bytes = max_len(text).saturating_mul(count);
                if bytes > MAX_VALUE_BYTES {
                    return Err(too_large(format!(
                        "repeat would build a value of {bytes} bytes (at most {MAX_VALUE_BYTES})"
                    )));
                }
            }
            Check::Pad => {
                let Some(count) = args.get(1) else {
                    return Ok(());
                };
                let chars = max_int(count).unwrap_or(0).max(0) as u64;
                if chars.saturating_mul(4) > MAX_VALUE_BYTES {
                    return Err(too_large(format!(
                        "{} to {chars} characters (at most {})",
                        self.inner.name(),
                        MAX_VALUE_BYTES / 4
                    )));
                }
            }
            Check::Split => {
                let (Some(text), Some(ColumnarValue::Scalar(delimiter))) =
                    (args.first(), args.get(1))
                else {
                    return Ok(());
                };
                let delimiter = match delimiter {
                    ScalarValue::Utf8(d) | ScalarValue::LargeUtf8(d) | ScalarValue::Utf8View(d) => {
                        d.clone()
                    }
                    _ => return Ok(()),
                };
                let elements = max_split(text, delimiter.as_deref())?;
                if elements > MAX_ARRAY_ELEMENTS {
                    return Err(too_large(format!(
                        "string_to_array would build an array of more than \
                         {MAX_ARRAY_ELEMENTS} elements"
                    )));
                }
            }
            Check::Range => {
                let (start, stop, step) = match args {
                    [stop] => (Some(0), max_int(stop), Some(1)),
                    [start, stop] => (min_int(start), max_int(stop), Some(1)),
                    [start, stop, step] => (min_int(start), max_int(stop), min_int(step)),
                    _ => return Ok(()),
                };
                let (Some(start), Some(stop), Some(step)) = (start, stop, step) else {
                    return Ok(());
                };
                // Only ascending ranges are checked; a negative step counts down from `stop`'s
                // side, which the largest `stop` and smallest `start` do not bound.
                if step > 0 {
                    let span = i128::from(stop) - i128::from(start);
                    let elements = span / i128::from(step) + 1;
                    if elements > i128::from(MAX_ARRAY_ELEMENTS) {
                        return Err(too_large(format!(
                            "{} would build an array of {elements} elements (at most \
                             {MAX_ARRAY_ELEMENTS}); use the table function \
                             generate_series(start, stop) in FROM for long series",
                            self.inner.name()
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        crate::cancellation::check()?;
        self.admit(&args.args)?;
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn call(function: &ScalarUDF, args: Vec<ColumnarValue>) -> Result<ColumnarValue> {
        let arg_fields: Vec<FieldRef> = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect();
        let arg_types: Vec<DataType> = args.iter().map(|a| a.data_type()).collect();
        let return_type = function.return_type(&arg_types)?;
        function.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: 1,
            return_field: Arc::new(Field::new("r", return_type, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    fn bounded(name: &str) -> Arc<ScalarUDF> {
        let mut functions: Vec<Arc<ScalarUDF>> = datafusion::functions::all_default_functions()
            .into_iter()
            .chain(datafusion::functions_nested::all_default_nested_functions())
            .filter(|f| f.name() == name)
            .collect();
        bound(&mut functions);
        functions.pop().expect("function exists")
    }

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.to_owned())))
    }

    fn int(v: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(v)))
    }

    #[test]
    fn oversized_values_are_refused_before_they_are_built() {
        let repeat = bounded("repeat");
        assert!(call(&repeat, vec![text("ab"), int(3)]).is_ok());
        let err = call(&repeat, vec![text("xy"), int(600_000_000)]).expect_err("2.4 GB");
        assert!(err.to_string().contains(LIMIT_MESSAGE), "{err}");
        let lpad = bounded("lpad");
        assert!(call(&lpad, vec![text("x"), int(5)]).is_ok());
        assert!(call(&lpad, vec![text("x"), int(2_000_000_000)]).is_err());
        let range = bounded("range");
        assert!(call(&range, vec![int(1), int(10)]).is_ok());
        let err = call(&range, vec![int(1), int(2_000_000_000)]).expect_err("2e9 elements");
        assert!(
            matches!(err, DataFusionError::ResourcesExhausted(_)),
            "{err}"
        );
        assert!(call(&range, vec![int(1), int(2_000_000_000), int(100)]).is_ok());
        let split = bounded("string_to_array");
        assert!(call(&split, vec![text("a,b"), text(",")]).is_ok());
        let many = ",".repeat(MAX_ARRAY_ELEMENTS as usize);
        let err = call(&split, vec![text(&many), text(",")]).expect_err("too many");
        assert!(err.to_string().contains(LIMIT_MESSAGE), "{err}");
    }

    #[test]
    fn split_counts_bound_postgres_element_counts() {
        let scalar = |s: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.to_owned())));
        let count = |s: &str, d: Option<&str>| max_split(&scalar(s), d).expect("not cancelled");
        assert_eq!(count("a,b,,c", Some(",")), 4);
        // An upper bound: Postgres splits '' into no element at all.
        assert_eq!(count("", Some(",")), 1);
        // Matches do not overlap: 'aaaa' split at 'aa' is '', '', ''.
        assert_eq!(count("aaaa", Some("aa")), 3);
        assert_eq!(count("abc", Some("")), 1);
        assert_eq!(count("añb", None), 3);
        let array = ColumnarValue::Array(Arc::new(arrow::array::StringArray::from(vec![
            Some("a"),
            None,
            Some("a-b-c"),
        ])));
        assert_eq!(max_split(&array, Some("-")).expect("not cancelled"), 3);
        // Counting stops just past the limit.
        let many = ",".repeat(MAX_ARRAY_ELEMENTS as usize + 5);
        assert_eq!(count(&many, Some(",")), MAX_ARRAY_ELEMENTS + 1);
    }
}
