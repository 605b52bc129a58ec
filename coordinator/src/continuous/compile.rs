//! Deciding how a materialized view is maintained. The defining query's logical plan (views
//! inlined) is walked top-down:
//!
//! - **linear**: only filters, projections, `UNION ALL`, unnest and inner joins in which at
//!   most one side changes (a streaming table joined with lake tables): the view's new rows are
//!   the query run over the new input rows alone;
//! - **aggregate**: row-wise operators over one `GROUP BY` with COUNT, SUM, AVG, MIN, MAX (also
//!   DISTINCT) over a linear input: partial aggregate states of the new rows are merged into
//!   the per-group state with DataFusion's own accumulators;
//! - anything else is **full refresh**: the query re-run over the epoch's snapshot. The node
//!   that decided it is kept for `EXPLAIN MATERIALIZED VIEW`.
//!
//! Inputs that change are streaming tables and append-only (linear) materialized views; lake
//! and managed tables are read as they are when the rows arrive (a lookup join).

use std::collections::BTreeMap;
use std::sync::Arc;

use basin_catalog::model::Oid;
use basin_catalog::streams::{StreamTable, StreamTableProvider};
use basin_catalog::views::MaterializedViewProvider;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, TableScan};

/// How a view is kept current.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mode {
    /// New output rows are the query over new input rows; the view only grows.
    Linear,
    /// Per-group partial states merged as rows arrive.
    Aggregate,
    /// Re-run over the epoch's snapshot; `reason` names the part of the query that decided.
    Full { reason: String },
}

impl Mode {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Mode::Linear | Mode::Aggregate => "incremental",
            Mode::Full { .. } => "full refresh",
        }
    }

    /// What `EXPLAIN MATERIALIZED VIEW` and `basin.materialized_views` say about the mode.
    pub(crate) fn describe(&self) -> String {
        match self {
            Mode::Linear => "append-only: filters, projections, unions and joins run over the \
                             new rows only"
                .to_owned(),
            Mode::Aggregate => "grouped aggregate: partial states of the new rows are merged \
                                into the state of each group"
                .to_owned(),
            Mode::Full { reason } => reason.clone(),
        }
    }
}

/// An input of a view whose rows change.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    Stream(Arc<StreamTable>),
    View(Oid),
}

impl Input {
    pub(crate) fn oid(&self) -> Oid {
        match self {
            Input::Stream(table) => table.oid(),
            Input::View(oid) => *oid,
        }
    }
}

/// A view's query, classified.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) plan: LogicalPlan,
    pub(crate) mode: Mode,
    pub(crate) inputs: BTreeMap<Oid, Input>,
    /// A join of two changing inputs: an epoch's new rows are the sum over the inputs of the
    /// query with that input's new rows, the inputs before it as they are now and the ones
    /// after it as they were (the product rule), so a pair of rows new on both sides counts
    /// once.
    pub(crate) bilinear: bool,
    /// Set when an aggregate over `HOP` windows aggregates each row once into its pane (and
    /// `plan` is then the pane plan).
    pub(crate) panes: Option<Arc<super::panes::Panes>>,
}

/// The changing input a scan reads, if any.
fn changing_input(scan: &TableScan) -> Option<Input> {
    let provider = source_as_provider(&scan.source).ok()?;
    if let Some(stream) = provider.downcast_ref::<StreamTableProvider>() {
        return Some(Input::Stream(Arc::clone(stream.table())));
    }
    provider
        .downcast_ref::<MaterializedViewProvider>()
        .map(|view| Input::View(view.oid()))
}

/// Whether `scan` reads changing input `input`.
pub(super) fn scans_input(scan: &TableScan, input: Oid) -> bool {
    changing_input(scan).is_some_and(|i| i.oid() == input)
}

