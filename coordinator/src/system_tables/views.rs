//! `basin.materialized_views`: per materialized view its mode, state, size, input and
//! freshness (lag from ingest acknowledgement to visible in the view, over the last ten
//! minutes).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::{LiveTable, RowsFn};
use crate::continuous::Manager;

pub(super) fn materialized_views_table(manager: Arc<Manager>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("rows", DataType::Int64, false),
        Field::new("groups", DataType::Int64, true),
        Field::new("state_bytes", DataType::Int64, false),
        Field::new("input_rows", DataType::Int64, false),
        Field::new("late_rows", DataType::Int64, false),
        Field::new(
            "watermark",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
        Field::new("epoch", DataType::Int64, false),
        Field::new("checkpoint_epoch", DataType::Int64, true),
        Field::new("freshness_p50_ms", DataType::Float64, true),
        Field::new("freshness_p99_ms", DataType::Float64, true),
        Field::new("freshness_max_ms", DataType::Float64, true),
        Field::new("freshness_samples", DataType::Int64, false),
    ]));
    let rows_schema = Arc::clone(&schema);
    let rows: RowsFn = Arc::new(move || {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut name = StringBuilder::new();
        let mut mode = StringBuilder::new();
        let mut reason = StringBuilder::new();
        let mut state = StringBuilder::new();
        let mut error = StringBuilder::new();
        let mut rows = Int64Builder::new();
        let mut groups = Int64Builder::new();
        let mut state_bytes = Int64Builder::new();
        let mut input_rows = Int64Builder::new();
        let mut late_rows = Int64Builder::new();
        let mut watermark = TimestampMicrosecondBuilder::new().with_timezone("+00:00");
        let mut epoch = Int64Builder::new();
        let mut checkpoint = Int64Builder::new();
        let mut p50 = Float64Builder::new();
        let mut p99 = Float64Builder::new();
        let mut max = Float64Builder::new();
        let mut samples = Int64Builder::new();
        for status in manager.status().into_values() {
            name.append_value(&status.name);
            mode.append_value(status.mode.name());
            reason.append_value(status.mode.describe());
            state.append_value(status.state);
            error.append_option(status.error.as_deref());
            rows.append_value(int(status.rows));
            groups.append_option(status.groups.map(int));
            state_bytes.append_value(int(status.state_bytes));
            input_rows.append_value(int(status.input_rows));
            // Rows behind the watermark dropped by EMIT ON WINDOW CLOSE views.
            late_rows.append_value(int(status.late_rows));
            watermark.append_option(status.watermark);
            epoch.append_value(int(status.epoch));
            checkpoint.append_option(status.checkpoint_epoch.map(int));
            p50.append_option(status.freshness.map(|f| f.p50));
            p99.append_option(status.freshness.map(|f| f.p99));
            max.append_option(status.freshness.map(|f| f.max));
            samples.append_value(status.freshness.map_or(0, |f| f.samples as i64));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(name.finish()),
            Arc::new(mode.finish()),
            Arc::new(reason.finish()),
            Arc::new(state.finish()),
            Arc::new(error.finish()),
            Arc::new(rows.finish()),
            Arc::new(groups.finish()),
            Arc::new(state_bytes.finish()),
            Arc::new(input_rows.finish()),
            Arc::new(late_rows.finish()),
            Arc::new(watermark.finish()),
            Arc::new(epoch.finish()),
            Arc::new(checkpoint.finish()),
            Arc::new(p50.finish()),
            Arc::new(p99.finish()),
            Arc::new(max.finish()),
            Arc::new(samples.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&rows_schema), columns)?)
    });
    LiveTable { schema, rows }
}
