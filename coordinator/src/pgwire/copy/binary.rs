//! The binary format: the `PGCOPY\n\377\r\n\0` signature, flags and header extension, then per
//! row an int16 field count and per field an int32 length (-1 for NULL) and the value in
//! Postgres' binary send format; an int16 -1 ends the data. Values go straight into Arrow
//! builders of the table's types. Integer columns also take the other integer widths (psycopg
//! sends a Python int as int2, int4 or int8 by its size), range-checked.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, TimeUnit};

use super::{BATCH_BYTES, BATCH_ROWS, DecodeError, Layout, RowDecoder, Status, Step, Taken};
use crate::error::{Error, Result};
use crate::pgwire::types::pg_type;

pub(super) const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Signature, flags, header extension length.
const HEADER: usize = 19;
/// Days and microseconds from 1970-01-01 to Postgres' epoch 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
const EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Postgres refuses fields above 1 GB.
const MAX_FIELD: usize = 1 << 30;

enum Builder {
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder, u8, i8),
}

impl Builder {
    fn try_new(data_type: &DataType) -> Option<Self> {
        Some(match data_type {
            DataType::Utf8 => Self::Utf8(StringBuilder::new()),
            DataType::Binary => Self::Binary(BinaryBuilder::new()),
            DataType::Boolean => Self::Boolean(BooleanBuilder::new()),
            DataType::Int16 => Self::Int16(Int16Builder::new()),
            DataType::Int32 => Self::Int32(Int32Builder::new()),
            DataType::Int64 => Self::Int64(Int64Builder::new()),
            DataType::Float32 => Self::Float32(Float32Builder::new()),
            DataType::Float64 => Self::Float64(Float64Builder::new()),
            DataType::Date32 => Self::Date(Date32Builder::new()),
            DataType::Timestamp(TimeUnit::Microsecond, zone) => {
                Self::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(zone.clone()))
            }
            DataType::Decimal128(precision, scale) => Self::Decimal(
                Decimal128Builder::new().with_data_type(data_type.clone()),
                *precision,
                *scale,
            ),
            _ => return None,
        })
    }

    fn append_null(&mut self) {
        match self {
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Boolean(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Decimal(b, ..) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Decimal(b, ..) => Arc::new(b.finish()),
        }
    }

    /// Checks and decodes one non-NULL field. Strings and bytes stay where they are: `at` is
    /// the field's offset in the row.
    fn decode(&self, bytes: &[u8], at: usize) -> Result<Value, (String, &'static str)> {
        let value = match self {
            Self::Utf8(_) => {
                std::str::from_utf8(bytes).map_err(|_| {
                    (
                        "invalid byte sequence for encoding \"UTF8\"".to_owned(),
                        "22021",
                    )
                })?;
                Value::Bytes(at, at + bytes.len())
            }
            Self::Binary(_) => Value::Bytes(at, at + bytes.len()),
            Self::Boolean(_) => match bytes {
                [byte] => Value::Boolean(*byte != 0),
                _ => return Err(wrong_length(bytes, "boolean", "1")),
            },
            Self::Int16(_) => Value::Int16(
                i16::try_from(integer(bytes, "smallint")?).map_err(|_| out_of_range("smallint"))?,
            ),
            Self::Int32(_) => Value::Int32(
                i32::try_from(integer(bytes, "integer")?).map_err(|_| out_of_range("integer"))?,
            ),
            Self::Int64(_) => Value::Int64(integer(bytes, "bigint")?),
            // A float4 for a float8 column (or the reverse) would read as another number.
            Self::Float32(_) => Value::Float32(f32::from_be_bytes(
                array(bytes).map_err(|_| wrong_length(bytes, "real", "4"))?,
            )),
            Self::Float64(_) => Value::Float64(f64::from_be_bytes(
                array(bytes).map_err(|_| wrong_length(bytes, "double precision", "8"))?,
            )),
            Self::Date(_) => {
                let days =
                    i32::from_be_bytes(array(bytes).map_err(|_| wrong_length(bytes, "date", "4"))?);
                if days == i32::MAX || days == i32::MIN {
                    return Err(("date out of range: infinity".to_owned(), "22008"));
                }
                Value::Int32(
                    days.checked_add(EPOCH_DAYS)
                        .ok_or_else(|| ("date out of range".to_owned(), "22008"))?,
                )
            }
            Self::Timestamp(_) => {
                let micros = i64::from_be_bytes(
                    array(bytes).map_err(|_| wrong_length(bytes, "timestamp", "8"))?,
                );
                if micros == i64::MAX || micros == i64::MIN {
                    return Err(("timestamp out of range: infinity".to_owned(), "22008"));
                }
                Value::Int64(
                    micros
                        .checked_add(EPOCH_MICROS)
                        .ok_or_else(|| ("timestamp out of range".to_owned(), "22008"))?,
                )
            }
            Self::Decimal(_, precision, scale) => {
                Value::Decimal(numeric(bytes, *precision, *scale)?)
            }
        };
        Ok(value)
    }

    fn append(&mut self, value: Value, row: &[u8]) {
        let bytes = |start: usize, end: usize| row.get(start..end).unwrap_or_default();
        match (self, value) {
            (_, Value::Null) => {}
            (Self::Utf8(b), Value::Bytes(start, end)) => {
                b.append_value(std::str::from_utf8(bytes(start, end)).unwrap_or_default());
            }
            (Self::Binary(b), Value::Bytes(start, end)) => b.append_value(bytes(start, end)),
            (Self::Boolean(b), Value::Boolean(v)) => b.append_value(v),
            (Self::Int16(b), Value::Int16(v)) => b.append_value(v),
            (Self::Int32(b), Value::Int32(v)) => b.append_value(v),
            (Self::Int64(b), Value::Int64(v)) => b.append_value(v),
            (Self::Float32(b), Value::Float32(v)) => b.append_value(v),
            (Self::Float64(b), Value::Float64(v)) => b.append_value(v),
            (Self::Date(b), Value::Int32(v)) => b.append_value(v),
            (Self::Timestamp(b), Value::Int64(v)) => b.append_value(v),
            (Self::Decimal(b, ..), Value::Decimal(v)) => b.append_value(v),
            (builder, _) => builder.append_null(),
        }
    }
}

