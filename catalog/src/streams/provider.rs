//! DataFusion's view of a streaming table: scans read the lake's Parquet files (pruned by the
//! pushed-down predicates) plus the log tail in memory (its batches pruned by their min/max);
//! `INSERT` appends through the log.

use std::fmt;
use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::TryStreamExt;

use super::StreamTable;
use crate::delta_files::{scan_files, store_url_of};

/// A streaming table as a `TableProvider`.
#[derive(Debug)]
pub struct StreamTableProvider {
    table: Arc<StreamTable>,
}

impl StreamTableProvider {
    pub fn new(table: Arc<StreamTable>) -> Self {
        Self { table }
    }

    pub fn table(&self) -> &Arc<StreamTable> {
        &self.table
    }
}

#[async_trait]
impl TableProvider for StreamTableProvider {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // The lake's Parquet prunes files' row groups with them; the filter stays above.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.table.schema();
        let unavailable =
            |e| DataFusionError::External(Box::new(super::IngestError::Unavailable(e)));
        self.table.wait_readable().await.map_err(unavailable)?;
        let pinned = state
            .config()
            .get_extension::<crate::views::ReadPin>()
            .and_then(|pin| pin.0.tables.get(&self.table.oid()).cloned());
        let (files, tail) = match pinned {
            Some(offsets) => self.table.snapshot_at(&offsets),
            None => self.table.snapshot(),
        }
        .map_err(unavailable)?;
        let tail = super::tail_pruning::prune_tail(state, &schema, filters, tail);
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() || tail.is_empty() {
            let store = store_url_of(&self.table.lake_url)?;
            inputs.push(scan_files(
                state, &schema, &store, &files, projection, filters, limit,
            )?);
        }
        if !tail.is_empty() {
            // One partition per core, batches dealt round-robin.
            let partitions = state.config_options().execution.target_partitions.max(1);
            let mut parts = vec![Vec::new(); partitions.min(tail.len())];
            let count = parts.len();
            for (i, batch) in tail.into_iter().enumerate() {
                parts[i % count].push(batch);
            }
            inputs.push(MemorySourceConfig::try_new_exec(
                &parts,
                Arc::clone(&schema),
                projection.cloned(),
            )?);
        }
        UnionExec::try_new(inputs)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} into streaming table {}: streaming tables are append only",
                self.table.name()
            )));
        }
        let sink = StreamSink {
            table: Arc::clone(&self.table),
            schema: self.table.schema(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// `INSERT` into a streaming table: the statement's rows are appended as one batch, so a
/// statement is acknowledged whole or not at all.
#[derive(Debug)]
struct StreamSink {
    table: Arc<StreamTable>,
    schema: SchemaRef,
}

impl DisplayAs for StreamSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamSink: table={}", self.table.name())
    }
}

#[async_trait]
impl DataSink for StreamSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let batches: Vec<_> = data.try_collect().await?;
        if batches.is_empty() {
            return Ok(0);
        }
        let batch = concat_batches(&batches[0].schema(), &batches)?;
        self.table
            .append(batch)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}
