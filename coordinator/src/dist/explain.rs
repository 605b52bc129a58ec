//! EXPLAIN for distributed plans: datafusion-distributed's stage drawing, followed by where each
//! stage's tasks run. EXPLAIN ANALYZE adds the rows, bytes exchanged and time the executors
//! report for each stage.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::session_state::SessionState;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion_distributed::{
    DistributedMetricsFormat, NetworkBoundaryExt, display_plan_ascii,
    rewrite_distributed_plan_with_metrics,
};

use super::routing::{live_workers, place};
use super::{Distribution, QueryRouting};
use crate::error::Result;

/// Stage number -> task count, for every stage below the head.
fn stages(plan: &Arc<dyn ExecutionPlan>) -> BTreeMap<usize, usize> {
    let mut stages = BTreeMap::new();
    let _ = plan.apply(|node| {
        if let Some(boundary) = node.as_network_boundary() {
            let stage = boundary.input_stage();
            stages.insert(stage.num(), stage.task_count());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    stages
}

/// Stages of a plan including the head stage; 1 for a single-node plan.
pub(crate) fn stage_count(plan: &Arc<dyn ExecutionPlan>) -> usize {
    stages(plan).len() + 1
}

/// Appends "Stage N: task i -> executor" lines for the placement `offset` gives.
fn placement(dist: &Distribution, plan: &Arc<dyn ExecutionPlan>, offset: usize, out: &mut String) {
    let workers = live_workers(dist.membership());
    if workers.is_empty() {
        return;
    }
    let _ = writeln!(out, "Task placement (stage: task -> executor):");
    let _ = writeln!(out, "  Stage 0 (head): coordinator");
    for (stage, tasks) in stages(plan) {
        let line = (0..tasks)
            .map(|task| {
                let (id, url) = &workers[place(offset, task, workers.len())];
                format!("t{task} -> {id} ({})", url.authority())
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "  Stage {stage}: {line}");
    }
}

/// The physical plan text of EXPLAIN.
pub(crate) fn explain_text(dist: &Distribution, plan: &Arc<dyn ExecutionPlan>) -> String {
    if !Distribution::is_distributed(plan) {
        return displayable(plan.as_ref()).indent(true).to_string();
    }
    let mut out = display_plan_ascii(plan.as_ref(), false);
    placement(dist, plan, dist.peek_offset(), &mut out);
    out
}

/// Runs `plan` to completion and returns it drawn with the metrics of every stage.
pub(crate) async fn explain_analyze_text(
    dist: &Distribution,
    state: &SessionState,
    plan: Arc<dyn ExecutionPlan>,
) -> Result<String> {
    if !Distribution::is_distributed(&plan) {
        collect(Arc::clone(&plan), state.task_ctx()).await?;
        return Ok(
            datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                plan.as_ref(),
            )
            .indent(true)
            .to_string(),
        );
    }
    let _admitted = dist.admit().await?;
    let routing = Arc::new(QueryRouting::new(dist.peek_offset()));
    let started = std::time::Instant::now();
    collect(Arc::clone(&plan), dist.task_context(state, &routing)?).await?;
    let elapsed = started.elapsed();
    let with_metrics = rewrite_distributed_plan_with_metrics(
        Arc::clone(&plan),
        DistributedMetricsFormat::Aggregated,
    )
    .await?;
    let mut out = display_plan_ascii(with_metrics.as_ref(), true);
    placement(dist, &plan, routing.offset, &mut out);
    let used = routing
        .used()
        .iter()
        .map(|(id, _)| id.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(out, "Executors used: {used}");
    let _ = writeln!(
        out,
        "Execution time: {:.3} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(out)
}
