//! Arrow types on the wire: the type, `typlen` and type modifier reported in RowDescription and
//! ParameterDescription, and the reverse mapping for parameters.

use arrow::datatypes::{DataType, TimeUnit};

use crate::pg_catalog::pg_type_for;
use pgwire::api::Type;

/// The Postgres type a column of `data_type` is sent as; the mapping itself lives in
/// [`crate::pg_catalog::pg_type_for`] so the catalog and the wire never disagree.
pub(crate) fn pg_type(data_type: &DataType) -> Type {
    Type::from_oid(pg_type_for(data_type).oid).unwrap_or(Type::TEXT)
}

/// `pg_type.typlen` for RowDescription: fixed width in bytes, or -1 for variable width.
pub(crate) fn type_size(data_type: &DataType) -> i16 {
    pg_type_for(data_type).len
}

/// `atttypmod`: `numeric(p, s)` packs precision and scale; timestamps their fractional digits.
pub(crate) fn type_modifier(data_type: &DataType) -> i32 {
    pg_type_for(data_type).typmod
}

/// The Arrow type a parameter of Postgres type `pg` is decoded into.
pub(crate) fn arrow_type(pg: &Type) -> Option<DataType> {
    Some(match *pg {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::OID => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::UNKNOWN
        | Type::JSON
        | Type::JSONB
        | Type::UUID
        | Type::CHAR => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIME => DataType::Time64(TimeUnit::Microsecond),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        Type::INTERVAL => DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
        _ => return None,
    })
}
