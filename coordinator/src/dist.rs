//! Distributed execution, the one place datafusion-distributed's types are used.
//!
//! - **Planning** ([`planner`]): every session plans through [`planner::BasinQueryPlanner`],
//!   which keeps small and coordinator-only queries single-node and otherwise lets
//!   datafusion-distributed cut the physical plan into stages at repartition, merge and
//!   broadcast boundaries.
//! - **Placement** ([`routing`]): tasks go to the live executors of the membership registry.
//! - **Running** ([`Distribution::execute`]): distributed queries are admitted up to a
//!   concurrency limit (the rest wait in line). When an executor is lost before the first row
//!   reaches the client, the query is re-planned over the executors still alive and run again,
//!   a bounded number of times; after that the client gets a retryable error (SQLSTATE 40001).
//! - **Seeing it** ([`explain`]): EXPLAIN shows stages, tasks and each task's executor.

mod explain;
mod failure;
pub(crate) mod planner;
mod routing;
pub(crate) mod row_filters;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use basin_catalog::object_stores::ObjectStores;
use basin_proto::ExecutorId;
use datafusion::common::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};

use crate::query_runtime::execute_stream;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_distributed::{DistributedExec, DistributedExt, SessionStateBuilderExt};
use futures::StreamExt;
use tokio::sync::Semaphore;

pub(crate) use explain::{explain_analyze_text, explain_text};
pub(crate) use routing::QueryRouting;

use crate::config::CoordinatorConfig;
use crate::error::{Error, Result};
use crate::membership::Membership;
use crate::query_log::QueryHandle;

/// An executor was lost and the query could not be completed; running it again can succeed.
#[derive(Debug)]
pub(crate) struct ExecutorLost(pub(crate) String);

impl std::fmt::Display for ExecutorLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExecutorLost {}

/// How a query ran, for `basin.queries`.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunInfo {
    /// Stages including the head stage on the coordinator; 1 for single-node queries.
    pub(crate) stages: usize,
    pub(crate) executors: Vec<ExecutorId>,
    pub(crate) attempts: u32,
}

#[derive(Debug)]
pub(crate) struct Distribution {
    membership: Arc<Membership>,
    admission: Arc<Semaphore>,
    retries: u32,
    min_bytes: u64,
    bytes_per_partition: usize,
    /// Rotates where each query's task 0 lands.
    next_offset: AtomicUsize,
    /// Executors fetch this registry's configs before running a fragment that names a newer
    /// version than theirs.
    object_stores: Arc<ObjectStores>,
}

impl Distribution {
    pub(crate) fn new(
        membership: Arc<Membership>,
        config: &CoordinatorConfig,
        object_stores: Arc<ObjectStores>,
    ) -> Self {
        Self {
            membership,
            admission: Arc::new(Semaphore::new(config.max_concurrent_queries.max(1))),
            retries: config.query_retries,
            min_bytes: config.distribute_min_bytes,
            bytes_per_partition: config.scan_bytes_per_partition.max(1),
            next_offset: AtomicUsize::new(0),
            object_stores,
        }
    }

