//! Keeps DataFusion 55's physical filter pushdown away from plans where it can pick the wrong
//! column.
//!
//! DataFusion 55.2 moves a filter from an operator into its input by looking the filter's
//! columns up *by name* in the input's schema (`ProjectionExec`'s reverse alias map,
//! `FilterRemapper`, the join, aggregate and pass-through operators). When that schema has two
//! columns of the same name (`a.id` and `b.id` once a join drops the qualifiers) the lookup
//! finds the first, and the filter lands on the wrong column. Rows go missing without an error:
//!
//! * a static `WHERE` over an outer join's nullable side, pushed through the projection above
//!   the join (apache/datafusion#21246; Basin's oracle found it, `sql-tests/slt/oracle/
//!   filter_pushdown_duplicate_names.slt`);
//! * a TopK (`ORDER BY ... LIMIT`) dynamic filter (#25296);
//! * a hash join's dynamic filter through a projection, filter or aggregate (#25262-#25264).
//!
//! Upstream fixed it by mapping columns by position (#25259), after 55.2. Until Basin is on a
//! release with that fix, [`guard`] wraps both phases of `FilterPushdown`: a plan in which some
//! operator with duplicate output names sits below an operator that may push filters into its
//! input is left as it is, so its filters run where the query put them. Plans without such a
//! schema (most queries: of TPC-H's 22 only q7 has one) are optimised as before; docs/benchmarks.md
//! measures the cost ("What the filter-pushdown guard costs").

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;

/// The names DataFusion 55 gives its two `FilterPushdown` rules (pre- and post-optimisation).
const FILTER_PUSHDOWN_RULES: [&str; 2] = ["FilterPushdown", "FilterPushdown(Post)"];

/// `rules` with every `FilterPushdown` rule wrapped in [`GuardedFilterPushdown`].
pub fn guard(
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    rules
        .into_iter()
        .map(|rule| {
            if FILTER_PUSHDOWN_RULES.contains(&rule.name()) {
                Arc::new(GuardedFilterPushdown { inner: rule }) as _
            } else {
                rule
            }
        })
        .collect()
}

/// DataFusion's default physical optimizer rules, guarded.
pub fn default_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    guard(datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules)
}

/// A `FilterPushdown` rule that does nothing to plans [`mispushes`] flags.
#[derive(Debug)]
pub struct GuardedFilterPushdown {
    inner: Arc<dyn PhysicalOptimizerRule + Send + Sync>,
}

impl PhysicalOptimizerRule for GuardedFilterPushdown {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if mispushes(&plan) {
            tracing::debug!(
                rule = self.inner.name(),
                "filter pushdown skipped: duplicate column names below a filter"
            );
            return Ok(plan);
        }
        self.inner.optimize(plan, config)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn schema_check(&self) -> bool {
        self.inner.schema_check()
    }
}

/// Whether some operator whose output has two columns of one name sits below an operator that
/// may push a filter into its input: a `FilterExec`, a TopK sort, a join, an aggregate, or any
/// operator not known to pass filters through untouched. The operators on the way down from the
/// root that only move, merge or trim rows, or rename columns, push nothing of their own, so a
/// final projection naming `a.id` and `b.id` is no hazard.
pub fn mispushes(plan: &Arc<dyn ExecutionPlan>) -> bool {
    fn walk(plan: &Arc<dyn ExecutionPlan>, filter_above: bool) -> bool {
        if filter_above && has_duplicate_names(plan) {
            return true;
        }
        let filter_below = filter_above || !pushes_nothing(plan);
        plan.children()
            .into_iter()
            .any(|child| walk(child, filter_below))
    }
    walk(plan, false)
}

fn pushes_nothing(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if let Some(sort) = plan.downcast_ref::<SortExec>() {
        // A sort with a limit (TopK) pushes its dynamic filter; a full sort pushes nothing.
        return sort.fetch().is_none();
    }
    plan.is::<ProjectionExec>()
        || plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortPreservingMergeExec>()
        || plan.is::<GlobalLimitExec>()
        || plan.is::<LocalLimitExec>()
}

fn has_duplicate_names(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let schema = plan.schema();
    let mut seen = HashSet::with_capacity(schema.fields().len());
    schema
        .fields()
        .iter()
        .any(|field| !seen.insert(field.name().as_str()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::mispushes;

    async fn physical_plan(sql: &str) -> Arc<dyn datafusion::physical_plan::ExecutionPlan> {
        let context = SessionContext::new();
        for (table, columns) in [("a", ["id", "ty"]), ("b", ["id", "v"]), ("c", ["k", "w"])] {
            let schema = Arc::new(Schema::new(
                columns
                    .iter()
                    .map(|name| Field::new(*name, DataType::Int32, true))
                    .collect::<Vec<_>>(),
            ));
            let empty = MemTable::try_new(schema, vec![vec![]]).expect("table");
            context
                .register_table(table, Arc::new(empty))
                .expect("register");
        }
        let frame = context.sql(sql).await.expect("plan");
        frame.create_physical_plan().await.expect("physical plan")
    }

    #[tokio::test]
    async fn flags_duplicate_names_below_a_filter_source_only() {
        // Two `id` columns feed the outer join: a filter pushed into them may pick either.
        let nested = "SELECT s.k FROM c s JOIN (SELECT a.id, b.id FROM a JOIN b ON a.ty = b.v \
                      GROUP BY a.id, b.id) AS d ON s.k = d.id";
        assert!(mispushes(&physical_plan(nested).await));
        // A WHERE over an outer join whose inputs share a name.
        let outer = "SELECT * FROM a RIGHT JOIN b ON a.ty = b.v WHERE a.id IS NULL";
        assert!(mispushes(&physical_plan(outer).await));
        // Distinct names everywhere: pushdown stays on.
        let distinct = "SELECT a.id, c.w FROM a JOIN c ON a.ty = c.k WHERE c.w > 3 \
                        ORDER BY c.w LIMIT 5";
        assert!(!mispushes(&physical_plan(distinct).await));
        // Duplicate names only in what the query returns: nothing pushes a filter into them.
        let output_only = "SELECT a.id, b.id FROM a JOIN b ON a.ty = b.v";
        assert!(!mispushes(&physical_plan(output_only).await));
    }
}
