//! Bind parameters: bytes in text or binary format, decoded into DataFusion scalars of the type
//! the client declared or, when it left the type open, the type the planner inferred.

use arrow::datatypes::DataType;
use bytes::Bytes;
use datafusion::common::{ParamValues, ScalarValue};
use pgwire::api::Type;
use pgwire::api::portal::Format;

use super::types::{arrow_type, pg_type};
use crate::error::{Error, Result};

const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// Decodes every parameter. `declared[i]` is the client's type for `$i+1` (None = left to the
/// server); `inferred[i]` is what the plan expects.
pub(crate) fn decode(
    values: &[Option<Bytes>],
    formats: &Format,
    declared: &[Option<Type>],
    inferred: &[Option<DataType>],
) -> Result<ParamValues> {
    if values.len() != inferred.len() {
        return Err(Error::user(
            "08P01",
            format!(
                "bind message supplies {} parameters, but prepared statement requires {}",
                values.len(),
                inferred.len()
            ),
        ));
    }
    if let Format::Individual(codes) = formats
        && codes.len() != values.len()
    {
        return Err(Error::user(
            "08P01",
            format!(
                "bind message has {} parameter formats but {} parameters",
                codes.len(),
                values.len()
            ),
        ));
    }
    let mut scalars = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let target = inferred.get(index).cloned().flatten();
        let wire_type = declared
            .get(index)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN)
            .or_else(|| target.as_ref().map(pg_type))
            .unwrap_or(Type::TEXT);
        let binary = formats.is_binary(index);
        let scalar = decode_one(value.as_deref(), binary, &wire_type, target.as_ref()).map_err(
            |e| match e {
                Error::User {
                    sqlstate,
                    message,
                    hint,
                } => Error::User {
                    sqlstate,
                    message: format!("parameter ${}: {message}", index + 1),
                    hint,
                },
                other => other,
            },
        )?;
        scalars.push(scalar);
    }
    Ok(ParamValues::List(
        scalars.into_iter().map(Into::into).collect(),
    ))
}

fn decode_one(
    value: Option<&[u8]>,
    binary: bool,
    wire_type: &Type,
    target: Option<&DataType>,
) -> Result<ScalarValue> {
    let natural = arrow_type(wire_type).unwrap_or(DataType::Utf8);
    let Some(bytes) = value else {
        let data_type = target.cloned().unwrap_or(natural);
        return ScalarValue::try_from(&data_type).map_err(Error::from);
    };
    let scalar = if binary {
        decode_binary(bytes, wire_type)?
    } else {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::user("22021", "invalid byte sequence for encoding \"UTF8\""))?;
        if *wire_type == Type::BYTEA || matches!(target, Some(DataType::Binary)) {
            ScalarValue::Binary(Some(decode_bytea_text(text)?))
        } else if let Some(element_type) = list_element(target).or_else(|| match wire_type.kind() {
            postgres_types::Kind::Array(element) => {
                Some(arrow_type(element).unwrap_or(DataType::Utf8))
            }
            _ => None,
        }) {
            decode_text_array(text, &element_type)?
        } else if *wire_type == Type::BOOL || matches!(target, Some(DataType::Boolean)) {
            ScalarValue::Boolean(Some(parse_bool(text)?))
        } else {
            let target_type = target.cloned().unwrap_or(natural);
            return cast_text(text, &target_type);
        }
    };
    match target {
        Some(target) if scalar.data_type() != *target => scalar.cast_to(target).map_err(|e| {
            Error::user(
                "22P02",
                format!("cannot convert {} to {target}: {e}", scalar.data_type()),
            )
        }),
        _ => Ok(scalar),
    }
}

fn list_element(target: Option<&DataType>) -> Option<DataType> {
    match target? {
        DataType::List(field) | DataType::LargeList(field) | DataType::FixedSizeList(field, _) => {
            Some(field.data_type().clone())
        }
        _ => None,
    }
}

