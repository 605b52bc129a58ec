//! Arrow record batches to Postgres DataRows, in text or binary format per column, written
//! straight into the row buffer (no per-value allocation for the common types).

use std::fmt::Write as _;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, GenericListArray, Int8Array, Int16Array, Int32Array, Int64Array,
    IntervalMonthDayNanoArray, OffsetSizeTrait, StringArray, StructArray, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, IntervalMonthDayNano, IntervalUnit, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use bytes::{BufMut, BytesMut};
use pgwire::api::results::FieldFormat;
use pgwire::messages::data::DataRow;

use super::types::pg_type;
use crate::error::{Error, Result};
use crate::pg_catalog::{PG_TYPE_METADATA, REGPROC, regproc_text};

/// Microseconds between 1970-01-01 (Arrow's epoch) and 2000-01-01 (Postgres's).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// Encodes every row of `batch`; `formats[i]` is column i's wire format.
pub(crate) fn encode_batch(batch: &RecordBatch, formats: &[FieldFormat]) -> Result<Vec<DataRow>> {
    let schema = batch.schema();
    let columns = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let text = matches!(
                formats.get(index).copied().unwrap_or(FieldFormat::Text),
                FieldFormat::Text
            );
            if text && is_regproc(schema.field(index)) {
                regproc_names(column)
            } else {
                normalize(column)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let text_options = FormatOptions::default().with_null("");
    let formatters = columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &text_options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("format result column: {e}")))?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut buffer = BytesMut::with_capacity(batch.num_rows() * columns.len() * 12);
    // One scratch string for the values whose text is built before it is written.
    let mut scratch = String::new();
    for row in 0..batch.num_rows() {
        for (index, column) in columns.iter().enumerate() {
            let format = formats.get(index).copied().unwrap_or(FieldFormat::Text);
            write_value(
                &mut buffer,
                &mut scratch,
                column,
                row,
                format,
                &formatters[index],
            )?;
        }
        rows.push(DataRow::new(buffer.split(), columns.len() as i16));
    }
    Ok(rows)
}

/// Whether a result column is a catalog `regproc` column: sent as type `regproc`, whose text
/// form is the function's name.
pub(crate) fn is_regproc(field: &Field) -> bool {
    field
        .metadata()
        .get(PG_TYPE_METADATA)
        .is_some_and(|t| t == REGPROC)
}

/// A `regproc` column (function OIDs) as the names Postgres prints for them.
fn regproc_names(column: &ArrayRef) -> Result<ArrayRef> {
    let oids = cast(column, &DataType::UInt32)
        .map_err(|e| Error::Internal(format!("read regproc column: {e}")))?;
    let names: StringArray = oids
        .as_primitive::<arrow::datatypes::UInt32Type>()
        .iter()
        .map(|oid| oid.map(regproc_text))
        .collect();
    Ok(std::sync::Arc::new(names))
}

/// Dictionaries and view/large variants become their plain form so the writers below see few
/// layouts.
fn normalize(column: &ArrayRef) -> Result<ArrayRef> {
    let target = match column.data_type() {
        DataType::Dictionary(_, value) => Some(value.as_ref().clone()),
        DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
        DataType::BinaryView | DataType::LargeBinary | DataType::FixedSizeBinary(_) => {
            Some(DataType::Binary)
        }
        DataType::Date64 => Some(DataType::Date32),
        DataType::Float16 => Some(DataType::Float32),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => Some(DataType::Decimal128(*p, *s)),
        DataType::Time32(_) => Some(DataType::Time64(TimeUnit::Microsecond)),
        DataType::Interval(IntervalUnit::YearMonth | IntervalUnit::DayTime) => {
            Some(DataType::Interval(IntervalUnit::MonthDayNano))
        }
        DataType::FixedSizeList(field, _)
        | DataType::ListView(field)
        | DataType::LargeListView(field) => Some(DataType::List(std::sync::Arc::clone(field))),
        _ => None,
    };
    match target {
        Some(target) => {
            let cast = cast(column, &target)
                .map_err(|e| Error::Internal(format!("normalize result column: {e}")))?;
            normalize(&cast)
        }
        None => Ok(std::sync::Arc::clone(column)),
    }
}