    pub(crate) fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }

    /// Adds the distributed planner, worker resolver and task routing to a session builder.
    pub(crate) fn install(&self, builder: SessionStateBuilder) -> Result<SessionStateBuilder> {
        let mut builder = builder
            .with_distributed_planner()
            .with_distributed_worker_resolver(routing::MembershipResolver(Arc::clone(
                &self.membership,
            )))
            .with_distributed_route_tasks_handler(routing::Router(Arc::clone(&self.membership)))
            .with_distributed_file_scan_config_bytes_per_partition(self.bytes_per_partition)?;
        let distributed = builder
            .query_planner()
            .take()
            .ok_or_else(|| Error::Internal("distributed planner missing".to_owned()))?;
        Ok(
            builder.with_query_planner(Arc::new(planner::BasinQueryPlanner {
                distributed,
                membership: Arc::clone(&self.membership),
                min_bytes: self.min_bytes,
            })),
        )
    }

    /// Whether `plan` runs over executors.
    pub(crate) fn is_distributed(plan: &Arc<dyn ExecutionPlan>) -> bool {
        plan.is::<DistributedExec>()
    }

    fn next_routing(&self) -> Arc<QueryRouting> {
        Arc::new(QueryRouting::new(
            self.next_offset.fetch_add(1, Ordering::Relaxed),
        ))
    }

    /// The rotation offset the next query will use (for EXPLAIN's placement column).
    pub(crate) fn peek_offset(&self) -> usize {
        self.next_offset.load(Ordering::Relaxed)
    }

    /// A task context for one run of a query, carrying its routing state and, for executors,
    /// the object-store config version its scans need.
    pub(crate) fn task_context(
        &self,
        state: &SessionState,
        routing: &Arc<QueryRouting>,
    ) -> datafusion::error::Result<Arc<TaskContext>> {
        let mut config = state.config().clone().with_extension(Arc::clone(routing));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            basin_proto::OBJECT_STORES_VERSION_HEADER,
            http::HeaderValue::from(self.object_stores.version()),
        );
        config.set_distributed_passthrough_headers(headers)?;
        Ok(Arc::new(
            TaskContext::from(state)
                .with_session_config(config)
                .with_runtime(crate::query_memory::query_runtime(state)),
        ))
    }

    /// Streams the rows of `physical` (planned from `logical` in `state`). Distributed plans are
    /// admitted, and retried over the live executors when one is lost before any row was
    /// produced; `info` learns stages, executors and attempts.
    pub(crate) async fn execute(
        &self,
        state: &SessionState,
        logical: &LogicalPlan,
        mut physical: Arc<dyn ExecutionPlan>,
        log: &QueryHandle,
        info: &mut RunInfo,
    ) -> Result<SendableRecordBatchStream> {
        if !Self::is_distributed(&physical) {
            info.stages = 1;
            info.attempts = 1;
            // A write may have written part of its rows before it failed: it is not run twice.
            let writes = matches!(logical, LogicalPlan::Dml(_) | LogicalPlan::Copy(_));
            if writes || self.membership.live_urls().is_empty() {
                return Ok(execute_local(physical, state)?);
            }
            // Kept here because it reads too little to be worth distributing: if it runs out
            // of the coordinator's memory before its first row, the executors' memory is
            // there too.
            let schema = physical.schema();
            let (first, rest) = match first_batch(execute_local(physical, state)?).await {
                Ok(started) => started,
                Err(err) if is_out_of_memory(&err) => {
                    let mut anywhere = state.clone();
                    anywhere
                        .config_mut()
                        .set_extension(Arc::new(planner::DistributeAnySize));
                    // Nothing to distribute, or no plan for it: the 53200 stands.
                    let distributed = match anywhere.create_physical_plan(logical).await {
                        Ok(plan) if Self::is_distributed(&plan) => plan,
                        _ => return Err(err.into()),
                    };
                    tracing::info!(
                        error = %err,
                        "query ran out of memory on the coordinator; running it over the executors"
                    );
                    return Box::pin(self.execute(&anywhere, logical, distributed, log, info))
                        .await;
                }
                Err(err) => return Err(err.into()),
            };
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                again_with(first, rest),
            )));
        }
        let queued = self.admission.available_permits() == 0;
        if queued {
            log.set_queued(true);
        }
        // Held by the result stream: a portal suspended mid-result keeps its slot until closed.
        let permit = self.admit().await?;
        if queued {
            log.set_queued(false);
        }
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            info.attempts = attempt;
            info.stages = explain::stage_count(&physical);
            let routing = self.next_routing();
            let schema = physical.schema();
            let first = async {
                first_batch(execute_stream(
                    Arc::clone(&physical),
                    self.task_context(state, &routing)?,
                )?)
                .await
            }
            .await;
            info.executors = routing.used().into_iter().map(|(id, _)| id).collect();
            match first {
                Ok((first, rest)) => {
                    let rows = again_with(first, rest).map(move |item| {
                        // The permit is released when the stream is dropped.
                        let _admitted = &permit;
                        item.map_err(lost_while_streaming)
                    });
                    return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)));
                }
                Err(err) if matches!(logical, LogicalPlan::Copy(_)) => {
                    // A COPY's files are written as its rows arrive and appear as each is
                    // finished: running it again would write its rows twice.
                    failure::probe_and_mark(&self.membership, &routing.used()).await;
                    return Err(err.into());
                }
                Err(err) => {
                    let lost = failure::probe_and_mark(&self.membership, &routing.used()).await;
                    if lost.is_empty() {
                        if failure::is_distribution_failure(&err) {
                            // Not the query's fault and no executor lost: a plan the executors
                            // could not run, or none left. The coordinator answers instead.
                            tracing::warn!(
                                error = %err,
                                "distributed execution failed; running the query on the coordinator"
                            );
                            info.stages = 1;
                            info.attempts = attempt + 1;
                            let optimized = state.optimize(logical)?;
                            let single = DefaultPhysicalPlanner::default()
                                .create_physical_plan(&optimized, state)
                                .await?;
                            return Ok(execute_stream(
                                single,
                                crate::query_memory::query_task_ctx(state),
                            )?);
                        }
                        return Err(err.into());
                    }
                    if attempt > self.retries {
                        return Err(Error::DataFusion(DataFusionError::External(Box::new(
                            ExecutorLost(format!(
                                "the query lost executors {attempt} times in a row and was given up: {err}"
                            )),
                        ))));
                    }
                    tracing::warn!(
                        attempt,
                        lost = ?lost.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        error = %err,
                        "executor lost before any row was sent; re-planning over the live executors"
                    );
                    physical = state.create_physical_plan(logical).await?;
                    if !Self::is_distributed(&physical) {
                        // No executor left (or the query no longer qualifies): run it here.
                        info.stages = 1;
                        return Ok(execute_local(physical, state)?);
                    }
                }
            }
        }
    }

    /// Waits for a slot among the distributed queries allowed to run at once.
    pub(crate) async fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.admission)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("admission closed".to_owned()))
    }
}