/// A decoded field, or where its bytes are in the row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Null,
    Bytes(usize, usize),
    Boolean(bool),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Decimal(i128),
}

fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], (String, &'static str)> {
    <[u8; N]>::try_from(bytes).map_err(|_| {
        (
            format!("incorrect binary data format: {} bytes", bytes.len()),
            "22P03",
        )
    })
}

fn wrong_length(bytes: &[u8], type_name: &str, expected: &str) -> (String, &'static str) {
    (
        format!(
            "incorrect binary data format for type {type_name}: {} bytes, expected {expected}",
            bytes.len()
        ),
        "22P03",
    )
}

fn out_of_range(type_name: &str) -> (String, &'static str) {
    (format!("value out of range for type {type_name}"), "22003")
}

fn integer(bytes: &[u8], type_name: &str) -> Result<i64, (String, &'static str)> {
    Ok(match bytes.len() {
        2 => i64::from(i16::from_be_bytes(array(bytes)?)),
        4 => i64::from(i32::from_be_bytes(array(bytes)?)),
        8 => i64::from_be_bytes(array(bytes)?),
        _ => return Err(wrong_length(bytes, type_name, "2, 4 or 8")),
    })
}

/// Postgres' binary numeric (int16 digit count, int16 weight, uint16 sign, uint16 display
/// scale, then base-10000 digits, most significant first) as a Decimal128 of `scale`,
/// rounded half away from zero like numeric input.
pub(super) fn numeric(
    bytes: &[u8],
    precision: u8,
    scale: i8,
) -> Result<i128, (String, &'static str)> {
    let word = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
    };
    let malformed = || {
        (
            "incorrect binary data format for type numeric".to_owned(),
            "22P03",
        )
    };
    let overflow = || {
        (
            format!("numeric field overflow: does not fit numeric({precision},{scale})"),
            "22003",
        )
    };
    let (Some(count), Some(weight), Some(sign)) = (word(0), word(2), word(4)) else {
        return Err(malformed());
    };
    let count = usize::from(count);
    let weight = i64::from(weight as i16);
    if bytes.len() != 8 + 2 * count {
        return Err(malformed());
    }
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => {
            return Err((
                "cannot store NaN in a numeric(p,s) column".to_owned(),
                "22003",
            ));
        }
        0xD000 | 0xF000 => {
            return Err((
                "cannot store infinity in a numeric(p,s) column".to_owned(),
                "22003",
            ));
        }
        _ => return Err(malformed()),
    };
    let mut value: i128 = 0;
    let mut last_exponent: Option<i64> = None;
    let mut round_up = false;
    'digits: for group in 0..count {
        let digits = word(8 + 2 * group).ok_or_else(malformed)?;
        if digits >= 10_000 {
            return Err(malformed());
        }
        for (position, divisor) in [1000u16, 100, 10, 1].into_iter().enumerate() {
            let digit = (digits / divisor) % 10;
            // The power of ten of this digit in units of 10^-scale.
            let exponent = 4 * (weight - group as i64) + 3 - position as i64 + i64::from(scale);
            if exponent < 0 {
                round_up = exponent == -1 && digit >= 5;
                break 'digits;
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(digit)))
                .ok_or_else(overflow)?;
            last_exponent = Some(exponent);
        }
    }
    if let Some(exponent) = last_exponent.filter(|e| *e > 0)
        && value != 0
    {
        let factor = u32::try_from(exponent)
            .ok()
            .and_then(|e| 10i128.checked_pow(e))
            .ok_or_else(overflow)?;
        value = value.checked_mul(factor).ok_or_else(overflow)?;
    }
    if round_up {
        value = value.checked_add(1).ok_or_else(overflow)?;
    }
    let limit = 10i128
        .checked_pow(u32::from(precision))
        .unwrap_or(i128::MAX);
    if value >= limit {
        return Err(overflow());
    }
    Ok(if negative { -value } else { value })
}