/// Whether a value is NULL. A column of type `Null` (`SELECT NULL AS x`) has no validity buffer,
/// so `Array::is_null` calls all its values valid.
fn is_null_at(column: &dyn Array, index: usize) -> bool {
    column.data_type() == &DataType::Null || column.is_null(index)
}

/// Writes one field: a 4-byte length (-1 for NULL) and the value's bytes.
fn write_value(
    buffer: &mut BytesMut,
    scratch: &mut String,
    column: &ArrayRef,
    row: usize,
    format: FieldFormat,
    formatter: &ArrayFormatter<'_>,
) -> Result<()> {
    if is_null_at(column, row) {
        buffer.put_i32(-1);
        return Ok(());
    }
    let length_at = buffer.len();
    buffer.put_i32(0);
    match format {
        FieldFormat::Text => write_text(buffer, scratch, column, row, formatter),
        FieldFormat::Binary => write_binary(buffer, column, row)?,
    }
    let length = (buffer.len() - length_at - 4) as i32;
    buffer[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Text output of one non-null value. Strings and integers, most of what results hold, go
/// straight into the row; other types are built in `scratch` first.
fn write_text(
    buffer: &mut BytesMut,
    scratch: &mut String,
    column: &ArrayRef,
    row: usize,
    formatter: &ArrayFormatter<'_>,
) {
    match column.data_type() {
        DataType::Utf8 => buffer.put_slice(column.as_string::<i32>().value(row).as_bytes()),
        DataType::Int16 => put_integer::<arrow::datatypes::Int16Type>(buffer, column, row),
        DataType::Int32 => put_integer::<arrow::datatypes::Int32Type>(buffer, column, row),
        DataType::Int64 => put_integer::<arrow::datatypes::Int64Type>(buffer, column, row),
        _ => {
            scratch.clear();
            text_value(scratch, column, row, formatter);
            buffer.put_slice(scratch.as_bytes());
        }
    }
}

/// An integer's decimal text, written into the row.
fn put_integer<T>(buffer: &mut BytesMut, column: &ArrayRef, row: usize)
where
    T: arrow::datatypes::ArrowPrimitiveType,
    T::Native: itoa::Integer,
{
    let mut digits = itoa::Buffer::new();
    buffer.put_slice(
        digits
            .format(column.as_primitive::<T>().value(row))
            .as_bytes(),
    );
}

/// Postgres text output for one non-null value.
fn text_value(out: &mut String, column: &ArrayRef, row: usize, formatter: &ArrayFormatter<'_>) {
    match column.data_type() {
        DataType::Boolean => out.push(if column.as_boolean().value(row) {
            't'
        } else {
            'f'
        }),
        DataType::Utf8 => out.push_str(column.as_string::<i32>().value(row)),
        DataType::Float32 => {
            let v = column
                .as_primitive::<arrow::datatypes::Float32Type>()
                .value(row);
            float_text(out, f64::from(v), v.to_string(), 6);
        }
        DataType::Float64 => {
            let v = column
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(row);
            float_text(out, v, v.to_string(), 15);
        }
        DataType::Decimal128(_, scale) => {
            let v = column
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .value(row);
            decimal_text(out, v, *scale);
        }
        DataType::Binary => {
            out.push_str("\\x");
            for byte in column.as_binary::<i32>().value(row) {
                let _ = write!(out, "{byte:02x}");
            }
        }
        DataType::Date32 => {
            let days = column
                .as_primitive::<arrow::datatypes::Date32Type>()
                .value(row);
            match chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0) {
                Some(date) => {
                    let _ = write!(out, "{}", date.format("%Y-%m-%d"));
                }
                None => out.push_str(&formatter.value(row).to_string()),
            }
        }
        DataType::Time64(unit) => {
            let micros = match unit {
                TimeUnit::Nanosecond => {
                    column
                        .as_primitive::<arrow::datatypes::Time64NanosecondType>()
                        .value(row)
                        / 1000
                }
                _ => column
                    .as_primitive::<arrow::datatypes::Time64MicrosecondType>()
                    .value(row),
            };
            time_text(out, micros);
        }
        DataType::Timestamp(unit, tz) => {
            let micros = timestamp_micros(column, *unit, row);
            timestamp_text(out, micros, tz.is_some());
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = column
                .as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>()
                .value(row);
            interval_text(out, v);
        }
        DataType::Duration(unit) => {
            let (days, micros) = duration_days(column, *unit, row);
            interval_text(
                out,
                IntervalMonthDayNano::new(0, days, micros.saturating_mul(1_000)),
            );
        }
        DataType::List(_) => list_text(out, column.as_list::<i32>(), row),
        DataType::LargeList(_) => list_text(out, column.as_list::<i64>(), row),
        DataType::Struct(_) => struct_text(out, column.as_struct(), row),
        _ => {
            let _ = write!(out, "{}", formatter.value(row));
        }
    }
}

/// Postgres 12+ prints the shortest text that round-trips, switching to exponent form for
/// very large or small magnitudes.
fn float_text(out: &mut String, value: f64, shortest: String, digits: i32) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else if value != 0.0 && (value.abs() >= 10f64.powi(digits) || value.abs() < 1e-4) {
        let exponent = format!("{:e}", shortest.parse::<f64>().unwrap_or(value));
        match exponent.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
            }
            None => out.push_str(&exponent),
        }
    } else {
        out.push_str(&shortest);
    }
}

