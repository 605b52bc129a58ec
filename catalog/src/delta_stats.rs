//! File-level statistics from a Delta add action's `stats` JSON, so DataFusion can skip whole
//! files whose value ranges cannot match a predicate (e.g. a streaming table's files outside a
//! time range) without opening them.
//!
//! Only columns whose bounds are exact enough to prune with are kept: integers, floats, dates
//! and timestamps. Delta writes timestamp bounds in milliseconds, so a maximum is widened to
//! the end of its millisecond. Strings are left out: Delta may truncate their bounds.
//!
//! The bounds are marked `Exact` because DataFusion's file pruner only uses exact ones. They
//! are exact for numbers and dates; timestamp bounds may be up to a millisecond outside the
//! true range, which is safe for pruning. They live only on each `PartitionedFile` (the scan's
//! own statistics carry row counts alone), so no optimizer answers `MIN`/`MAX` from them.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};
use serde_json::Value;

/// Statistics of one file from its `stats` JSON, or `None` when it has none usable.
pub(crate) fn file_statistics(
    schema: &SchemaRef,
    stats_json: Option<&str>,
    size: u64,
) -> Option<Arc<Statistics>> {
    let stats: Value = serde_json::from_str(stats_json?).ok()?;
    let rows = stats.get("numRecords").and_then(Value::as_u64)?;
    let mins = stats.get("minValues");
    let maxs = stats.get("maxValues");
    let nulls = stats.get("nullCount");
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().as_str();
            let bound = |values: Option<&Value>, upper: bool| {
                values
                    .and_then(|v| v.get(name))
                    .and_then(|v| scalar(v, field.data_type(), upper))
                    .map_or(Precision::Absent, Precision::Exact)
            };
            ColumnStatistics {
                null_count: nulls
                    .and_then(|v| v.get(name))
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .map_or(Precision::Absent, Precision::Exact),
                min_value: bound(mins, false),
                max_value: bound(maxs, true),
                ..ColumnStatistics::new_unknown()
            }
        })
        .collect();
    Some(Arc::new(Statistics {
        num_rows: usize::try_from(rows).map_or(Precision::Absent, Precision::Exact),
        total_byte_size: usize::try_from(size).map_or(Precision::Absent, Precision::Inexact),
        column_statistics: columns,
    }))
}

/// A JSON bound as a value of `data_type`; `upper` widens a millisecond timestamp to its end.
fn scalar(value: &Value, data_type: &DataType, upper: bool) -> Option<ScalarValue> {
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            ScalarValue::Int64(Some(value.as_i64()?))
                .cast_to(data_type)
                .ok()
        }
        DataType::Float32 | DataType::Float64 => ScalarValue::Float64(Some(value.as_f64()?))
            .cast_to(data_type)
            .ok(),
        DataType::Date32 => {
            let date = chrono::NaiveDate::parse_from_str(value.as_str()?, "%Y-%m-%d").ok()?;
            let days = date
                .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?)
                .num_days();
            Some(ScalarValue::Date32(Some(i32::try_from(days).ok()?)))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let text = value.as_str()?;
            let micros = chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_micros())
                .or_else(|_| {
                    // Zone-less timestamps: delta-rs writes `2026-02-01 10:00:00.123`.
                    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                        .or_else(|_| {
                            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                        })
                        .map(|t| t.and_utc().timestamp_micros())
                })
                .ok()?;
            let micros = if upper { micros + 999 } else { micros };
            Some(ScalarValue::TimestampMicrosecond(Some(micros), tz.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn bounds_from_delta_stats() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("name", DataType::Utf8, true),
        ]));
        let json = r#"{"numRecords":3,"minValues":{"id":1,"ts":"2026-02-01T00:00:00.000Z","name":"a"},
            "maxValues":{"id":9,"ts":"2026-02-01T10:00:00.123Z","name":"z"},"nullCount":{"id":0,"ts":1,"name":0}}"#;
        let stats = file_statistics(&schema, Some(json), 100).expect("stats");
        assert_eq!(stats.num_rows, Precision::Exact(3));
        let id = &stats.column_statistics[0];
        assert_eq!(id.min_value, Precision::Exact(ScalarValue::Int32(Some(1))));
        assert_eq!(id.max_value, Precision::Exact(ScalarValue::Int32(Some(9))));
        let ts = &stats.column_statistics[1];
        assert_eq!(
            ts.max_value,
            Precision::Exact(ScalarValue::TimestampMicrosecond(
                Some(1_769_940_000_123_999),
                Some("UTC".into())
            ))
        );
        assert_eq!(ts.null_count, Precision::Exact(1));
        assert_eq!(stats.column_statistics[2].min_value, Precision::Absent);
        assert!(file_statistics(&schema, Some("not json"), 1).is_none());
        let naive = Arc::new(Schema::new(vec![Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]));
        let json = r#"{"numRecords":1,"minValues":{"at":"2026-02-01 10:00:00.000"},"maxValues":{"at":"2026-02-01 10:00:00.000"}}"#;
        let stats = file_statistics(&naive, Some(json), 1).expect("stats");
        assert_eq!(
            stats.column_statistics[0].min_value,
            Precision::Exact(ScalarValue::TimestampMicrosecond(
                Some(1_769_940_000_000_000),
                None
            ))
        );
    }
}
