//! Where a COPY's rows go: a streaming table (each batch appended durably as it fills), or an
//! ordinary Basin table, which takes the whole COPY in one Delta commit at the end, so the
//! COPY is atomic there as in Postgres. Such a COPY is held in memory until then, up to
//! [`MAX_TABLE_COPY_BYTES`]; larger loads belong in a streaming table.

use std::sync::Arc;
use std::time::SystemTime;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use basin_catalog::model::OnError;
use basin_catalog::streams::StreamTable;
use basin_catalog::{Catalog, RelationName};
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::dml::InsertOp;

use crate::error::{Error, Result};
use crate::ingest::{self, Decoded, Delivered, Target};

/// Decoded rows an ordinary table's COPY may hold before its commit.
const MAX_TABLE_COPY_BYTES: usize = 1024 * 1024 * 1024;

pub(crate) enum CopySink {
    Stream(Arc<StreamTable>),
    Table(Box<TableCopy>),
}

/// A COPY into a Basin-managed (Delta) table, collected for one commit.
pub(crate) struct TableCopy {
    pub(super) relation: RelationName,
    pub(super) name: String,
    pub(super) provider: Arc<dyn TableProvider>,
    pub(super) state: SessionState,
    batches: Vec<RecordBatch>,
    bytes: usize,
}

impl TableCopy {
    pub(super) fn new(
        relation: RelationName,
        provider: Arc<dyn TableProvider>,
        state: SessionState,
    ) -> Self {
        Self {
            name: format!("{}.{}", relation.schema, relation.name),
            relation,
            provider,
            state,
            batches: Vec::new(),
            bytes: 0,
        }
    }
}

impl Target for TableCopy {
    fn schema(&self) -> SchemaRef {
        self.provider.schema()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn on_error(&self) -> OnError {
        OnError::Reject
    }

    fn record_rejected(&self, _rows: u64) {}
}

impl CopySink {
    pub(super) fn target(&self) -> &dyn Target {
        match self {
            CopySink::Stream(table) => table.as_ref(),
            CopySink::Table(copy) => copy.as_ref(),
        }
    }

    /// Whether delivered batches stay when a later one fails.
    pub(super) fn appends_per_batch(&self) -> bool {
        matches!(self, CopySink::Stream(_))
    }

    /// Takes one converted batch.
    pub(super) async fn deliver(
        &mut self,
        catalog: &Arc<Catalog>,
        decoded: Decoded,
    ) -> Result<Delivered> {
        match self {
            CopySink::Stream(table) => ingest::deliver(catalog, table, decoded, "copy").await,
            CopySink::Table(copy) => {
                copy.bytes += decoded.batch.get_array_memory_size();
                if copy.bytes > MAX_TABLE_COPY_BYTES {
                    return Err(Error::user(
                        "54000",
                        format!(
                            "COPY into table {} holds more than {} MiB before its commit; load \
                             it in parts or into a streaming table (CREATE TABLE ... APPEND ONLY)",
                            copy.name,
                            MAX_TABLE_COPY_BYTES / 1024 / 1024
                        ),
                    ));
                }
                copy.batches.push(decoded.batch);
                Ok(Delivered::default())
            }
        }
    }

    /// Ends the COPY: an ordinary table commits every row now. Returns the rows it took.
    pub(super) async fn commit(&mut self, catalog: &Arc<Catalog>) -> Result<u64> {
        let CopySink::Table(copy) = self else {
            return Ok(0);
        };
        let batches = std::mem::take(&mut copy.batches);
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        if rows == 0 {
            return Ok(0);
        }
        let since = SystemTime::now();
        let input = MemorySourceConfig::try_new_exec(&[batches], copy.provider.schema(), None)?;
        let plan = copy
            .provider
            .insert_into(&copy.state, input, InsertOp::Append)
            .await?;
        datafusion::physical_plan::collect(plan, copy.state.task_ctx()).await?;
        catalog.sync_writes(&copy.relation, since).await?;
        Ok(rows)
    }
}
