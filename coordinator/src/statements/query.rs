//! Queries and DML: plan physically and stream the rows, or run `INSERT` to completion and
//! report the count.

use std::sync::Arc;

use arrow::array::{Array, UInt64Array};
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::{collect, execute_stream};

use super::Output;
use crate::error::{Error, Result};
use crate::session::Session;

/// Whether a plan produces a result set (as opposed to a command tag only).
pub(super) fn returns_rows(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Copy(_)
    )
}

pub(super) async fn execute(session: &Arc<Session>, plan: LogicalPlan) -> Result<Output> {
    match &plan {
        LogicalPlan::Dml(DmlStatement { op, .. }) => match op {
            WriteOp::Insert(_) => insert(session, &plan).await,
            other => Err(Error::unsupported(format!(
                "{} is not supported yet; Basin tables are append-only",
                other.name()
            ))),
        },
        LogicalPlan::Statement(statement) => Err(Error::unsupported(format!(
            "statement {} is not supported",
            statement.name()
        ))),
        LogicalPlan::Copy(_) => Err(Error::unsupported(
            "COPY ... TO a file is not supported; use COPY ... TO STDOUT from a client",
        )),
        LogicalPlan::Ddl(ddl) => Err(Error::unsupported(format!(
            "{} is not supported",
            ddl.name()
        ))),
        _ => {
            let state = session.ctx.state();
            let physical = state.create_physical_plan(&plan).await?;
            let schema = physical.schema();
            let stream = execute_stream(physical, session.ctx.task_ctx())?;
            Ok(Output::Rows { schema, stream })
        }
    }
}

async fn insert(session: &Arc<Session>, plan: &LogicalPlan) -> Result<Output> {
    let LogicalPlan::Dml(DmlStatement { table_name, .. }) = plan else {
        return Err(Error::Internal("insert without a DML plan".to_owned()));
    };
    let started = std::time::SystemTime::now();
    let state = session.ctx.state();
    let physical = state.create_physical_plan(plan).await?;
    let batches = collect(physical, session.ctx.task_ctx()).await?;
    let rows: u64 = batches
        .iter()
        .filter_map(|b| {
            b.columns()
                .first()?
                .as_any()
                .downcast_ref::<UInt64Array>()
                .map(|c| c.iter().flatten().sum::<u64>())
        })
        .sum();
    // Acknowledge only what would survive a power loss.
    let target = super::ddl::resolve(session, table_name);
    session.server.catalog.sync_writes(&target, started).await?;
    Ok(Output::Command(format!("INSERT 0 {rows}")))
}