fn decimal_text(out: &mut String, value: i128, scale: i8) {
    if scale <= 0 {
        let _ = write!(
            out,
            "{}",
            value * 10i128.pow(u32::from(scale.unsigned_abs()))
        );
        return;
    }
    let scale = scale as usize;
    let digits = value.unsigned_abs().to_string();
    if value < 0 {
        out.push('-');
    }
    if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
}

fn time_text(out: &mut String, micros: i64) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    );
    fraction_text(out, fraction);
}

fn fraction_text(out: &mut String, micros: i64) {
    if micros != 0 {
        let text = format!("{micros:06}");
        out.push('.');
        out.push_str(text.trim_end_matches('0'));
    }
}

fn timestamp_micros(column: &ArrayRef, unit: TimeUnit, row: usize) -> i64 {
    use arrow::datatypes::*;
    match unit {
        TimeUnit::Second => column
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => column
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1_000),
        TimeUnit::Microsecond => column.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => column
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1_000),
    }
}

/// A duration as Postgres's `timestamp - timestamp` interval: whole days and the microseconds
/// left, both with the duration's sign (`interval_justify_hours`), so `8499 days`, not
/// `203976:00:00`. Days beyond `i32` saturate.
fn duration_days(column: &ArrayRef, unit: TimeUnit, row: usize) -> (i32, i64) {
    use arrow::datatypes::*;
    let micros: i128 = match unit {
        TimeUnit::Second => {
            i128::from(column.as_primitive::<DurationSecondType>().value(row)) * 1_000_000
        }
        TimeUnit::Millisecond => {
            i128::from(column.as_primitive::<DurationMillisecondType>().value(row)) * 1_000
        }
        TimeUnit::Microsecond => {
            i128::from(column.as_primitive::<DurationMicrosecondType>().value(row))
        }
        TimeUnit::Nanosecond => {
            i128::from(column.as_primitive::<DurationNanosecondType>().value(row)) / 1_000
        }
    };
    const DAY: i128 = 86_400_000_000;
    let days = i32::try_from(micros / DAY).unwrap_or(if micros < 0 { i32::MIN } else { i32::MAX });
    (days, (micros % DAY) as i64)
}