pub(super) struct BinaryDecoder {
    layout: Layout,
    builders: Vec<Builder>,
    values: Vec<Value>,
    header_done: bool,
    ended: bool,
    /// Bytes the incomplete row at the front needs at least, so it is not walked again early.
    need: usize,
    rows: usize,
    bytes: usize,
    bad: Vec<DecodeError>,
    stop_on_bad: bool,
}

impl BinaryDecoder {
    pub(super) fn try_new(layout: Layout, stop_on_bad: bool) -> Result<Self> {
        let mut builders = Vec::with_capacity(layout.width());
        for &target in &layout.targets {
            let Some(field) = layout.schema.fields().get(target) else {
                return Err(Error::Internal(format!(
                    "COPY column {target} out of range"
                )));
            };
            let Some(builder) = Builder::try_new(field.data_type()) else {
                return Err(Error::unsupported(format!(
                    "binary COPY into column \"{}\" of type {} is not supported; use the text or \
                     CSV format",
                    field.name(),
                    pg_type(field.data_type()).name()
                )));
            };
            builders.push(builder);
        }
        Ok(Self {
            layout,
            builders,
            values: Vec::new(),
            header_done: false,
            ended: false,
            need: 0,
            rows: 0,
            bytes: 0,
            bad: Vec::new(),
            stop_on_bad,
        })
    }

    fn fatal(&self, message: String) -> DecodeError {
        DecodeError {
            index: Some(self.rows),
            column: None,
            message,
            sqlstate: "22P04",
        }
    }

    /// The header's length, once it is all there.
    fn header(&self, data: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(fixed) = data.get(..HEADER) else {
            if !SIGNATURE.starts_with(
                data.get(..SIGNATURE.len().min(data.len()))
                    .unwrap_or_default(),
            ) {
                return Err(signature_error());
            }
            return Ok(None);
        };
        if fixed.get(..SIGNATURE.len()) != Some(SIGNATURE.as_slice()) {
            return Err(signature_error());
        }
        let word = |at: usize| {
            u32::from_be_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]])
        };
        let flags = word(11);
        if flags & (1 << 16) != 0 {
            return Err(DecodeError {
                index: None,
                column: None,
                message: "COPY with OIDs is not supported".to_owned(),
                sqlstate: "0A000",
            });
        }
        if flags & 0xfffe_0000 != 0 {
            return Err(header_error(
                "unrecognized critical flags in COPY file header",
            ));
        }
        let extension = usize::try_from(word(15)).unwrap_or(usize::MAX);
        if extension > MAX_FIELD {
            return Err(header_error("invalid COPY file header (wrong length)"));
        }
        Ok((data.len() >= HEADER + extension).then_some(HEADER + extension))
    }

    /// The length of the row at the front of `data`, once it is complete; walks the field
    /// lengths only.
    fn row_length(&mut self, data: &[u8], fields: usize) -> Result<Option<usize>, DecodeError> {
        let mut at = 2usize;
        for _ in 0..fields {
            let Some(length) = data.get(at..at + 4) else {
                self.need = at + 4;
                return Ok(None);
            };
            let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
            at += 4;
            if length == -1 {
                continue;
            }
            let length = usize::try_from(length)
                .ok()
                .filter(|l| *l <= MAX_FIELD)
                .ok_or_else(|| self.fatal(format!("invalid field length {length}")))?;
            at = at.saturating_add(length);
            if at > data.len() {
                self.need = at;
                return Ok(None);
            }
        }
        self.need = 0;
        Ok(Some(at))
    }

    fn row(&mut self, row: &[u8], fields: usize) {
        let index = self.rows;
        self.rows += 1;
        if fields != self.layout.width() {
            self.refuse(DecodeError {
                index: Some(index),
                column: None,
                message: format!(
                    "row field count is {fields}, expected {}",
                    self.layout.width()
                ),
                sqlstate: "22P04",
            });
            return;
        }
        self.values.clear();
        let mut at = 2usize;
        for (column, builder) in self.builders.iter().enumerate() {
            let length = row
                .get(at..at + 4)
                .map(|l| i32::from_be_bytes([l[0], l[1], l[2], l[3]]))
                .unwrap_or(-1);
            at += 4;
            let Ok(length) = usize::try_from(length) else {
                self.values.push(Value::Null);
                continue;
            };
            let bytes = row.get(at..at + length).unwrap_or_default();
            match builder.decode(bytes, at) {
                Ok(value) => self.values.push(value),
                Err((message, sqlstate)) => {
                    let column = self.layout.name(column);
                    self.refuse(DecodeError {
                        index: Some(index),
                        column,
                        message,
                        sqlstate,
                    });
                    return;
                }
            }
            at += length;
        }
        for (builder, value) in self.builders.iter_mut().zip(&self.values) {
            match value {
                Value::Null => builder.append_null(),
                value => builder.append(*value, row),
            }
        }
    }

    /// Sets the current row aside: NULL in every column until conversion drops it.
    fn refuse(&mut self, error: DecodeError) {
        for builder in &mut self.builders {
            builder.append_null();
        }
        self.bad.push(error);
    }
}

