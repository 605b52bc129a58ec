//! The coordinator's query planner: plans single-node first and hands the query to
//! datafusion-distributed only when distributing can pay off: executors are live, the query
//! reads at least the configured number of bytes from files, and every function it calls is one
//! executors know. Everything else (`SELECT 1`, catalog queries, small lookups) stays on the
//! single-node fast path and costs no network hop.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_distributed::DistributedConfig;

use crate::membership::Membership;

/// Scalar functions every executor has: DataFusion's built-ins. Basin's coordinator-only
/// functions (pg_catalog's, which read the catalog) keep a query on the coordinator.
static EXECUTOR_FUNCTIONS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    SessionStateBuilder::new()
        .with_default_features()
        .build()
        .scalar_functions()
        .keys()
        .cloned()
        .collect()
});

/// A session-config extension: distribute the query whatever it reads, when it can be
/// distributed at all. Set for the second run of a query that ran out of memory on the
/// coordinator ([`crate::dist::Distribution::execute`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DistributeAnySize;

#[derive(Debug)]
pub(crate) struct BasinQueryPlanner {
    /// datafusion-distributed's planner.
    pub(crate) distributed: Arc<dyn QueryPlanner + Send + Sync>,
    pub(crate) membership: Arc<Membership>,
    /// Queries reading fewer bytes from files than this run single-node.
    pub(crate) min_bytes: u64,
}

#[async_trait]
impl QueryPlanner for BasinQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Parquet row filters for lookups by key only, unless the session says otherwise (see
        // `row_filters`).
        let with_row_filters = match session.as_any().downcast_ref::<SessionState>() {
            Some(state) => {
                let mode = state
                    .config()
                    .get_extension::<super::row_filters::RowFilterMode>()
                    .map_or_else(Default::default, |mode| *mode);
                let current = state.config_options().execution.parquet.pushdown_filters;
                let wanted = mode.wants(logical_plan, current);
                (wanted != current).then(|| {
                    let mut state = state.clone();
                    state
                        .config_mut()
                        .options_mut()
                        .execution
                        .parquet
                        .pushdown_filters = wanted;
                    state
                })
            }
            None => None,
        };
        let session: &dyn Session = match &with_row_filters {
            Some(state) => state,
            None => session,
        };
        let single = DefaultPhysicalPlanner::default()
            .create_physical_plan(logical_plan, session)
            .await?;
        let live = self.membership.live_urls().len();
        // Executors run with Basin's default settings; a session that changed its time zone
        // gets its answers from the coordinator, which honours it.
        let default_time_zone =
            session.config_options().execution.time_zone.as_deref() == Some("+00:00");
        let any_size = session
            .as_any()
            .downcast_ref::<SessionState>()
            .is_some_and(|state| {
                state
                    .config()
                    .get_extension::<DistributeAnySize>()
                    .is_some()
            });
        if live == 0 || !default_time_zone || !self.worth_distributing(&single, any_size)? {
            return Ok(single);
        }
        if live > 1 {
            return self
                .distributed
                .create_physical_plan(logical_plan, session)
                .await;
        }
        // With one executor datafusion-distributed gives every stage one task, and a stage of
        // one task feeding one consumer is run in place: the coordinator would do all the work.
        // Two tasks per stage, both on the one executor, keep the work there.
        let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
            return Ok(single);
        };
        let mut state = state.clone();
        DistributedConfig::from_config_options_mut(state.config_mut().options_mut())?
            .max_tasks_per_stage = 2;
        self.distributed
            .create_physical_plan(logical_plan, &state)
            .await
    }
}

impl BasinQueryPlanner {
    fn worth_distributing(&self, plan: &Arc<dyn ExecutionPlan>, any_size: bool) -> Result<bool> {
        let shape = PlanShape::of(plan)?;
        Ok(shape.file_scans > 0
            && shape.executor_safe
            && (any_size || shape.file_bytes >= self.min_bytes))
    }
}

/// What the fast-path decision looks at in a single-node plan.
#[derive(Debug, Default)]
pub(crate) struct PlanShape {
    pub(crate) file_scans: usize,
    pub(crate) file_bytes: u64,
    /// Every function is one executors have.
    pub(crate) executor_safe: bool,
}

impl PlanShape {
    pub(crate) fn of(plan: &Arc<dyn ExecutionPlan>) -> Result<Self> {
        let mut shape = PlanShape {
            executor_safe: true,
            ..PlanShape::default()
        };
        plan.apply(|node| {
            if let Some(config) = node
                .downcast_ref::<DataSourceExec>()
                .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
            {
                shape.file_scans += 1;
                shape.file_bytes = shape.file_bytes.saturating_add(scan_bytes(config));
            }
            // Leaves executors can decode without Basin-specific codecs.
            // In-memory sources (a streaming table's log tail) live only on the coordinator.
            let file_scan = node.downcast_ref::<DataSourceExec>().is_some_and(|scan| {
                scan.data_source()
                    .downcast_ref::<FileScanConfig>()
                    .is_some()
            });
            if node.children().is_empty()
                && !(file_scan || node.is::<EmptyExec>() || node.is::<PlaceholderRowExec>())
            {
                shape.executor_safe = false;
            }
            node.apply_expressions(&mut |expr| {
                expr.apply(|e| {
                    if let Some(function) = e.downcast_ref::<ScalarFunctionExpr>()
                        && !EXECUTOR_FUNCTIONS.contains(function.name())
                    {
                        shape.executor_safe = false;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })?;
            Ok(if shape.executor_safe {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        })?;
        Ok(shape)
    }
}

/// The bytes a file scan reads: each file's byte range, or the whole file.
pub(crate) fn scan_bytes(config: &FileScanConfig) -> u64 {
    config
        .file_groups
        .iter()
        .flat_map(|group| group.iter())
        .map(|file| match &file.range {
            Some(range) => u64::try_from(range.end - range.start).unwrap_or(0),
            None => file.object_meta.size,
        })
        .fold(0u64, u64::saturating_add)
}
