//! Cancellation that reaches inside DataFusion's synchronous work.
//!
//! Planning runs on a thread of its own (the coordinator's `query_runtime::off_server`), and
//! dropping the statement's future stops it only at its next `.await`. Constant folding never
//! awaits: `string_to_array(repeat('a,', 300000000), ',')` in a `SELECT` list is evaluated by the
//! optimizer, once per optimizer pass, long after the client got 57014 — minutes of a core and
//! gigabytes of memory that nobody will read (the adversarial suite's `string_to_array bomb`,
//! measured in a debug build). The thread that runs such work is marked with a flag; the
//! functions Basin wraps ([`crate::bounded_functions`]) check it before they start and while
//! they measure their input, and every optimizer rule of the shared session builder checks it
//! before it runs ([`cancellable_optimizer_rules`], [`cancellable_physical_rules`]), so the work
//! ends at the next such call. (A folded 600 MB literal left inside an expression that failed to
//! fold is formatted into a column name by every rule that names expressions: without the rule
//! checks the planning went on for minutes after the client's timeout.)

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::common::tree_node::Transformed;
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::optimizer::{ApplyOrder, Optimizer};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_optimizer::{PhysicalOptimizerContext, PhysicalOptimizerRule};
use datafusion::physical_plan::ExecutionPlan;

thread_local! {
    static CANCELLED: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `work` on this thread with `cancelled` as the flag [`check`] reads.
pub fn run_cancellable<R>(cancelled: Arc<AtomicBool>, work: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CANCELLED.with(|flag| *flag.borrow_mut() = previous);
        }
    }
    let previous = CANCELLED.with(|flag| flag.borrow_mut().replace(cancelled));
    let _restore = Restore(previous);
    work()
}

/// Whether the work running on this thread was cancelled (never, outside [`run_cancellable`]).
pub fn is_cancelled() -> bool {
    CANCELLED.with(|flag| {
        flag.borrow()
            .as_ref()
            .is_some_and(|cancelled| cancelled.load(Ordering::Relaxed))
    })
}

/// An error once the work running on this thread was cancelled. The text holds "canceled", which
/// the coordinator reports as 57014.
pub fn check() -> Result<()> {
    if is_cancelled() {
        return Err(DataFusionError::Execution(
            "the statement was canceled while it ran".to_owned(),
        ));
    }
    Ok(())
}

/// DataFusion's logical optimizer rules, each checking [`check`] before it runs.
pub fn cancellable_optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    Optimizer::new()
        .rules
        .into_iter()
        .map(|inner| Arc::new(Cancellable(inner)) as _)
        .collect()
}

/// `rules`, each checking [`check`] before it runs.
pub fn cancellable_physical_rules(
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    rules
        .into_iter()
        .map(|inner| Arc::new(Cancellable(inner)) as _)
        .collect()
}

/// An optimizer rule that first checks whether its statement was cancelled.
#[derive(Debug)]
struct Cancellable<R: ?Sized>(Arc<R>);

impl OptimizerRule for Cancellable<dyn OptimizerRule + Send + Sync> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        self.0.apply_order()
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        check()?;
        self.0.rewrite(plan, config)
    }
}

impl PhysicalOptimizerRule for Cancellable<dyn PhysicalOptimizerRule + Send + Sync> {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        check()?;
        self.0.optimize(plan, config)
    }

    /// Passed through whole: some rules (join selection) read more than the options from it.
    fn optimize_with_context(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        context: &dyn PhysicalOptimizerContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        check()?;
        self.0.optimize_with_context(plan, context)
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    fn schema_check(&self) -> bool {
        self.0.schema_check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_seen_only_inside_its_scope() {
        let flag = Arc::new(AtomicBool::new(false));
        assert!(check().is_ok());
        run_cancellable(Arc::clone(&flag), || {
            assert!(check().is_ok());
            flag.store(true, Ordering::Relaxed);
            let inner = Arc::new(AtomicBool::new(false));
            run_cancellable(inner, || assert!(check().is_ok()));
            assert!(check().is_err_and(|e| e.to_string().contains("canceled")));
        });
        assert!(check().is_ok());
    }
}