fn signature_error() -> DecodeError {
    header_error("COPY file signature not recognized")
}

fn header_error(message: &str) -> DecodeError {
    DecodeError {
        index: None,
        column: None,
        message: message.to_owned(),
        sqlstate: "22P04",
    }
}

impl RowDecoder for BinaryDecoder {
    fn decode(&mut self, data: &[u8], at_end: bool) -> Result<Step, DecodeError> {
        let mut at = 0;
        if !self.header_done {
            match self.header(data)? {
                Some(length) => {
                    at = length;
                    self.header_done = true;
                }
                None if at_end && data.is_empty() => {
                    return Ok(Step {
                        consumed: 0,
                        status: Status::Finished,
                    });
                }
                None if at_end => return Err(header_error("unexpected EOF in COPY file header")),
                None => {
                    return Ok(Step {
                        consumed: 0,
                        status: Status::NeedMore,
                    });
                }
            }
        }
        loop {
            let rest = data.get(at..).unwrap_or_default();
            if self.ended {
                if !rest.is_empty() {
                    return Err(header_error(
                        "received COPY data after the end-of-data trailer",
                    ));
                }
                return Ok(Step {
                    consumed: at,
                    status: Status::Finished,
                });
            }
            if self.rows >= BATCH_ROWS || self.bytes >= BATCH_BYTES {
                return Ok(Step {
                    consumed: at,
                    status: Status::Full,
                });
            }
            if rest.len() < self.need.max(2) {
                if at_end && !rest.is_empty() {
                    return Err(self.fatal("unexpected EOF in COPY data".to_owned()));
                }
                // Without the trailer, the end of the data ends the rows too.
                return Ok(Step {
                    consumed: at,
                    status: if at_end {
                        Status::Finished
                    } else {
                        Status::NeedMore
                    },
                });
            }
            let fields = i16::from_be_bytes([rest[0], rest[1]]);
            if fields == -1 {
                self.ended = true;
                at += 2;
                continue;
            }
            let Ok(fields) = usize::try_from(fields) else {
                return Err(self.fatal(format!("invalid field count {fields}")));
            };
            let Some(length) = self.row_length(rest, fields)? else {
                if at_end {
                    return Err(self.fatal("unexpected EOF in COPY data".to_owned()));
                }
                return Ok(Step {
                    consumed: at,
                    status: Status::NeedMore,
                });
            };
            let row = rest.get(..length).unwrap_or_default();
            at += length;
            self.bytes += length;
            self.row(row, fields);
            if self.stop_on_bad && !self.bad.is_empty() {
                return Ok(Step {
                    consumed: at,
                    status: Status::NeedMore,
                });
            }
        }
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn width(&self) -> usize {
        self.layout.width()
    }

    fn has_bad(&self) -> bool {
        !self.bad.is_empty()
    }

    fn is_text(&self) -> bool {
        false
    }

    fn take(&mut self) -> Taken {
        let inputs = self.builders.iter_mut().map(Builder::finish).collect();
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        Taken {
            columns: self.layout.assemble(inputs, rows, false),
            rows,
            bad: std::mem::take(&mut self.bad),
            raw: None,
        }
    }
}
