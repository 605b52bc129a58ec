//! The table provider behind a materialized view: the rows of the pinned epoch (or the latest
//! committed one), served from memory on the coordinator.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::{Epochs, ReadPin};
use crate::error::Error;
use crate::model::Oid;

#[derive(Debug)]
pub struct MaterializedViewProvider {
    oid: Oid,
    name: String,
    schema: SchemaRef,
    epochs: Arc<Epochs>,
}

impl MaterializedViewProvider {
    pub(crate) fn new(oid: Oid, name: String, schema: SchemaRef, epochs: Arc<Epochs>) -> Self {
        Self {
            oid,
            name,
            schema,
            epochs,
        }
    }

    pub fn oid(&self) -> Oid {
        self.oid
    }
}

#[async_trait]
impl TableProvider for MaterializedViewProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        _input: Arc<dyn ExecutionPlan>,
        _insert_op: datafusion::logical_expr::dml::InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::from(Error::WrongObjectType(format!(
            "cannot insert into materialized view \"{}\": its rows come from its query",
            self.name
        ))))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let snapshot = match state.config().get_extension::<ReadPin>() {
            Some(pin) => Arc::clone(&pin.0),
            None => self.epochs.committed(),
        };
        let Some(contents) = snapshot.views.get(&self.oid) else {
            return Err(DataFusionError::from(Error::NotReady(format!(
                "materialized view \"{}\" is not ready yet: it is still being built or \
                 recovered",
                self.name
            ))));
        };
        let batches = contents.batches.as_ref().clone();
        MemorySourceConfig::try_new_exec(&[batches], self.schema(), projection.cloned())
            .map(|exec| exec as Arc<dyn ExecutionPlan>)
    }
}
