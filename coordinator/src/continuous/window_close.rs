//! `EMIT ON WINDOW CLOSE`: a windowed aggregate view shows a window's row once the input
//! table's watermark (`WATERMARK FOR ts AS ts - INTERVAL ...`, the latest event time seen minus
//! the allowed lateness) has passed the window's end; the row then never changes and the
//! window's state is dropped. Rows older than the watermark when they arrive are late: they
//! are dropped and counted.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, TimeUnit};
use basin_catalog::model::Oid;
use basin_catalog::streams::StreamTable;
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionState;
use datafusion::physical_expr::PhysicalExpr;

/// The window-close state of one view.
pub(super) struct WindowClose {
    pub(super) table: Oid,
    pub(super) table_name: String,
    pub(super) watermark_sql: String,
    event_time: usize,
    expr: Arc<dyn PhysicalExpr>,
    /// Microseconds; `None` until a row was seen.
    pub(super) watermark: Option<i64>,
    pub(super) late_rows: u64,
    /// The view's rows of closed windows.
    pub(super) closed: Vec<RecordBatch>,
}

fn micros(values: &dyn Array) -> DfResult<TimestampMicrosecondArray> {
    let values = cast(values, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    values
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("watermark is not a timestamp".into()))
}

impl WindowClose {
    /// Window close over streaming table `table`, which must have a watermark.
    pub(super) fn try_new(table: &StreamTable, state: &SessionState) -> Result<Self, String> {
        let spec = table.spec();
        let (Some(event_time), Some(watermark)) = (&spec.event_time, &spec.watermark) else {
            return Err(format!(
                "EMIT ON WINDOW CLOSE needs a watermark on {}: declare WATERMARK FOR <column> AS \
                 <column> - INTERVAL '...' in its CREATE TABLE",
                table.name()
            ));
        };
        let schema = table.schema();
        let event_time = schema
            .index_of(event_time)
            .map_err(|e| format!("event time column of {}: {e}", table.name()))?;
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).map_err(|e| e.to_string())?;
        let expr = state
            .create_logical_expr(watermark, &df_schema)
            .and_then(|expr| state.create_physical_expr(expr, &df_schema))
            .map_err(|e| format!("watermark of {}: {e}", table.name()))?;
        Ok(Self {
            table: table.oid(),
            table_name: table.name().to_owned(),
            watermark_sql: watermark.clone(),
            event_time,
            expr,
            watermark: None,
            late_rows: 0,
            closed: Vec::new(),
        })
    }

    /// Drops (and counts) the rows of `batches` older than the watermark.
    pub(super) fn drop_late(&mut self, batches: Vec<RecordBatch>) -> DfResult<Vec<RecordBatch>> {
        let Some(watermark) = self.watermark else {
            return Ok(batches);
        };
        let mut kept = Vec::with_capacity(batches.len());
        for batch in batches {
            let times = micros(batch.column(self.event_time))?;
            let on_time: BooleanArray = times
                .iter()
                .map(|t| Some(t.is_some_and(|t| t >= watermark)))
                .collect();
            let rows = filter_record_batch(&batch, &on_time)?;
            self.late_rows += (batch.num_rows() - rows.num_rows()) as u64;
            kept.push(rows);
        }
        Ok(kept)
    }

    /// Moves the watermark up to `value` (a timestamp scalar as a one-row array).
    pub(super) fn advance_to(&mut self, value: &dyn Array) -> DfResult<()> {
        if let Some(max) = arrow::compute::max(&micros(value)?) {
            self.watermark = Some(self.watermark.map_or(max, |w| w.max(max)));
        }
        Ok(())
    }

    /// Moves the watermark up to what `batches` (new input rows) allow.
    pub(super) fn advance(&mut self, batches: &[RecordBatch]) -> DfResult<()> {
        for batch in batches {
            if batch.num_rows() == 0 {
                continue;
            }
            let values = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
            if let Some(max) = arrow::compute::max(&micros(values.as_ref())?) {
                self.watermark = Some(self.watermark.map_or(max, |w| w.max(max)));
            }
        }
        Ok(())
    }
}

/// Where `window_end` is among an aggregation's output columns.
pub(super) fn window_end_column(schema: &arrow::datatypes::Schema) -> Option<usize> {
    schema
        .fields()
        .iter()
        .position(|f| f.name() == "window_end" || f.name().ends_with(".window_end"))
}
