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
        let scalar = decode_one(value.as_deref(), binary, &wire_type, target.as_ref())
            .map_err(|e| match e {
                Error::User { sqlstate, message, hint } => Error::User {
                    sqlstate,
                    message: format!("parameter ${}: {message}", index + 1),
                    hint,
                },
                other => other,
            })?;
        scalars.push(scalar);
    }
    Ok(ParamValues::List(scalars.into_iter().map(Into::into).collect()))
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

fn cast_text(text: &str, target: &DataType) -> Result<ScalarValue> {
    let value = ScalarValue::Utf8(Some(text.to_owned()));
    if *target == DataType::Utf8 {
        return Ok(value);
    }
    value.cast_to(target).map_err(|_| {
        Error::user(
            "22P02",
            format!("invalid input syntax for type {}: \"{text}\"", pg_type(target).name()),
        )
    })
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
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()).ok_or_else(invalid))
        .collect()
}

fn fixed<const N: usize>(bytes: &[u8], type_name: &str) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| {
        Error::user(
            "22P03",
            format!("incorrect binary data format for type {type_name}: expected {N} bytes, got {}", bytes.len()),
        )
    })
}

fn decode_binary(bytes: &[u8], wire_type: &Type) -> Result<ScalarValue> {
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
            Some(i64::from_be_bytes(fixed(bytes, "timestamp")?).saturating_add(PG_EPOCH_OFFSET_MICROS)),
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
    if sign == 0xC000 {
        return Ok(ScalarValue::Float64(Some(f64::NAN)));
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
    let signed = if sign == 0x4000 { format!("-{digits_text}") } else { digits_text };
    let scale = dscale.clamp(0, 38) as i8;
    let precision = 38u8;
    ScalarValue::Utf8(Some(signed.clone()))
        .cast_to(&DataType::Decimal128(precision, scale))
        .map_err(|_| Error::user("22003", format!("numeric value {signed} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_round_trip_through_binary() {
        let mut buffer = bytes::BytesMut::new();
        super::super::encode::numeric_binary(&mut buffer, -123450, 2);
        let value = decode_numeric(&buffer).expect("decode numeric");
        assert_eq!(value.to_string(), "-1234.50");
    }

    #[test]
    fn wrong_parameter_count_is_protocol_error() {
        let error = decode(&[None], &Format::UnifiedText, &[], &[]).expect_err("count mismatch");
        assert_eq!(error.sqlstate(), "08P01");
    }
}