fn cast_text(text: &str, target: &DataType) -> Result<ScalarValue> {
    let normalized = match target {
        // pgjdbc sends dates as `2024-12-31 +00`: the zone means nothing for a date.
        DataType::Date32 | DataType::Date64 => {
            text.split_whitespace().next().unwrap_or(text).to_owned()
        }
        DataType::Timestamp(..) => normalize_zone(text),
        DataType::Interval(_) => normalize_interval(text),
        _ => text.to_owned(),
    };
    let value = ScalarValue::Utf8(Some(normalized));
    if *target == DataType::Utf8 {
        return Ok(value);
    }
    value.cast_to(target).map_err(|_| {
        Error::user(
            "22P02",
            format!(
                "invalid input syntax for type {}: \"{text}\"",
                pg_type(target).name()
            ),
        )
    })
}

/// Postgres writes zones as `+00` or `+05:30`; Arrow's parser wants `+00:00`, no space before.
fn normalize_zone(text: &str) -> String {
    let trimmed = text.trim();
    let Some(position) = trimmed.rfind(['+', '-']).filter(|&p| p > 10) else {
        return trimmed.to_owned();
    };
    let (stamp, zone) = trimmed.split_at(position);
    let zone = if zone.len() == 3 {
        format!("{zone}:00")
    } else {
        zone.to_owned()
    };
    format!("{}{zone}", stamp.trim_end())
}

/// Postgres' interval output and input spell the time part as a clock (`1 day 02:03:04.5`,
/// `-00:00:01`); Arrow's parser wants units, so each clock becomes `h hours m minutes s seconds`
/// with the clock's sign on every part.
pub(crate) fn normalize_interval(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            let (sign, clock) = match word.strip_prefix('-') {
                Some(rest) => ("-", rest),
                None => ("", word.strip_prefix('+').unwrap_or(word)),
            };
            let parts: Vec<&str> = clock.split(':').collect();
            let numeric = |part: &&str| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_digit() || c == '.')
            };
            if !(2..=3).contains(&parts.len()) || !parts.iter().all(numeric) {
                return word.to_owned();
            }
            let mut spelled = format!("{sign}{} hours {sign}{} minutes", parts[0], parts[1]);
            if let Some(seconds) = parts.get(2) {
                spelled.push_str(&format!(" {sign}{seconds} seconds"));
            }
            spelled
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_bool(text: &str) -> Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Ok(false),
        _ => Err(Error::user(
            "22P02",
            format!("invalid input syntax for type boolean: \"{text}\""),
        )),
    }
}

fn decode_bytea_text(text: &str) -> Result<Vec<u8>> {
    let Some(hex) = text.strip_prefix("\\x") else {
        return Ok(text.as_bytes().to_vec());
    };
    let invalid = || Error::user("22P02", "invalid hexadecimal data for type bytea");
    if hex.len() % 2 != 0 {
        return Err(invalid());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(invalid)
        })
        .collect()
}

fn fixed<const N: usize>(bytes: &[u8], type_name: &str) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| {
        Error::user(
            "22P03",
            format!(
                "incorrect binary data format for type {type_name}: expected {N} bytes, got {}",
                bytes.len()
            ),
        )
    })
}

fn decode_binary(bytes: &[u8], wire_type: &Type) -> Result<ScalarValue> {
    if let postgres_types::Kind::Array(element) = wire_type.kind() {
        return decode_binary_array(bytes, element);
    }
    Ok(match *wire_type {
        Type::BOOL => ScalarValue::Boolean(Some(fixed::<1>(bytes, "boolean")?[0] != 0)),
        Type::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(fixed(bytes, "smallint")?))),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(fixed(bytes, "integer")?))),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(fixed(bytes, "bigint")?))),
        Type::OID => ScalarValue::Int64(Some(i64::from(u32::from_be_bytes(fixed(bytes, "oid")?)))),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(fixed(bytes, "real")?))),
        Type::FLOAT8 => {
            ScalarValue::Float64(Some(f64::from_be_bytes(fixed(bytes, "double precision")?)))
        }
        Type::BYTEA => ScalarValue::Binary(Some(bytes.to_vec())),
        Type::DATE => ScalarValue::Date32(Some(
            i32::from_be_bytes(fixed(bytes, "date")?).saturating_add(PG_EPOCH_OFFSET_DAYS),
        )),
        Type::TIME => {
            ScalarValue::Time64Microsecond(Some(i64::from_be_bytes(fixed(bytes, "time")?)))
        }
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            Some(
                i64::from_be_bytes(fixed(bytes, "timestamp")?)
                    .saturating_add(PG_EPOCH_OFFSET_MICROS),
            ),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(
                i64::from_be_bytes(fixed(bytes, "timestamp with time zone")?)
                    .saturating_add(PG_EPOCH_OFFSET_MICROS),
            ),
            Some("+00:00".into()),
        ),
        Type::INTERVAL => {
            let raw: [u8; 16] = fixed(bytes, "interval")?;
            let micros = i64::from_be_bytes(raw[0..8].try_into().unwrap_or_default());
            let days = i32::from_be_bytes(raw[8..12].try_into().unwrap_or_default());
            let months = i32::from_be_bytes(raw[12..16].try_into().unwrap_or_default());
            ScalarValue::IntervalMonthDayNano(Some(arrow::datatypes::IntervalMonthDayNano::new(
                months,
                days,
                micros.saturating_mul(1_000),
            )))
        }
        Type::UUID => {
            let raw: [u8; 16] = fixed(bytes, "uuid")?;
            ScalarValue::Utf8(Some(uuid::Uuid::from_bytes(raw).to_string()))
        }
        Type::NUMERIC => decode_numeric(bytes)?,
        Type::JSONB => ScalarValue::Utf8(Some(utf8(bytes.get(1..).unwrap_or_default())?)),
        _ => ScalarValue::Utf8(Some(utf8(bytes)?)),
    })
}