/// Runs `stream` to its first non-empty batch (nothing has reached the client until a row
/// has), returning it and the rest of the stream.
async fn first_batch(
    mut stream: SendableRecordBatchStream,
) -> datafusion::error::Result<(Option<RecordBatch>, SendableRecordBatchStream)> {
    loop {
        match stream.next().await {
            Some(Ok(batch)) if batch.num_rows() == 0 => continue,
            Some(Ok(batch)) => return Ok((Some(batch), stream)),
            Some(Err(err)) => return Err(err),
            None => return Ok((None, stream)),
        }
    }
}

/// The stream [`first_batch`] took its first batch from, with that batch put back in front.
fn again_with(
    first: Option<RecordBatch>,
    rest: SendableRecordBatchStream,
) -> impl futures::Stream<Item = datafusion::error::Result<RecordBatch>> + Send {
    futures::stream::iter(first.map(Ok)).chain(rest.fuse())
}

/// Whether a query failed for want of memory (SQLSTATE 53200).
fn is_out_of_memory(err: &DataFusionError) -> bool {
    matches!(err.find_root(), DataFusionError::ResourcesExhausted(_))
}

/// After rows were sent, a lost executor cannot be hidden: say so with a retryable SQLSTATE.
fn lost_while_streaming(err: DataFusionError) -> DataFusionError {
    if failure::looks_like_transport(&err) {
        DataFusionError::External(Box::new(ExecutorLost(format!(
            "an executor was lost while the query was sending rows: {err}"
        ))))
    } else {
        err
    }
}

/// Runs a single-node plan here, its Parquet scans reading through Basin's caching reader.
fn execute_local(
    physical: Arc<dyn ExecutionPlan>,
    state: &SessionState,
) -> datafusion::error::Result<SendableRecordBatchStream> {
    let physical =
        basin_catalog::parquet_cache::cache_parquet_metadata(physical, state.runtime_env())?;
    execute_stream(physical, crate::query_memory::query_task_ctx(state))
}