/// Timestamps print in UTC (the session time zone Basin reports); `timestamptz` adds `+00`.
fn timestamp_text(out: &mut String, micros: i64, with_zone: bool) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    match chrono::DateTime::from_timestamp(seconds, 0) {
        Some(time) => {
            let _ = write!(out, "{}", time.format("%Y-%m-%d %H:%M:%S"));
            fraction_text(out, fraction);
            if with_zone {
                out.push_str("+00");
            }
        }
        None => {
            let _ = write!(out, "{micros}");
        }
    }
}

/// Postgres `IntervalStyle = postgres`: `1 year 2 mons 3 days 04:05:06.5`.
fn interval_text(out: &mut String, value: IntervalMonthDayNano) {
    let mut parts: Vec<String> = Vec::new();
    let years = value.months / 12;
    let months = value.months % 12;
    // Postgres says "1 day" but "-1 days": only exactly one is singular.
    let plural = |n: i32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if years != 0 {
        parts.push(plural(years, "year", "years"));
    }
    if months != 0 {
        parts.push(plural(months, "mon", "mons"));
    }
    if value.days != 0 {
        parts.push(plural(value.days, "day", "days"));
    }
    let micros = value.nanoseconds / 1_000;
    if micros != 0 || parts.is_empty() {
        let mut time = String::new();
        if micros < 0 {
            time.push('-');
        }
        time_text(&mut time, micros.abs());
        parts.push(time);
    }
    out.push_str(&parts.join(" "));
}

/// A Postgres array literal. Nested lists are the array's further dimensions (`{{1,2},{3,4}}`,
/// the element type's array type in RowDescription); Postgres requires them to be rectangular,
/// which the text form does not enforce: a ragged list reads back as the lists it is.
fn list_text<O: OffsetSizeTrait>(out: &mut String, list: &GenericListArray<O>, row: usize) {
    let values = list.value(row);
    let values = normalize(&values).unwrap_or(values);
    match values.data_type() {
        DataType::List(_) => sub_arrays_text(out, values.as_list::<i32>()),
        DataType::LargeList(_) => sub_arrays_text(out, values.as_list::<i64>()),
        _ => elements_text(out, &values),
    }
}

fn sub_arrays_text<O: OffsetSizeTrait>(out: &mut String, lists: &GenericListArray<O>) {
    out.push('{');
    for index in 0..lists.len() {
        if index > 0 {
            out.push(',');
        }
        if lists.is_null(index) {
            out.push_str("NULL");
        } else {
            list_text(out, lists, index);
        }
    }
    out.push('}');
}

fn elements_text(out: &mut String, values: &ArrayRef) {
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(values.as_ref(), &options).ok();
    out.push('{');
    for index in 0..values.len() {
        if index > 0 {
            out.push(',');
        }
        if is_null_at(values, index) {
            out.push_str("NULL");
            continue;
        }
        let mut element = String::new();
        if let Some(formatter) = &formatter {
            text_value(&mut element, values, index, formatter);
        }
        let needs_quotes = element.is_empty()
            || element.eq_ignore_ascii_case("null")
            || element
                .chars()
                .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
        if needs_quotes {
            out.push('"');
            out.push_str(&element.replace('\\', "\\\\").replace('"', "\\\""));
            out.push('"');
        } else {
            out.push_str(&element);
        }
    }
    out.push('}');
}

fn struct_text(out: &mut String, array: &StructArray, row: usize) {
    let options = FormatOptions::default();
    out.push('(');
    for (index, column) in array.columns().iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        if is_null_at(column, row) {
            continue;
        }
        let Ok(formatter) = ArrayFormatter::try_new(column.as_ref(), &options) else {
            continue;
        };
        let mut element = String::new();
        text_value(&mut element, column, row, &formatter);
        if element.is_empty()
            || element
                .chars()
                .any(|c| matches!(c, '(' | ')' | ',' | '"' | '\\') || c.is_whitespace())
        {
            out.push('"');
            out.push_str(&element.replace('\\', "\\\\").replace('"', "\\\""));
            out.push('"');
        } else {
            out.push_str(&element);
        }
    }
    out.push(')');
}

