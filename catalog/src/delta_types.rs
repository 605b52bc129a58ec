//! The Arrow types Basin-managed (Delta) tables and streaming tables' lake parts can hold.
//!
//! Delta Lake has a narrower type set than Arrow. Most types are *narrowed* to their Delta
//! counterpart when a table is created (unsigned integers widen, timestamps become
//! microseconds, string views become strings) and the table then has the narrowed type.
//! Types Delta has no counterpart for at all (times of day, durations, intervals, unsigned
//! integers) are *encoded* in managed tables: the catalog keeps the declared type, the Parquet
//! files hold an encoding that Arrow's casts turn back into it (times and durations as integers
//! in their own unit, intervals as text such as `1 mons 2 days 0.000000003 secs`, unsigned
//! integers in the next wider signed type), scans cast the stored
//! column to the declared type (through DataFusion's file schema adapter) and inserts cast the
//! other way ([`to_storage`]).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef, TimeUnit};
use datafusion::common::stats::Precision;
use datafusion::common::{ScalarValue, Statistics};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;

use crate::error::{Error, Result};
use crate::model::ColumnEntry;

/// A managed table's columns as SQL sees them (`logical`) and as its files hold them
/// (`storage`); the two differ only in encoded columns.
#[derive(Debug, Clone)]
pub(crate) struct ManagedSchema {
    pub(crate) logical: SchemaRef,
    pub(crate) storage: SchemaRef,
}

/// The schema a new managed table gets for `schema` (its query's or its declared columns), or
/// which column it cannot store. `keep_not_null` keeps declared NOT NULLs.
pub(crate) fn managed_schema(schema: &Schema, keep_not_null: bool) -> Result<ManagedSchema> {
    let mut logical = Vec::with_capacity(schema.fields().len());
    let mut storage = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let nullable = !keep_not_null || field.is_nullable();
        let (declared, stored) = match encoded_type(field.data_type()) {
            Some(stored) => (field.data_type().clone(), stored),
            None => {
                let narrowed = narrowed_type(field, "Basin-managed tables")?;
                (narrowed.clone(), narrowed)
            }
        };
        logical.push(Field::new(field.name(), declared, nullable));
        storage.push(Field::new(field.name(), stored, nullable));
    }
    Ok(ManagedSchema {
        logical: Arc::new(Schema::new(logical)),
        storage: Arc::new(Schema::new(storage)),
    })
}