/// Classifies `plan` (analyzed, views inlined). `append_only(oid)` tells whether an input
/// materialized view only ever grows.
pub(crate) fn compile(plan: LogicalPlan, append_only: &dyn Fn(Oid) -> bool) -> Compiled {
    let mut inputs = BTreeMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(input) = changing_input(scan)
        {
            inputs.insert(input.oid(), input);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut mode = classify(&plan, &inputs, append_only);
    let bilinear = matches!(mode, Mode::Linear | Mode::Aggregate) && two_sided_join(&plan, &inputs);
    if bilinear && let Some(reason) = scanned_twice(&plan) {
        mode = Mode::Full { reason };
    }
    let (plan, panes) = match mode {
        Mode::Aggregate if !bilinear => match super::panes::rewrite(&plan) {
            Some((pane_plan, panes)) => (pane_plan, Some(Arc::new(panes))),
            None => (plan, None),
        },
        _ => (plan, None),
    };
    Compiled {
        plan,
        mode,
        inputs,
        bilinear,
        panes,
    }
}

/// Whether a join in `plan` has changing inputs on both sides.
fn two_sided_join(plan: &LogicalPlan, inputs: &BTreeMap<Oid, Input>) -> bool {
    let mut found = false;
    let _ = plan.apply(|node| {
        if let LogicalPlan::Join(join) = node
            && changes(&join.left, inputs)
            && changes(&join.right, inputs)
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// A changing input read more than once (a self-join): the product rule needs each input
/// once.
fn scanned_twice(plan: &LogicalPlan) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut twice = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(input) = changing_input(scan)
            && !seen.insert(input.oid())
        {
            twice = Some(format!(
                "self-join of changing input `{}` (each changing input may be read once when \
                 two of them are joined)",
                scan.table_name
            ));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    twice
}

fn classify(
    plan: &LogicalPlan,
    inputs: &BTreeMap<Oid, Input>,
    append_only: &dyn Fn(Oid) -> bool,
) -> Mode {
    if inputs.is_empty() {
        return Mode::Full {
            reason: "reads no streaming table or materialized view, so no rows arrive to \
                     maintain it by; it is re-run periodically"
                .to_owned(),
        };
    }
    if let Some(view) = inputs
        .values()
        .find(|i| matches!(i, Input::View(oid) if !append_only(*oid)))
    {
        return Mode::Full {
            reason: format!(
                "reads materialized view (oid {}), whose rows are updated in place rather than \
                 only appended",
                view.oid()
            ),
        };
    }
    let mut node = strip_order(plan);
    loop {
        match node {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
                if let Err(reason) = row_wise(node) {
                    return Mode::Full { reason };
                }
                node = node.inputs()[0];
            }
            LogicalPlan::Aggregate(aggregate) => {
                if let Err(reason) = mergeable(aggregate) {
                    return Mode::Full { reason };
                }
                return match linear(aggregate.input.as_ref()) {
                    Ok(()) => Mode::Aggregate,
                    Err(reason) => Mode::Full { reason },
                };
            }
            _ => break,
        }
    }
    match linear(strip_order(plan)) {
        Ok(()) => Mode::Linear,
        Err(reason) => Mode::Full { reason },
    }
}

/// The output names of the GROUP BY columns of the view's aggregation, if it has one under
/// row-wise operators.
pub(crate) fn group_names(plan: &LogicalPlan) -> Vec<String> {
    let mut node = strip_order(plan);
    loop {
        match node {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
                node = node.inputs()[0];
            }
            LogicalPlan::Aggregate(aggregate) => {
                return aggregate
                    .schema
                    .fields()
                    .iter()
                    .take(aggregate.group_expr.len())
                    .map(|f| f.name().clone())
                    .collect();
            }
            _ => return Vec::new(),
        }
    }
}

/// A view's rows have no order: a top-level `ORDER BY` without `LIMIT` is ignored.
fn strip_order(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::Sort(sort) if sort.fetch.is_none() => strip_order(&sort.input),
        other => other,
    }
}

fn describe(node: &LogicalPlan) -> String {
    node.display().to_string()
}

/// Expressions the incremental path can evaluate on new rows alone.
fn row_wise(node: &LogicalPlan) -> Result<(), String> {
    let mut problem = None;
    let _ = node.apply_expressions(|expr| {
        if let Some(why) = expression_problem(expr) {
            problem = Some(why);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match problem {
        Some(why) => Err(format!("{why} in `{}`", describe(node))),
        None => Ok(()),
    }
}

fn expression_problem(expr: &Expr) -> Option<String> {
    if expr.is_volatile() {
        return Some(format!("volatile expression {expr}"));
    }
    let mut problem = None;
    let _ = expr.apply(|e| {
        if matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
        ) {
            problem = Some("subquery".to_owned());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    problem
}

/// Whether `node`'s output for new input rows is exactly its new output rows.
fn linear(node: &LogicalPlan) -> Result<(), String> {
    match node {
        LogicalPlan::TableScan(_) | LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
            Ok(())
        }
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Unnest(_)
        | LogicalPlan::Union(_) => {
            row_wise(node)?;
            node.inputs().into_iter().try_for_each(linear)
        }
        LogicalPlan::Join(join) if join.join_type == JoinType::Inner => {
            row_wise(node)?;
            linear(&join.left)?;
            linear(&join.right)
        }
        other => Err(format!(
            "`{}` cannot be maintained from new rows alone",
            describe(other)
        )),
    }
}

/// Whether any changing input is read under `node`.
fn changes(node: &LogicalPlan, inputs: &BTreeMap<Oid, Input>) -> bool {
    let mut found = false;
    let _ = node.apply_with_subqueries(|n| {
        if let LogicalPlan::TableScan(scan) = n
            && changing_input(scan).is_some_and(|i| inputs.contains_key(&i.oid()))
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Aggregates whose partial states merge exactly when rows are only added.
fn mergeable(aggregate: &datafusion::logical_expr::Aggregate) -> Result<(), String> {
    const MERGEABLE: &[&str] = &["count", "sum", "avg", "mean", "min", "max"];
    for expr in &aggregate.group_expr {
        if matches!(expr, Expr::GroupingSet(_)) {
            return Err(format!("grouping sets `{expr}`"));
        }
        if let Some(why) = expression_problem(expr) {
            return Err(why);
        }
    }
    for expr in &aggregate.aggr_expr {
        let mut function = None;
        let _ = expr.apply(|e| {
            if let Expr::AggregateFunction(f) = e {
                function = Some(f.clone());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        let Some(function) = function else {
            return Err(format!("aggregate expression `{expr}`"));
        };
        let name = function.func.name().to_ascii_lowercase();
        if !MERGEABLE.contains(&name.as_str()) {
            return Err(format!(
                "aggregate function {name}() (incremental: count, sum, avg, min, max)"
            ));
        }
        if !function.params.order_by.is_empty() {
            return Err(format!("ordered aggregate `{expr}`"));
        }
        if let Some(why) = expression_problem(expr) {
            return Err(why);
        }
    }
    Ok(())
}

/// `plan` with every scan of a changing input replaced by `rows` of that input (a scan of an
/// input without rows reads nothing).
pub(crate) fn substitute(
    plan: &LogicalPlan,
    rows: &BTreeMap<Oid, Vec<arrow::array::RecordBatch>>,
) -> DfResult<LogicalPlan> {
    substitute_some(plan, rows, true)
}

/// Like [`substitute`]; with `all == false` only the inputs in `rows` are replaced and the
/// other scans read their tables (as the session's pinned epoch has them).
pub(crate) fn substitute_some(
    plan: &LogicalPlan,
    rows: &BTreeMap<Oid, Vec<arrow::array::RecordBatch>>,
    all: bool,
) -> DfResult<LogicalPlan> {
    plan.clone()
        .transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(input) = changing_input(scan) else {
                return Ok(Transformed::no(node));
            };
            if !all && !rows.contains_key(&input.oid()) {
                return Ok(Transformed::no(node));
            }
            let schema = scan.source.schema();
            let batches = rows.get(&input.oid()).cloned().unwrap_or_default();
            let table = MemTable::try_new(schema, vec![batches])?;
            let mut scan = scan.clone();
            scan.source = provider_as_source(Arc::new(table));
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        })
        .map(|t| t.data)
}
