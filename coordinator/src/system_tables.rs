//! The `basin` schema: the cluster seen through SQL. `basin.executors` lists the executors the
//! coordinator knows (live, draining, dead), `basin.queries` the running and recent queries,
//! `basin.tables` and `basin.ingest_stats` the tables and streaming ingest ([`streams`]),
//! `basin.materialized_views` the views the continuous-query manager keeps ([`views`]).
//! Each scan builds its rows afresh.

mod streams;
mod views;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, Session};
use datafusion::common::Result;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::membership::Membership;
use crate::query_log::QueryLog;

type RowsFn = Arc<dyn Fn() -> Result<RecordBatch> + Send + Sync>;

/// A table whose rows a function produces at every scan.
struct LiveTable {
    schema: SchemaRef,
    rows: RowsFn,
}

impl std::fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTable")
            .field("schema", &self.schema)
            .finish()
    }
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = (self.rows)()?;
        MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema(), projection.cloned())
            .map(|exec| exec as Arc<dyn ExecutionPlan>)
    }
}

fn timestamptz() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

fn micros_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn executors_table(membership: Arc<Membership>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("address", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("cores", DataType::Int32, false),
        Field::new("memory_bytes", DataType::Int64, false),
        Field::new("running_tasks", DataType::Int32, false),
        Field::new("last_heartbeat", timestamptz(), false),
        Field::new("build_version", DataType::Utf8, false),
    ]));
    let rows_schema = Arc::clone(&schema);
    let rows: RowsFn = Arc::new(move || {
        let executors = membership.snapshot();
        let (now, now_instant) = (SystemTime::now(), Instant::now());
        let mut id = StringBuilder::new();
        let mut address = StringBuilder::new();
        let mut state = StringBuilder::new();
        let mut cores = Int32Builder::new();
        let mut memory = Int64Builder::new();
        let mut running = Int32Builder::new();
        let mut heartbeat = TimestampMicrosecondBuilder::new().with_timezone("+00:00");
        let mut version = StringBuilder::new();
        for executor in executors {
            let registration = &executor.registration;
            id.append_value(registration.id.as_str());
            address.append_value(&registration.url);
            state.append_value(match executor.state {
                crate::membership::ExecutorState::Live => "live",
                crate::membership::ExecutorState::Draining => "draining",
                crate::membership::ExecutorState::Dead => "dead",
            });
            cores.append_value(i32::try_from(registration.cores).unwrap_or(i32::MAX));
            memory.append_value(i64::try_from(registration.memory_bytes).unwrap_or(i64::MAX));
            running.append_value(i32::try_from(executor.running_tasks).unwrap_or(i32::MAX));
            let ago = now_instant.saturating_duration_since(executor.last_heartbeat.into_std());
            heartbeat.append_value(micros_since_epoch(now - ago));
            version.append_value(&registration.build_version);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(address.finish()),
            Arc::new(state.finish()),
            Arc::new(cores.finish()),
            Arc::new(memory.finish()),
            Arc::new(running.finish()),
            Arc::new(heartbeat.finish()),
            Arc::new(version.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&rows_schema), columns)?)
    });
    LiveTable { schema, rows }
}

fn queries_table(log: Arc<QueryLog>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("query_id", DataType::Int64, false),
        Field::new("pid", DataType::Int32, false),
        Field::new("usename", DataType::Utf8, false),
        Field::new("query", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("started", timestamptz(), false),
        Field::new("duration_ms", DataType::Float64, false),
        Field::new("stages", DataType::Int32, false),
        Field::new("attempts", DataType::Int32, false),
        Field::new("executors", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("error", DataType::Utf8, true),
    ]));
    let rows_schema = Arc::clone(&schema);
    let rows: RowsFn = Arc::new(move || {
        let mut query_id = Int64Builder::new();
        let mut pid = Int32Builder::new();
        let mut user = StringBuilder::new();
        let mut text = StringBuilder::new();
        let mut state = StringBuilder::new();
        let mut started = TimestampMicrosecondBuilder::new().with_timezone("+00:00");
        let mut duration = Float64Builder::new();
        let mut stages = Int32Builder::new();
        let mut attempts = Int32Builder::new();
        let mut executors = StringBuilder::new();
        let mut rows = Int64Builder::new();
        let mut error = StringBuilder::new();
        for entry in log.snapshot() {
            let progress = entry.progress();
            query_id.append_value(i64::try_from(entry.id).unwrap_or(i64::MAX));
            pid.append_value(entry.pid);
            user.append_value(&entry.user);
            text.append_value(&entry.text);
            state.append_value(progress.state);
            started.append_value(micros_since_epoch(entry.started));
            duration.append_value(entry.elapsed().as_secs_f64() * 1000.0);
            stages.append_value(i32::try_from(progress.run.stages).unwrap_or(i32::MAX));
            attempts.append_value(i32::try_from(progress.run.attempts).unwrap_or(i32::MAX));
            let used: Vec<&str> = progress
                .run
                .executors
                .iter()
                .map(|id| id.as_str())
                .collect();
            executors.append_value(used.join(","));
            rows.append_value(i64::try_from(progress.rows).unwrap_or(i64::MAX));
            error.append_option(progress.error.as_deref());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(query_id.finish()),
            Arc::new(pid.finish()),
            Arc::new(user.finish()),
            Arc::new(text.finish()),
            Arc::new(state.finish()),
            Arc::new(started.finish()),
            Arc::new(duration.finish()),
            Arc::new(stages.finish()),
            Arc::new(attempts.finish()),
            Arc::new(executors.finish()),
            Arc::new(rows.finish()),
            Arc::new(error.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&rows_schema), columns)?)
    });
    LiveTable { schema, rows }
}

/// Registers the `basin` schema in the session's default catalog.
pub(crate) fn install(
    ctx: &SessionContext,
    membership: Arc<Membership>,
    log: Arc<QueryLog>,
    tables: Arc<basin_catalog::Catalog>,
    views: Arc<crate::continuous::Manager>,
) -> Result<()> {
    let catalog = crate::pg_catalog::default_catalog(ctx)?;
    let schema = MemorySchemaProvider::new();
    schema.register_table(
        "executors".to_owned(),
        Arc::new(executors_table(membership)),
    )?;
    schema.register_table("queries".to_owned(), Arc::new(queries_table(log)))?;
    schema.register_table(
        "tables".to_owned(),
        Arc::new(streams::tables_table(Arc::clone(&tables))),
    )?;
    schema.register_table(
        "ingest_stats".to_owned(),
        Arc::new(streams::ingest_stats_table(tables)),
    )?;
    schema.register_table(
        "materialized_views".to_owned(),
        Arc::new(views::materialized_views_table(views)),
    )?;
    catalog.register_schema("basin", Arc::new(schema))?;
    Ok(())
}