fn write_binary(buffer: &mut BytesMut, column: &ArrayRef, row: usize) -> Result<()> {
    let any = column.as_any();
    match column.data_type() {
        DataType::Boolean => buffer.put_u8(u8::from(downcast::<BooleanArray>(any)?.value(row))),
        DataType::Int8 => buffer.put_i16(i16::from(downcast::<Int8Array>(any)?.value(row))),
        DataType::UInt8 => buffer.put_i16(i16::from(downcast::<UInt8Array>(any)?.value(row))),
        DataType::Int16 => buffer.put_i16(downcast::<Int16Array>(any)?.value(row)),
        DataType::UInt16 => buffer.put_i32(i32::from(downcast::<UInt16Array>(any)?.value(row))),
        DataType::Int32 => buffer.put_i32(downcast::<Int32Array>(any)?.value(row)),
        DataType::UInt32 => buffer.put_u32(downcast::<UInt32Array>(any)?.value(row)),
        DataType::Int64 => buffer.put_i64(downcast::<Int64Array>(any)?.value(row)),
        DataType::UInt64 => numeric_binary(
            buffer,
            i128::from(downcast::<UInt64Array>(any)?.value(row)),
            0,
        ),
        DataType::Float32 => buffer.put_f32(downcast::<Float32Array>(any)?.value(row)),
        DataType::Float64 => buffer.put_f64(downcast::<Float64Array>(any)?.value(row)),
        DataType::Decimal128(_, scale) => {
            numeric_binary(buffer, downcast::<Decimal128Array>(any)?.value(row), *scale)
        }
        DataType::Utf8 => buffer.put_slice(column.as_string::<i32>().value(row).as_bytes()),
        DataType::Binary => buffer.put_slice(column.as_binary::<i32>().value(row)),
        DataType::Date32 => buffer.put_i32(
            downcast::<Date32Array>(any)?
                .value(row)
                .saturating_sub(PG_EPOCH_OFFSET_DAYS),
        ),
        DataType::Time64(unit) => {
            let micros = match unit {
                TimeUnit::Nanosecond => {
                    column
                        .as_primitive::<arrow::datatypes::Time64NanosecondType>()
                        .value(row)
                        / 1000
                }
                _ => column
                    .as_primitive::<arrow::datatypes::Time64MicrosecondType>()
                    .value(row),
            };
            buffer.put_i64(micros);
        }
        DataType::Timestamp(unit, _) => buffer
            .put_i64(timestamp_micros(column, *unit, row).saturating_sub(PG_EPOCH_OFFSET_MICROS)),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = downcast::<IntervalMonthDayNanoArray>(any)?.value(row);
            buffer.put_i64(v.nanoseconds / 1_000);
            buffer.put_i32(v.days);
            buffer.put_i32(v.months);
        }
        DataType::Duration(unit) => {
            let (days, micros) = duration_days(column, *unit, row);
            buffer.put_i64(micros);
            buffer.put_i32(days);
            buffer.put_i32(0);
        }
        DataType::List(_) => array_binary(buffer, &column.as_list::<i32>().value(row))?,
        DataType::LargeList(_) => array_binary(buffer, &column.as_list::<i64>().value(row))?,
        other => {
            // Types without a binary form of their own (structs, maps) go as their text, which
            // is what Basin reports them as (record / json).
            let options = FormatOptions::default();
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
                .map_err(|e| Error::Internal(format!("format {other} value: {e}")))?;
            let mut text = String::new();
            text_value(&mut text, column, row, &formatter);
            buffer.put_slice(text.as_bytes());
        }
    }
    Ok(())
}

