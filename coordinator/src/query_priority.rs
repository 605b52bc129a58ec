//! Which queries run at interactive priority and which in the background.
//!
//! Queries run on the query runtime's threads (`query_runtime.rs`) and the operating system
//! shares the cores between them. With one class of thread, a query that keeps both cores busy
//! for minutes (a cross join, a sort of 4e8 rows) got the same share as a dashboard's 5 ms
//! aggregate, and the dashboard's p99 went up 4x. A physical plan is therefore classed before it
//! runs: small, bounded work is [`Priority::Interactive`]; work whose size is unknown or large is
//! [`Priority::Batch`] and runs on a second runtime whose threads have the lowest CPU priority
//! (nice 19: about 1/68 of an interactive thread's share when both want a core, all of the core
//! when nothing else does).
//!
//! The class looks at the plan's inputs, as PostgreSQL's and Trino's resource groups look at a
//! query's estimated cost: every leaf must be a small file scan (files of at most
//! [`SMALL_FILE_BYTES`] in all), an in-memory table with known row count of at most
//! [`SMALL_ROWS`], or a constant row; no operator may multiply rows without bound (nested
//! loop and cross joins, recursive queries, unnest); and a plan with an equi-join (which
//! multiplies rows on a low-cardinality key) must read a tenth of those limits. Anything else
//! (`generate_series`, a large table, a distributed plan) is batch. Sizes are on-disk bytes, so
//! a well-compressed file holds more rows than its size suggests. A query misclassed as
//! interactive is no worse off than before the classes existed.

use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec, SymmetricHashJoinExec,
};
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::unnest::UnnestExec;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};

/// Interactive plans read files of at most this many bytes in all.
const SMALL_FILE_BYTES: u64 = 64 << 20;
/// Interactive plans read in-memory tables of at most this many rows in all.
const SMALL_ROWS: usize = 1_000_000;
/// Statement texts longer than this are parsed and planned in the background: the texts that
/// take seconds to plan (100,000-value IN lists, 50,000-term sums, megabyte regexes) are long.
pub(crate) const SMALL_STATEMENT_BYTES: usize = 4 << 10;

/// The CPU priority class a query runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    Interactive,
    Batch,
}

impl Priority {
    /// The class of a single-node physical plan about to run.
    pub(crate) fn of_plan(plan: &Arc<dyn ExecutionPlan>) -> Self {
        let mut file_bytes = 0u64;
        let mut rows = 0usize;
        let mut bounded = true;
        let mut joins = false;
        let walked = plan.apply(|node| {
            joins |= node.is::<HashJoinExec>()
                || node.is::<SortMergeJoinExec>()
                || node.is::<SymmetricHashJoinExec>();
            if node.is::<datafusion_distributed::DistributedExec>()
                || node.is::<NestedLoopJoinExec>()
                || node.is::<CrossJoinExec>()
                || node.is::<RecursiveQueryExec>()
                || node.is::<UnnestExec>()
            {
                bounded = false;
            } else if node.children().is_empty() {
                match leaf_size(node.as_ref()) {
                    Some(Size::Bytes(bytes)) => file_bytes = file_bytes.saturating_add(bytes),
                    Some(Size::Rows(n)) => rows = rows.saturating_add(n),
                    None => bounded = false,
                }
            }
            Ok(if bounded {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        });
        let (max_bytes, max_rows) = if joins {
            (SMALL_FILE_BYTES / 10, SMALL_ROWS / 10)
        } else {
            (SMALL_FILE_BYTES, SMALL_ROWS)
        };
        if walked.is_ok() && bounded && file_bytes <= max_bytes && rows <= max_rows {
            Self::Interactive
        } else {
            Self::Batch
        }
    }

    /// The class a statement of `text_len` bytes is parsed and planned in.
    pub(crate) fn of_statement(text_len: usize) -> Self {
        if text_len <= SMALL_STATEMENT_BYTES {
            Self::Interactive
        } else {
            Self::Batch
        }
    }
}

enum Size {
    Bytes(u64),
    Rows(usize),
}

/// How much a leaf reads, if that is known before it runs.
fn leaf_size(leaf: &dyn ExecutionPlan) -> Option<Size> {
    if leaf.is::<EmptyExec>() || leaf.is::<PlaceholderRowExec>() {
        return Some(Size::Rows(1));
    }
    if let Some(files) = leaf
        .downcast_ref::<DataSourceExec>()
        .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
    {
        return Some(Size::Bytes(crate::dist::planner::scan_bytes(files)));
    }
    // In-memory tables (the catalog's, a streaming table's tail) know their row counts.
    let stats = StatisticsContext::new()
        .compute(leaf, &StatisticsArgs::new())
        .ok()?;
    match stats.num_rows {
        Precision::Exact(n) | Precision::Inexact(n) => Some(Size::Rows(n)),
        Precision::Absent => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn priority_of(sql: &str) -> Priority {
        let ctx = SessionContext::new();
        for ddl in [
            "CREATE TABLE small AS VALUES (1, 'a'), (2, 'b')",
            "CREATE TABLE big AS SELECT value AS v FROM generate_series(1, 200000)",
        ] {
            ctx.sql(ddl)
                .await
                .expect("create")
                .collect()
                .await
                .expect("run");
        }
        let plan = ctx
            .sql(sql)
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        Priority::of_plan(&plan)
    }

    #[tokio::test]
    async fn small_bounded_queries_are_interactive() {
        for sql in [
            "SELECT 1",
            "SELECT column1, count(*) FROM small GROUP BY column1",
            "SELECT * FROM small a JOIN small b ON a.column1 = b.column1",
            "SELECT v % 10, count(*) FROM big GROUP BY 1",
        ] {
            assert_eq!(priority_of(sql).await, Priority::Interactive, "{sql}");
        }
    }

    #[tokio::test]
    async fn unbounded_or_unknown_work_is_batch() {
        for sql in [
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            "SELECT * FROM small a, small b",
            "SELECT * FROM small a JOIN small b ON a.column1 < b.column1",
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT * FROM t",
            "SELECT unnest(make_array(1, 2, 3))",
            "SELECT * FROM big a JOIN big b ON a.v % 3 = b.v % 3",
        ] {
            assert_eq!(priority_of(sql).await, Priority::Batch, "{sql}");
        }
    }

    #[test]
    fn long_statements_plan_in_the_background() {
        assert_eq!(Priority::of_statement(100), Priority::Interactive);
        assert_eq!(
            Priority::of_statement(SMALL_STATEMENT_BYTES + 1),
            Priority::Batch
        );
    }
}