/// The lake schema of a new streaming table: narrowed types only (its log and compaction
/// write the batches as they are, so nothing decodes an encoding).
pub(crate) fn delta_compatible_schema(schema: &Schema, keep_not_null: bool) -> Result<SchemaRef> {
    let fields = schema
        .fields()
        .iter()
        .map(|field| {
            Ok(Field::new(
                field.name(),
                narrowed_type(field, "streaming tables")?,
                !keep_not_null || field.is_nullable(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn narrowed_type(field: &Field, tables: &str) -> Result<DataType> {
    delta_type(field.data_type()).ok_or_else(|| {
        Error::Unsupported(format!(
            "column \"{}\" has type {} which {tables} cannot store yet",
            field.name(),
            field.data_type()
        ))
    })
}

/// How a managed table stores a type Delta lacks; `None` for every other type. Each pair
/// round-trips through Arrow's `cast` in both directions for every value (the tests check the
/// extremes). Unsigned integers are stored in the next wider signed type (Delta has none) but
/// keep their declared type. `Interval(YearMonth)` is left out: its text form of `i32::MIN`
/// months does not parse back.
fn encoded_type(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Time32(_) => Some(DataType::Int32),
        DataType::Time64(_) | DataType::Duration(_) => Some(DataType::Int64),
        DataType::Interval(IntervalUnit::MonthDayNano | IntervalUnit::DayTime) => {
            Some(DataType::Utf8)
        }
        DataType::UInt8 => Some(DataType::Int16),
        DataType::UInt16 => Some(DataType::Int32),
        DataType::UInt32 => Some(DataType::Int64),
        DataType::UInt64 => Some(DataType::Decimal128(20, 0)),
        _ => None,
    }
}

/// A file's statistics (bounds in the stored types) for a table read with schema `logical`:
/// an encoded column's bounds become the declared type's where the encoding keeps the order
/// (numbers), and are dropped where it does not (text: `10 days` sorts before `9 days`).
pub(crate) fn declared_bounds(stats: &mut Statistics, logical: &Schema, encoded: &[usize]) {
    for &i in encoded {
        let (Some(column), Some(field)) =
            (stats.column_statistics.get_mut(i), logical.fields().get(i))
        else {
            continue;
        };
        let to = field.data_type();
        column.min_value = cast_bound(&column.min_value, to);
        column.max_value = cast_bound(&column.max_value, to);
        column.sum_value = Precision::Absent;
    }
}

fn cast_bound(bound: &Precision<ScalarValue>, to: &DataType) -> Precision<ScalarValue> {
    let cast = |value: &ScalarValue| {
        let numeric = value.data_type().is_numeric();
        numeric.then(|| value.cast_to(to).ok()).flatten()
    };
    match bound {
        Precision::Exact(value) => cast(value).map_or(Precision::Absent, Precision::Exact),
        Precision::Inexact(value) => cast(value).map_or(Precision::Absent, Precision::Inexact),
        Precision::Absent => Precision::Absent,
    }
}

/// The schema SQL sees for a managed table whose files have schema `storage`: each column the
/// catalog recorded with an encoded type (and stored as that type's encoding) gets its declared
/// type back. Returns `storage` itself when no column is encoded.
pub(crate) fn logical_schema(storage: &SchemaRef, columns: &[ColumnEntry]) -> SchemaRef {
    let declared = |field: &Field| {
        columns
            .iter()
            .find(|c| c.name == *field.name())
            .filter(|c| {
                encoded_type(&c.data_type).is_some_and(|e| same_storage(&e, field.data_type()))
            })
            .map(|c| c.data_type.clone())
    };
    if !storage.fields().iter().any(|f| declared(f).is_some()) {
        return Arc::clone(storage);
    }
    let fields: Vec<Field> = storage
        .fields()
        .iter()
        .map(|field| match declared(field) {
            Some(data_type) => field.as_ref().clone().with_data_type(data_type),
            None => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        storage.metadata().clone(),
    ))
}

/// Whether a file column of type `found` holds encoding `encoded`: deltalake reads Delta's
/// strings back as string views.
fn same_storage(encoded: &DataType, found: &DataType) -> bool {
    encoded == found
        || (encoded == &DataType::Utf8 && matches!(found, DataType::Utf8View | DataType::LargeUtf8))
}

/// Positions of the columns whose `logical` type differs from their `storage` type.
pub(crate) fn encoded_columns(logical: &Schema, storage: &Schema) -> Vec<usize> {
    logical
        .fields()
        .iter()
        .zip(storage.fields())
        .enumerate()
        .filter(|(_, (l, s))| l.data_type() != s.data_type())
        .map(|(i, _)| i)
        .collect()
}

/// `input` (rows in a managed table's logical schema) with its encoded columns cast to their
/// `storage` types, ready for Delta's writer; `input` itself when nothing is encoded.
pub(crate) fn to_storage(
    input: Arc<dyn ExecutionPlan>,
    storage: &SchemaRef,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = input.schema();
    if encoded_columns(&schema, storage).is_empty() {
        return Ok(input);
    }
    let exprs = schema
        .fields()
        .iter()
        .zip(storage.fields())
        .enumerate()
        .map(|(i, (from, to))| {
            let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(from.name(), i));
            let expr: Arc<dyn PhysicalExpr> = if from.data_type() == to.data_type() {
                column
            } else {
                Arc::new(CastExpr::new(column, to.data_type().clone(), None))
            };
            (expr, to.name().clone())
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(exprs, input)?))
}

fn delta_type(data_type: &DataType) -> Option<DataType> {
    Some(match data_type {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32
        | DataType::Binary
        | DataType::Utf8 => data_type.clone(),
        DataType::Null | DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary | DataType::FixedSizeBinary(_) => {
            DataType::Binary
        }
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            DataType::Decimal128(*p, *s)
        }
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        DataType::Dictionary(_, value) => delta_type(value)?,
        // Delta arrays and structs: element and field types narrowed the same way. Delta names
        // an array's element `element` and lets it be null; fixed sizes and views are not kept.
        DataType::List(element)
        | DataType::LargeList(element)
        | DataType::ListView(element)
        | DataType::LargeListView(element)
        | DataType::FixedSizeList(element, _) => DataType::List(Arc::new(Field::new(
            "element",
            delta_type(element.data_type())?,
            true,
        ))),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|field| {
                    Some(Field::new(
                        field.name(),
                        delta_type(field.data_type())?,
                        true,
                    ))
                })
                .collect::<Option<Vec<_>>>()?
                .into(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, DurationMicrosecondArray, IntervalDayTimeArray, IntervalMonthDayNanoArray,
        IntervalYearMonthArray, Time32MillisecondArray, Time64NanosecondArray, UInt8Array,
        UInt16Array, UInt32Array, UInt64Array,
    };
    use arrow::compute::cast;
    use arrow::datatypes::{IntervalDayTime, IntervalMonthDayNano};

    /// Every encoding must give back exactly the value it stored, also at the extremes.
    #[test]
    fn encodings_round_trip_through_arrow_casts() {
        let mut nanos = vec![0, 1, -1, 999_999_999, 1_000_000_000, -86_399_999_999_999];
        nanos.extend([i64::MAX, i64::MIN, 3_723_004_005_006, -3_723_004_005_006]);
        let mut intervals = Vec::new();
        for months in [0, 1, -1, 13, -25, i32::MAX, i32::MIN] {
            for days in [0, 1, -1, 31, -400, i32::MAX, i32::MIN] {
                for &n in &nanos {
                    intervals.push(Some(IntervalMonthDayNano::new(months, days, n)));
                }
            }
        }
        intervals.push(None);
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(IntervalMonthDayNanoArray::from(intervals)),
            Arc::new(IntervalDayTimeArray::from(vec![
                Some(IntervalDayTime::new(1, -1)),
                Some(IntervalDayTime::new(-3, 86_399_999)),
                Some(IntervalDayTime::new(i32::MAX, i32::MIN)),
                None,
            ])),
            Arc::new(Time32MillisecondArray::from(vec![
                Some(0),
                Some(86_399_999),
                None,
            ])),
            Arc::new(Time64NanosecondArray::from(vec![
                Some(0),
                Some(86_399_999_999_999),
                None,
            ])),
            Arc::new(UInt8Array::from(vec![Some(0), Some(u8::MAX), None])),
            Arc::new(UInt16Array::from(vec![Some(0), Some(u16::MAX), None])),
            Arc::new(UInt32Array::from(vec![Some(0), Some(u32::MAX), None])),
            Arc::new(UInt64Array::from(vec![
                Some(0),
                Some(u64::MAX),
                Some(1 << 63),
                None,
            ])),
            Arc::new(DurationMicrosecondArray::from(vec![
                Some(i64::MIN),
                Some(-1),
                Some(i64::MAX),
                None,
            ])),
        ];
        assert_eq!(
            encoded_type(&DataType::Interval(IntervalUnit::YearMonth)),
            None,
            "{:?}",
            cast(
                &cast(
                    &IntervalYearMonthArray::from(vec![i32::MIN]),
                    &DataType::Utf8
                )
                .expect("encode"),
                &DataType::Interval(IntervalUnit::YearMonth),
            )
        );
        for array in arrays {
            let declared = array.data_type().clone();
            let stored_type = encoded_type(&declared).expect("an encoded type");
            let stored = cast(&array, &stored_type).expect("encode");
            let back = cast(&stored, &declared).expect("decode");
            assert_eq!(&back, &array, "{declared} through {stored_type}");
        }
    }

    #[test]
    fn declared_types_come_back_only_for_encoded_columns() {
        let declared = Schema::new(vec![
            Field::new("t", DataType::Time64(TimeUnit::Nanosecond), true),
            Field::new("i", DataType::Interval(IntervalUnit::MonthDayNano), false),
            Field::new("n", DataType::UInt32, true),
            Field::new("s", DataType::Utf8View, true),
        ]);
        let schema = managed_schema(&declared, true).expect("storable");
        assert_eq!(schema.storage.field(0).data_type(), &DataType::Int64);
        assert_eq!(schema.storage.field(1).data_type(), &DataType::Utf8);
        assert!(!schema.storage.field(1).is_nullable());
        assert_eq!(schema.logical.field(2).data_type(), &DataType::UInt32);
        assert_eq!(schema.storage.field(2).data_type(), &DataType::Int64);
        // Narrowed, not encoded: the table has the Delta type.
        assert_eq!(schema.logical.field(3).data_type(), &DataType::Utf8);
        let columns = crate::model::columns_of(&schema.logical);
        // The catalog stores types as text.
        for column in &columns {
            let text = column.data_type.to_string();
            assert_eq!(text.parse::<DataType>().expect("parses"), column.data_type);
        }
        let restored = logical_schema(&schema.storage, &columns);
        assert_eq!(restored.fields(), schema.logical.fields());
        assert_eq!(encoded_columns(&restored, &schema.storage), vec![0, 1, 2]);
        // A column the catalog knows with another type is read as stored.
        let other =
            crate::model::columns_of(&Schema::new(vec![Field::new("t", DataType::Date32, true)]));
        assert_eq!(logical_schema(&schema.storage, &other), schema.storage);
        // Bounds: numbers keep their order through the encoding, text does not.
        let mut stats = Statistics::new_unknown(&schema.storage);
        stats.column_statistics[1].min_value =
            Precision::Exact(ScalarValue::Utf8(Some("10 days".into())));
        stats.column_statistics[2].max_value = Precision::Inexact(ScalarValue::Int64(Some(7)));
        declared_bounds(&mut stats, &schema.logical, &[0, 1, 2]);
        assert_eq!(stats.column_statistics[1].min_value, Precision::Absent);
        assert_eq!(
            stats.column_statistics[2].max_value,
            Precision::Inexact(ScalarValue::UInt32(Some(7)))
        );
        // Streaming tables do not encode.
        assert!(delta_compatible_schema(&declared, true).is_err());
    }
}