fn downcast<T: 'static>(any: &dyn std::any::Any) -> Result<&T> {
    any.downcast_ref::<T>()
        .ok_or_else(|| Error::Internal("result column has an unexpected layout".to_owned()))
}

/// An array in Postgres binary array format: `values` are the outer dimension's elements; nested
/// lists are further dimensions, which must be rectangular and without NULL sub-arrays, as in
/// Postgres (2202E otherwise). The element OID is the innermost type's.
fn array_binary(buffer: &mut BytesMut, values: &ArrayRef) -> Result<()> {
    let mut dims = vec![values.len()];
    let mut leaves = normalize(values)?;
    loop {
        let next = match leaves.data_type() {
            DataType::List(_) => sub_arrays(leaves.as_list::<i32>())?,
            DataType::LargeList(_) => sub_arrays(leaves.as_list::<i64>())?,
            _ => break,
        };
        let Some((length, flattened)) = next else {
            break;
        };
        dims.push(length);
        leaves = normalize(&flattened)?;
    }
    // The element type is the innermost one even when an empty level stopped the walk early.
    let element = pg_type(crate::pg_catalog::innermost_element(values.data_type()));
    if dims.contains(&0) {
        // As Postgres sends it: an array with no elements is zero-dimensional.
        buffer.put_i32(0);
        buffer.put_i32(0);
        buffer.put_u32(element.oid());
        return Ok(());
    }
    if dims.len() > MAX_ARRAY_DIMENSIONS {
        return Err(Error::user(
            "54000",
            format!(
                "number of array dimensions ({}) exceeds the maximum allowed ({MAX_ARRAY_DIMENSIONS})",
                dims.len()
            ),
        ));
    }
    let too_large = || Error::user("54000", "array dimension too large for the wire");
    let has_nulls = leaves.null_count() > 0 || leaves.data_type() == &DataType::Null;
    buffer.put_i32(i32::try_from(dims.len()).map_err(|_| too_large())?);
    buffer.put_i32(i32::from(has_nulls));
    buffer.put_u32(element.oid());
    for dim in &dims {
        buffer.put_i32(i32::try_from(*dim).map_err(|_| too_large())?);
        buffer.put_i32(1);
    }
    for index in 0..leaves.len() {
        if is_null_at(&leaves, index) {
            buffer.put_i32(-1);
            continue;
        }
        let length_at = buffer.len();
        buffer.put_i32(0);
        write_binary(buffer, &leaves, index)?;
        let length = (buffer.len() - length_at - 4) as i32;
        buffer[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    }
    Ok(())
}

/// Postgres's `MAXDIM`: `array_recv` refuses more dimensions.
const MAX_ARRAY_DIMENSIONS: usize = 6;

/// The common length of `lists`' rows and their values one after the other, or `None` when
/// there are no rows (no further dimension to find). Errors for ragged or NULL sub-arrays.
fn sub_arrays<O: OffsetSizeTrait>(
    lists: &GenericListArray<O>,
) -> Result<Option<(usize, ArrayRef)>> {
    if lists.is_empty() {
        return Ok(None);
    }
    let ragged = || {
        Error::user(
            "2202E",
            "multidimensional arrays must have array expressions with matching dimensions",
        )
    };
    if lists.null_count() > 0 {
        return Err(ragged());
    }
    let offsets = lists.value_offsets();
    let length = offsets[1].as_usize() - offsets[0].as_usize();
    if offsets
        .windows(2)
        .any(|w| w[1].as_usize() - w[0].as_usize() != length)
    {
        return Err(ragged());
    }
    let start = offsets[0].as_usize();
    let end = offsets[lists.len()].as_usize();
    Ok(Some((length, lists.values().slice(start, end - start))))
}

/// Postgres binary `numeric`: base-10000 digits with weight, sign and display scale.
pub(crate) fn numeric_binary(buffer: &mut BytesMut, value: i128, scale: i8) {
    let scale_digits = scale.max(0) as usize;
    let mut text = value.unsigned_abs().to_string();
    if scale < 0 {
        text.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
    }
    if text.len() <= scale_digits {
        text = "0".repeat(scale_digits - text.len() + 1) + &text;
    }
    let (int_part, frac_part) = text.split_at(text.len() - scale_digits);
    let int_part = int_part.trim_start_matches('0');
    // Pad so both parts split into whole groups of four decimal digits.
    let int_padded = format!("{}{int_part}", "0".repeat((4 - int_part.len() % 4) % 4));
    let frac_padded = format!("{frac_part}{}", "0".repeat((4 - frac_part.len() % 4) % 4));
    let mut digits: Vec<i16> = int_padded
        .as_bytes()
        .chunks(4)
        .chain(frac_padded.as_bytes().chunks(4))
        .map(|chunk| {
            chunk
                .iter()
                .fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'))
        })
        .collect();
    let mut weight = (int_padded.len() / 4) as i16 - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    buffer.put_i16(digits.len() as i16);
    buffer.put_i16(weight);
    buffer.put_u16(if value < 0 { 0x4000 } else { 0 });
    buffer.put_i16(scale_digits as i16);
    for digit in digits {
        buffer.put_i16(digit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_float_text() {
        let mut out = String::new();
        decimal_text(&mut out, -5, 2);
        assert_eq!(out, "-0.05");
        out.clear();
        decimal_text(&mut out, 123450, 2);
        assert_eq!(out, "1234.50");
        out.clear();
        float_text(&mut out, 1e20, 1e20f64.to_string(), 15);
        assert_eq!(out, "1e+20");
        out.clear();
        float_text(&mut out, 0.1, 0.1f64.to_string(), 15);
        assert_eq!(out, "0.1");
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // 1234.50 -> ndigits 2, weight 0, dscale 2, digits [1234, 5000]
        let mut buffer = BytesMut::new();
        numeric_binary(&mut buffer, 123450, 2);
        assert_eq!(
            &buffer[..],
            &[0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xd2, 0x13, 0x88]
        );
        let mut zero = BytesMut::new();
        numeric_binary(&mut zero, 0, 2);
        assert_eq!(&zero[..], &[0, 0, 0, 0, 0, 0, 0, 2]);
    }

    /// The fields of one encoded row, `None` for NULL.
    fn fields(row: &DataRow) -> Vec<Option<String>> {
        let mut data = &row.data[..];
        (0..row.field_count)
            .map(|_| {
                let (length, rest) = data.split_at(4);
                let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
                if length < 0 {
                    data = rest;
                    return None;
                }
                let (value, rest) = rest.split_at(length as usize);
                data = rest;
                Some(String::from_utf8(value.to_vec()).expect("utf-8 text"))
            })
            .collect()
    }

    #[test]
    fn text_rows_of_strings_integers_and_others() {
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            (
                "s",
                Arc::new(StringArray::from(vec![Some("a b"), None, Some("")])) as ArrayRef,
            ),
            (
                "i16",
                Arc::new(Int16Array::from(vec![i16::MIN, 0, 7])) as ArrayRef,
            ),
            (
                "i32",
                Arc::new(Int32Array::from(vec![Some(-42), Some(i32::MAX), None])) as ArrayRef,
            ),
            (
                "i64",
                Arc::new(Int64Array::from(vec![i64::MIN, 1, -1])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![0.5, 1e20, f64::NAN])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![true, false, true])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let rows = encode_batch(&batch, &[FieldFormat::Text; 6]).expect("encode");
        let text: Vec<Vec<Option<String>>> = rows.iter().map(fields).collect();
        let expected = [
            [
                Some("a b"),
                Some("-32768"),
                Some("-42"),
                Some("-9223372036854775808"),
                Some("0.5"),
                Some("t"),
            ],
            [
                None,
                Some("0"),
                Some("2147483647"),
                Some("1"),
                Some("1e+20"),
                Some("f"),
            ],
            [
                Some(""),
                Some("7"),
                None,
                Some("-1"),
                Some("NaN"),
                Some("t"),
            ],
        ]
        .map(|row| row.map(|v| v.map(str::to_owned)).to_vec());
        assert_eq!(text, expected);
    }

    #[test]
    fn interval_text_postgres_style() {
        let mut out = String::new();
        interval_text(
            &mut out,
            IntervalMonthDayNano::new(14, 3, 4 * 3_600_000_000_000 + 500_000_000),
        );
        assert_eq!(out, "1 year 2 mons 3 days 04:00:00.5");
    }

    #[test]
    fn nested_lists_are_multidimensional_binary_arrays() {
        use arrow::array::{Int64Builder, ListBuilder};
        let mut builder = ListBuilder::new(ListBuilder::new(Int64Builder::new()));
        // Row 0: [[1, 2], [3, 4]]; row 1: [[5, NULL], [7, 8]] (sub-array offsets start at 2);
        // row 2: [] ; row 3: [[], []]; row 4: [[1], [2, 3]] (ragged).
        for row in [
            vec![vec![Some(1), Some(2)], vec![Some(3), Some(4)]],
            vec![vec![Some(5), None], vec![Some(7), Some(8)]],
            vec![],
            vec![vec![], vec![]],
            vec![vec![Some(1)], vec![Some(2), Some(3)]],
        ] {
            for sub in row {
                builder.values().append_value(sub);
            }
            builder.append(true);
        }
        let column: ArrayRef = std::sync::Arc::new(builder.finish());
        let encode = |row: usize| {
            let mut buffer = BytesMut::new();
            write_binary(&mut buffer, &column, row).map(|()| buffer.to_vec())
        };
        let ints = |bytes: &[u8]| -> Vec<i32> {
            bytes
                .chunks(4)
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let second = encode(1).expect("rectangular");
        // ndim, has nulls, element OID (int8), then (length, lower bound) per dimension.
        assert_eq!(ints(&second[..28]), [2, 1, 20, 2, 1, 2, 1]);
        assert_eq!(ints(&second[28..40]), [8, 0, 5]);
        assert_eq!(ints(&second[40..44]), [-1]);
        // Empty at any level: zero dimensions, still the innermost element type.
        assert_eq!(ints(&encode(2).expect("empty")), [0, 0, 20]);
        assert_eq!(ints(&encode(3).expect("empty sub-arrays")), [0, 0, 20]);
        let ragged = encode(4).expect_err("ragged");
        assert!(
            ragged.to_string().contains("matching dimensions"),
            "{ragged}"
        );
    }

    #[test]
    fn durations_are_justified_into_days_like_timestamp_differences() {
        use arrow::array::{DurationMicrosecondArray, DurationSecondArray};
        let hour = 3_600_000_000_i64;
        let column: ArrayRef = std::sync::Arc::new(DurationMicrosecondArray::from(vec![
            8499 * 24 * hour,
            -(25 * hour),
            90 * 60_000_000,
        ]));
        let texts: Vec<String> = (0..3)
            .map(|row| {
                let (days, micros) = duration_days(&column, TimeUnit::Microsecond, row);
                let mut out = String::new();
                interval_text(&mut out, IntervalMonthDayNano::new(0, days, micros * 1_000));
                out
            })
            .collect();
        assert_eq!(texts, ["8499 days", "-1 days -01:00:00", "01:30:00"]);
        // Seconds beyond what nanoseconds hold keep their days.
        let seconds: ArrayRef = std::sync::Arc::new(DurationSecondArray::from(vec![i64::MAX / 4]));
        assert_eq!(duration_days(&seconds, TimeUnit::Second, 0).0, i32::MAX);
    }
}
