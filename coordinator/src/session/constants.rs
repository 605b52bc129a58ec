//! Results of constant statements, kept per session: `SELECT 1`, `SELECT version()`,
//! `VALUES (1, 'a')` and the like, which read no table and call only immutable functions.
//!
//! Connection pools, drivers and BI tools send such statements constantly (health checks,
//! `SELECT 1` before every borrow, version probes), and planning one with DataFusion costs
//! hundreds of microseconds and two thread hand-offs for a one-row answer. The first run plans
//! and executes normally while its (small) output is recorded; later runs of the same text are
//! answered from the record on the connection's own task.
//!
//! An entry is used only while nothing it could depend on has changed: the session's settings
//! (any `SET`, `RESET` or `set_config()` bumps [`super::vars::SessionVars::generation`]: time
//! zone, search path, DataFusion options) and the catalog snapshot (catalog-reading functions
//! such as `pg_type_is_visible` are immutable within one snapshot).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use basin_catalog::model::CatalogState;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt};

/// Statements remembered per session; the table is emptied when it would grow past this.
const MAX_ENTRIES: usize = 64;
/// Results larger than this (Arrow memory) are not kept.
const MAX_BYTES: usize = 64 << 10;

struct Entry {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    catalog: Arc<CatalogState>,
    generation: u64,
}

/// What a constant result was computed under.
#[derive(Clone)]
pub(crate) struct Validity {
    pub(crate) catalog: Arc<CatalogState>,
    pub(crate) generation: u64,
}

#[derive(Default)]
pub(crate) struct ConstantResults {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl ConstantResults {
    /// The recorded result of `sql`, if it is still valid under `now`, as a fresh stream.
    pub(crate) fn get(&self, sql: &str, now: &Validity) -> Option<SendableRecordBatchStream> {
        let entry = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
            .cloned()?;
        if entry.generation != now.generation || !Arc::ptr_eq(&entry.catalog, &now.catalog) {
            return None;
        }
        let batches: Vec<DfResult<RecordBatch>> = entry.batches.iter().cloned().map(Ok).collect();
        Some(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&entry.schema),
            futures::stream::iter(batches),
        )))
    }

    /// `stream`, recording its batches: when it ends without error and under [`MAX_BYTES`], the
    /// result is kept for `sql` under `validity`.
    pub(crate) fn record(
        self: &Arc<Self>,
        sql: &str,
        validity: Validity,
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    ) -> SendableRecordBatchStream {
        Box::pin(Recording {
            inner: stream,
            kept: Some((Vec::new(), 0)),
            target: Some((Arc::clone(self), sql.to_owned(), validity, schema)),
        })
    }

    fn insert(&self, sql: String, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&sql) {
            entries.clear();
        }
        entries.insert(sql, Arc::new(entry));
    }
}

type Target = (Arc<ConstantResults>, String, Validity, SchemaRef);

struct Recording {
    inner: SendableRecordBatchStream,
    /// Batches so far and their size; `None` once the result is too large or failed.
    kept: Option<(Vec<RecordBatch>, usize)>,
    target: Option<Target>,
}

impl Stream for Recording {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(batch))) => {
                if let Some((kept, bytes)) = &mut this.kept {
                    *bytes += batch.get_array_memory_size();
                    if *bytes > MAX_BYTES {
                        this.kept = None;
                    } else {
                        kept.push(batch.clone());
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => this.kept = None,
            Poll::Ready(None) => {
                if let (Some((batches, _)), Some((results, sql, validity, schema))) =
                    (this.kept.take(), this.target.take())
                {
                    results.insert(
                        sql,
                        Entry {
                            schema,
                            batches,
                            catalog: validity.catalog,
                            generation: validity.generation,
                        },
                    );
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl RecordBatchStream for Recording {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// Whether `plan` computes the same rows every time under the same settings and catalog: no
/// table, no parameter, no subquery, no aggregate or window, only immutable functions.
pub(crate) fn is_constant(plan: &LogicalPlan) -> bool {
    let mut constant = true;
    let _ = plan.apply_with_subqueries(|node| {
        let allowed = matches!(
            node,
            LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Values(_)
                | LogicalPlan::EmptyRelation(_)
                | LogicalPlan::Union(_)
        );
        if !allowed {
            constant = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if !constant_expression(e) {
                    constant = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if constant {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    constant
}

fn constant_expression(expr: &Expr) -> bool {
    match expr {
        Expr::ScalarFunction(function) => {
            function.func.signature().volatility == Volatility::Immutable
        }
        Expr::Alias(_)
        | Expr::Column(_)
        | Expr::Literal(..)
        | Expr::BinaryExpr(_)
        | Expr::Like(_)
        | Expr::SimilarTo(_)
        | Expr::Not(_)
        | Expr::IsNotNull(_)
        | Expr::IsNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsNotUnknown(_)
        | Expr::Negative(_)
        | Expr::Between(_)
        | Expr::Case(_)
        | Expr::Cast(_)
        | Expr::TryCast(_)
        | Expr::InList(_) => true,
        // Parameters, subqueries, aggregates, windows, session variables, lambdas: not
        // constant, or not worth proving so.
        _ => false,
    }
}