/// Postgres binary array: dimensions, null flag, element type, then length-prefixed elements.
/// Only one-dimensional arrays map to Arrow lists.
fn decode_binary_array(bytes: &[u8], element: &Type) -> Result<ScalarValue> {
    let invalid = || Error::user("22P03", "invalid binary data for an array parameter");
    let mut reader = bytes;
    let read_i32 = |reader: &mut &[u8]| -> Result<i32> {
        let (head, rest) = reader.split_first_chunk::<4>().ok_or_else(invalid)?;
        *reader = rest;
        Ok(i32::from_be_bytes(*head))
    };
    let dimensions = read_i32(&mut reader)?;
    let _has_nulls = read_i32(&mut reader)?;
    let _element_oid = read_i32(&mut reader)?;
    let element_type = arrow_type(element).unwrap_or(DataType::Utf8);
    if dimensions == 0 {
        return Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &[],
            &element_type,
        )));
    }
    if dimensions != 1 {
        return Err(Error::unsupported(
            "multi-dimensional array parameters are not supported",
        ));
    }
    let length = usize::try_from(read_i32(&mut reader)?).map_err(|_| invalid())?;
    let _lower_bound = read_i32(&mut reader)?;
    let mut values = Vec::with_capacity(length.min(1 << 16));
    for _ in 0..length {
        let size = read_i32(&mut reader)?;
        if size < 0 {
            values.push(ScalarValue::try_from(&element_type)?);
            continue;
        }
        let size = size as usize;
        if reader.len() < size {
            return Err(invalid());
        }
        let (item, rest) = reader.split_at(size);
        reader = rest;
        values.push(decode_binary(item, element)?);
    }
    list_of(values, &element_type)
}

/// Postgres text array `{1,2,"a b",NULL}` (one dimension).
fn decode_text_array(text: &str, element_type: &DataType) -> Result<ScalarValue> {
    let invalid = || Error::user("22P02", format!("malformed array literal: \"{text}\""));
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(invalid)?;
    let mut values = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let mut item = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => item.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => item.push(c),
                    None => return Err(invalid()),
                }
            }
        }
        for c in chars.by_ref() {
            if c == ',' {
                break;
            }
            item.push(c);
        }
        let item = if quoted { item } else { item.trim().to_owned() };
        if !quoted && item.eq_ignore_ascii_case("null") {
            values.push(ScalarValue::try_from(element_type)?);
        } else {
            values.push(cast_text(&item, element_type)?);
        }
    }
    list_of(values, element_type)
}

fn list_of(values: Vec<ScalarValue>, element_type: &DataType) -> Result<ScalarValue> {
    let values = values
        .into_iter()
        .map(|v| {
            if v.data_type() == *element_type {
                Ok(v)
            } else {
                v.cast_to(element_type)
            }
        })
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(
        &values,
        element_type,
    )))
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::user("22021", "invalid byte sequence for encoding \"UTF8\""))
}

