//! Queries and DML: plan physically and stream the rows, or run `INSERT` to completion and
//! report the count.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::SchemaRef;
use datafusion::common::format::ExplainFormat;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use super::Output;
use crate::dist::{self, RunInfo};
use crate::error::{Error, Result};
use crate::query_log::QueryHandle;
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

/// Runs `plan`, planned in `state` (the session's state as of this statement: cloned once per
/// statement, since each clone copies the session's function registry).
pub(super) async fn execute(
    session: &Arc<Session>,
    state: SessionState,
    plan: LogicalPlan,
    log: &QueryHandle,
) -> Result<Output> {
    if let LogicalPlan::Analyze(analyze) = &plan
        && let LogicalPlan::Dml(DmlStatement { op, .. }) = analyze.input.as_ref()
    {
        // A write run under EXPLAIN ANALYZE would skip what its own path does (the table's
        // write lock, the checks of DELETE and UPDATE, the sync before the answer).
        return Err(Error::unsupported(format!(
            "EXPLAIN ANALYZE of {} is not supported; EXPLAIN shows its plan",
            op.name()
        )));
    }
    match &plan {
        LogicalPlan::Dml(DmlStatement { op, .. }) => match op {
            WriteOp::Insert(_) => insert(session, state, &plan, log).await,
            WriteOp::Delete | WriteOp::Update | WriteOp::Truncate => {
                super::change::execute(session, state, &plan, log).await
            }
            other => Err(Error::unsupported(format!(
                "{} is not supported yet",
                other.name()
            ))),
        },
        LogicalPlan::Statement(statement) => Err(Error::unsupported(format!(
            "statement {} is not supported",
            statement.name()
        ))),
        LogicalPlan::Copy(_) => copy_to(session, state, &plan, log).await,
        LogicalPlan::Ddl(ddl) => Err(Error::unsupported(format!(
            "{} is not supported",
            ddl.name()
        ))),
        LogicalPlan::Explain(explain)
            if !explain.verbose && explain.explain_format == ExplainFormat::Indent =>
        {
            let (state, _pin) = pinned_state(session, state, &plan).await?;
            let logical = state.optimize(&explain.plan)?;
            let physical = state.create_physical_plan(&explain.plan).await?;
            let text = dist::explain_text(&session.server.dist, &physical);
            plan_rows(
                &plan,
                &[
                    ("logical_plan", logical.display_indent().to_string()),
                    ("physical_plan", text),
                ],
            )
        }
        LogicalPlan::Analyze(analyze) if !analyze.verbose => {
            if let LogicalPlan::Copy(copy) = analyze.input.as_ref() {
                super::copy_to::check_local_target(&copy.output_url)?;
            }
            let (state, pin) = pinned_state(session, state, &plan).await?;
            let physical = state.create_physical_plan(&analyze.input).await?;
            drop(pin);
            let text = dist::explain_analyze_text(&session.server.dist, &state, physical).await?;
            plan_rows(&plan, &[("Plan with Metrics", text)])
        }
        _ => {
            let (state, pin) = pinned_state(session, state, &plan).await?;
            let physical = state.create_physical_plan(&plan).await?;
            // Scans have taken their rows; compaction may move on.
            drop(pin);
            let schema = physical.schema();
            let mut run = RunInfo::default();
            let result = session
                .server
                .dist
                .execute(&state, &plan, physical, log, &mut run)
                .await;
            log.set_run(run);
            let stream = result?;
            Ok(Output::Rows { schema, stream })
        }
    }
}

/// An EXPLAIN result: (plan_type, plan) rows in the schema DataFusion gives EXPLAIN.
fn plan_rows(plan: &LogicalPlan, rows: &[(&str, String)]) -> Result<Output> {
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(t, _)| *t))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, p)| p.as_str()),
        )),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| Error::Internal(format!("explain output: {e}")))?;
    let stream =
        RecordBatchStreamAdapter::new(Arc::clone(&schema), futures::stream::iter([Ok(batch)]));
    Ok(Output::Rows {
        schema,
        stream: Box::pin(stream),
    })
}

async fn insert(
    session: &Arc<Session>,
    state: SessionState,
    plan: &LogicalPlan,
    log: &QueryHandle,
) -> Result<Output> {
    let LogicalPlan::Dml(DmlStatement { table_name, .. }) = plan else {
        return Err(Error::Internal("insert without a DML plan".to_owned()));
    };
    let target = super::ddl::resolve(session, table_name);
    let _serialised = session.server.catalog.lock_table_writes(&target).await;
    let started = std::time::SystemTime::now();
    let (state, pin) = pinned_state(session, state, plan).await?;
    // A large INSERT ... SELECT reads its input over the executors, admitted and retried like
    // any distributed query; the Delta commit itself happens here.
    let rows = run_write(session, &state, plan, pin, log).await?;
    // Acknowledge only what would survive a power loss.
    session.server.catalog.sync_writes(&target, started).await?;
    session.note_write();
    Ok(Output::Command(format!("INSERT 0 {rows}")))
}