/// Postgres binary numeric into a decimal of the value's own scale (max 38 digits).
fn decode_numeric(bytes: &[u8]) -> Result<ScalarValue> {
    let invalid = || Error::user("22P03", "invalid binary data for type numeric");
    let word = |i: usize| -> Result<i16> {
        bytes
            .get(i * 2..i * 2 + 2)
            .and_then(|b| b.try_into().ok())
            .map(i16::from_be_bytes)
            .ok_or_else(invalid)
    };
    let ndigits = usize::try_from(word(0)?).map_err(|_| invalid())?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = i32::from(word(3)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(ScalarValue::Float64(Some(f64::NAN))),
        _ => {
            return Err(Error::user(
                "22P03",
                "numeric infinity and invalid signs are not supported as parameters",
            ));
        }
    }
    let mut text = String::new();
    for i in 0..ndigits {
        text.push_str(&format!("{:04}", word(4 + i)?));
    }
    // value = 0.digits * 10000^(weight+1)
    let point = (weight + 1) * 4;
    let digits_text = if point <= 0 {
        format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), text)
    } else if (point as usize) >= text.len() {
        format!("{}{}", text, "0".repeat(point as usize - text.len()))
    } else {
        format!("{}.{}", &text[..point as usize], &text[point as usize..])
    };
    let signed = if sign == 0x4000 {
        format!("-{digits_text}")
    } else {
        digits_text
    };
    let scale = dscale.clamp(0, 38) as i8;
    let precision = 38u8;
    ScalarValue::Utf8(Some(signed.clone()))
        .cast_to(&DataType::Decimal128(precision, scale))
        .map_err(|_| Error::user("22003", format!("numeric value {signed} is out of range")))
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{IntervalMonthDayNano, IntervalUnit};

    use super::*;

    #[test]
    fn numeric_round_trip_through_binary() {
        let mut buffer = bytes::BytesMut::new();
        super::super::encode::numeric_binary(&mut buffer, -123450, 2);
        let value = decode_numeric(&buffer).expect("decode numeric");
        assert_eq!(value.to_string(), "-1234.50");
    }

    #[test]
    fn postgres_interval_text() {
        assert_eq!(
            normalize_interval("1 day 02:03:04.5"),
            "1 day 02 hours 03 minutes 04.5 seconds"
        );
        assert_eq!(
            normalize_interval("-00:00:01"),
            "-00 hours -00 minutes -01 seconds"
        );
        assert_eq!(
            normalize_interval("3 mons 10:30"),
            "3 mons 10 hours 30 minutes"
        );
        assert_eq!(normalize_interval("P1D"), "P1D");
        let parsed = cast_text(
            "1 day 02:03:04.5",
            &DataType::Interval(IntervalUnit::MonthDayNano),
        )
        .expect("parses");
        assert_eq!(
            parsed,
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(
                0,
                1,
                7_384_500_000_000
            )))
        );
    }

    #[test]
    fn jdbc_style_dates_and_timestamps() {
        let date = cast_text("2024-12-31 +00", &DataType::Date32).expect("date with zone");
        assert_eq!(date.to_string(), "2024-12-31");
        assert_eq!(
            normalize_zone("2024-12-31 10:11:12.5+00"),
            "2024-12-31 10:11:12.5+00:00"
        );
        assert_eq!(normalize_zone("2024-12-31 10:11:12"), "2024-12-31 10:11:12");
    }

    #[test]
    fn arrays_in_text_and_binary() {
        let list = decode_text_array("{1,NULL,3}", &DataType::Int32).expect("text array");
        assert_eq!(
            list.to_string(),
            "[1, , 3]",
            "ScalarValue prints a null element as empty"
        );
        let mut bytes = Vec::new();
        for word in [1i32, 0, 26, 2, 1, 4] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.extend_from_slice(&16u32.to_be_bytes());
        bytes.extend_from_slice(&4i32.to_be_bytes());
        bytes.extend_from_slice(&25u32.to_be_bytes());
        let list = decode_binary(&bytes, &Type::OID_ARRAY).expect("binary oid array");
        assert_eq!(list.to_string(), "[16, 25]");
    }

    #[test]
    fn wrong_parameter_count_is_protocol_error() {
        let error = decode(&[None], &Format::UnifiedText, &[], &[]).expect_err("count mismatch");
        assert_eq!(error.sqlstate(), "08P01");
    }
}