/// DataFusion's `COPY {table | (query)} TO 'location' [STORED AS format] [PARTITIONED BY ...]`:
/// the rows are written by DataFusion's file sinks into any store the registry knows (a local
/// path, relative to the coordinator's working directory, or `s3://`), on the coordinator.
async fn copy_to(
    session: &Arc<Session>,
    state: SessionState,
    plan: &LogicalPlan,
    log: &QueryHandle,
) -> Result<Output> {
    if let LogicalPlan::Copy(copy) = plan {
        super::copy_to::check_local_target(&copy.output_url)?;
    }
    let staged = super::copy_to::Staged::of(plan)?;
    let plan = staged.as_ref().map_or(plan, |staged| &staged.plan);
    let (state, pin) = pinned_state(session, state, plan).await?;
    let written = run_write(session, &state, plan, pin, log).await;
    if let Some(staged) = &staged {
        match &written {
            Ok(_) => staged.publish(&state).await?,
            Err(_) => staged.discard(&state).await,
        }
    }
    Ok(Output::Command(format!("COPY {}", written?)))
}

/// Plans and runs a write (INSERT, COPY) to its end; returns the rows it wrote. The epoch pin
/// is released once the scans have taken their rows.
pub(super) async fn run_write(
    session: &Arc<Session>,
    state: &SessionState,
    plan: &LogicalPlan,
    pin: Option<basin_catalog::views::PinGuard>,
    log: &QueryHandle,
) -> Result<u64> {
    let physical = state.create_physical_plan(plan).await?;
    drop(pin);
    let mut run = RunInfo::default();
    let result = session
        .server
        .dist
        .execute(state, plan, physical, log, &mut run)
        .await;
    log.set_run(run);
    Ok(count_rows(
        datafusion::physical_plan::common::collect(result?).await?,
    ))
}

/// The sum of a write's one-column `count` result.
fn count_rows(batches: Vec<RecordBatch>) -> u64 {
    batches
        .iter()
        .filter_map(|b| {
            b.columns()
                .first()?
                .as_any()
                .downcast_ref::<UInt64Array>()
                .map(|c| c.iter().flatten().sum::<u64>())
        })
        .sum()
}

/// The session state a statement plans in. A statement that reads a materialized view pins
/// the latest committed epoch, so every view and streaming table it reads is as of that
/// epoch; in `basin.read_consistency = 'strict'` it first waits until that epoch covers the
/// session's own writes. The pin is held until the scans have taken their rows.
async fn pinned_state(
    session: &Arc<Session>,
    mut state: SessionState,
    plan: &LogicalPlan,
) -> Result<(SessionState, Option<basin_catalog::views::PinGuard>)> {
    state
        .config_mut()
        .set_extension(Arc::new(crate::query_memory::QueryMemorySetting(
            session.vars.get(crate::query_memory::SETTING),
        )));
    let row_filters = session
        .vars
        .get(crate::dist::row_filters::SETTING)
        .and_then(|text| crate::dist::row_filters::RowFilterMode::parse(&text))
        .unwrap_or_default();
    state.config_mut().set_extension(Arc::new(row_filters));
    let (views, tables) = relations_read(plan);
    if views.is_empty() {
        return Ok((state, None));
    }
    let epochs = session.server.catalog.epochs();
    // A view still being recovered after a restart is waited for, as shards are; so is an
    // epoch captured while a shard it (or a table read beside it) depends on was not readable
    // yet, which would miss rows acknowledged before the restart. After the wait the view is
    // read as it is: stale rather than unavailable.
    let deadline = std::time::Instant::now() + basin_catalog::streams::UNAVAILABLE_WAIT;
    while std::time::Instant::now() < deadline && {
        let committed = epochs.committed();
        views.iter().any(|oid| !committed.views.contains_key(oid))
            || committed.lags(&views, &tables)
    } {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if session.strict_reads() {
        let wanted = session.last_write_epoch();
        let timeout = session
            .statement_timeout()
            .unwrap_or(std::time::Duration::from_secs(60));
        if wanted > 0 && !epochs.wait_committed(wanted, timeout).await {
            return Err(Error::user(
                "55000",
                format!(
                    "materialized views did not reflect this session's writes (epoch {wanted}) \
                     within {}s",
                    timeout.as_secs()
                ),
            ));
        }
    }
    let pin = epochs.pin();
    state
        .config_mut()
        .set_extension(Arc::new(basin_catalog::views::ReadPin(Arc::clone(
            pin.snapshot(),
        ))));
    Ok((state, Some(pin)))
}

/// The materialized views and the streaming tables `plan` reads, directly or through views.
fn relations_read(
    plan: &LogicalPlan,
) -> (
    Vec<basin_catalog::model::Oid>,
    Vec<basin_catalog::model::Oid>,
) {
    use datafusion::catalog::default_table_source::source_as_provider;
    use datafusion::common::tree_node::TreeNodeRecursion;
    let (mut views, mut tables) = (Vec::new(), Vec::new());
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
        {
            if let Some(view) =
                provider.downcast_ref::<basin_catalog::views::MaterializedViewProvider>()
            {
                views.push(view.oid());
            } else if let Some(stream) =
                provider.downcast_ref::<basin_catalog::streams::StreamTableProvider>()
            {
                tables.push(stream.table().oid());
            } else if let Some(view) =
                provider.downcast_ref::<datafusion::catalog::view::ViewTable>()
            {
                let (inner_views, inner_tables) = relations_read(view.logical_plan());
                views.extend(inner_views);
                tables.extend(inner_tables);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (views, tables)
}
