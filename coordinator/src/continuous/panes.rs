//! `HOP` windows aggregated by slide-sized panes.
//!
//! `HOP(t, ts, slide, size)` is rewritten (`statements/windows.rs`) into a derived table that
//! repeats every row once per window holding it: `size / slide` copies. An incremental
//! aggregate does not need the copies: it aggregates each row once, into the *pane* it falls in
//! (`date_bin(slide, ts)`, a window of width `slide`), and then copies each pane's partial state
//! into the `size / slide` windows that contain the pane (window `w` holds panes `w`,
//! `w + slide`, ..., `w + size - slide`). The stored window states then merge the panes'
//! states with DataFusion's own accumulators. Copying partial states instead of rows saves the
//! work of every aggregate over the copies; with several rows per group and pane per epoch it
//! also copies less.
//!
//! Only views whose window columns flow untouched from the `HOP` table to the `GROUP BY` use
//! panes: a filter, an expression or an aggregate argument over `window_start`/`window_end`
//! would see pane bounds instead of window bounds.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{Alias, Cast, TryCast};
use datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlan, Operator, Projection, SubqueryAlias,
};

/// The name `statements/windows.rs` gives the derived table that repeats each row per window.
const HOP_ALIAS: &str = "basin_hop";
const WINDOW_START: &str = "window_start";
const WINDOW_END: &str = "window_end";

/// How an aggregate view's pane states become window states.
#[derive(Debug)]
pub(crate) struct Panes {
    /// Pane width in nanoseconds.
    slide_nanos: i64,
    /// Windows per pane (`size / slide`).
    windows: usize,
    /// Positions of `window_start` and `window_end` among the aggregation's group columns
    /// (which lead its partial states).
    start: Option<usize>,
    end: Option<usize>,
}

impl Panes {
    /// What `EXPLAIN MATERIALIZED VIEW` says.
    pub(crate) fn describe(&self) -> String {
        format!(
            "HOP by panes: each row is aggregated once into its {} pane, and each pane's \
             partial state is merged into the {} windows holding it",
            describe_nanos(self.slide_nanos),
            self.windows
        )
    }

    /// `states` (partial states grouped by pane) as partial states grouped by window: each
    /// row once per window holding its pane, window bounds moved back by 0, 1, ... slides.
    pub(crate) fn expand(&self, states: Vec<RecordBatch>) -> DfResult<Vec<RecordBatch>> {
        let mut out = Vec::with_capacity(states.len() * self.windows);
        for batch in states {
            if batch.num_rows() == 0 {
                continue;
            }
            for back in 1..self.windows {
                let shift = self.slide_nanos * back as i64;
                let mut columns = batch.columns().to_vec();
                for position in [self.start, self.end].into_iter().flatten() {
                    columns[position] = moved_back(&columns[position], shift)?;
                }
                out.push(RecordBatch::try_new(batch.schema(), columns)?);
            }
            out.push(batch);
        }
        Ok(out)
    }
}

fn describe_nanos(nanos: i64) -> String {
    if nanos % 1_000_000_000 == 0 {
        format!("{}-second", nanos / 1_000_000_000)
    } else {
        format!("{} ms", nanos as f64 / 1e6)
    }
}

/// Nanoseconds in one unit of a timestamp column.
fn unit_nanos(data_type: &DataType) -> Option<i64> {
    match data_type {
        DataType::Timestamp(TimeUnit::Second, _) => Some(1_000_000_000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(1_000_000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(1_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(1),
        _ => None,
    }
}

/// Timestamps `column` moved `nanos` earlier (the type was checked when the panes were set up).
fn moved_back(column: &ArrayRef, nanos: i64) -> DfResult<ArrayRef> {
    let unit = unit_nanos(column.data_type()).ok_or_else(|| {
        datafusion::error::DataFusionError::Internal(format!(
            "window bound of type {} is not a timestamp",
            column.data_type()
        ))
    })?;
    let ticks = nanos / unit;
    let values = cast(column, &DataType::Int64)?;
    let moved = values
        .as_primitive::<Int64Type>()
        .try_unary::<_, Int64Type, _>(|value| {
            value.checked_sub(ticks).ok_or_else(|| {
                arrow::error::ArrowError::ComputeError("window start out of range".into())
            })
        })?;
    Ok(cast(&moved, column.data_type())?)
}

/// The view's plan with its `HOP` rows counted once per pane, and how to turn pane states into
/// window states; `None` when the view does not qualify (it then aggregates the repeated rows).
pub(crate) fn rewrite(plan: &LogicalPlan) -> Option<(LogicalPlan, Panes)> {
    let mut hops = 0;
    let _ = plan.apply_with_subqueries(|node| {
        if is_hop_alias(node) {
            hops += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if hops != 1 {
        return None;
    }
    let aggregate = top_aggregate(plan)?;
    let (start, end) = window_groups(aggregate)?;
    if aggregate
        .aggr_expr
        .iter()
        .any(|e| e.column_refs().iter().any(|c| is_window_column(c)))
    {
        return None;
    }
    let size = window_size_above_hop(&aggregate.input)?;
    let hop = find_hop(plan)?;
    let (pane_input, slide) = pane_input(hop)?;
    if slide <= 0 || size <= 0 || size % slide != 0 {
        return None;
    }
    // Window bounds must move by whole ticks of their type.
    let schema = aggregate.schema.as_arrow();
    for position in [start, end].into_iter().flatten() {
        let unit = unit_nanos(schema.field(position).data_type())?;
        if slide % unit != 0 {
            return None;
        }
    }
    let pane_plan = plan
        .clone()
        .transform_up_with_subqueries(|node| {
            if is_hop_alias(&node) {
                let alias = SubqueryAlias::try_new(Arc::new(pane_input.clone()), HOP_ALIAS)?;
                return Ok(Transformed::yes(LogicalPlan::SubqueryAlias(alias)));
            }
            Ok(Transformed::no(node))
        })
        .ok()?
        .data;
    let windows = usize::try_from(size / slide).ok()?;
    Some((
        pane_plan,
        Panes {
            slide_nanos: slide,
            windows,
            start,
            end,
        },
    ))
}

fn is_hop_alias(node: &LogicalPlan) -> bool {
    matches!(node, LogicalPlan::SubqueryAlias(alias) if alias.alias.table() == HOP_ALIAS)
}

fn is_window_column(column: &Column) -> bool {
    column.name == WINDOW_START || column.name == WINDOW_END
}

fn references_window(expr: &Expr) -> bool {
    expr.column_refs().iter().any(|c| is_window_column(c))
}

/// The view's aggregation, under row-wise operators only (as `compile` requires of an
/// aggregate view).
fn top_aggregate(plan: &LogicalPlan) -> Option<&datafusion::logical_expr::Aggregate> {
    match plan {
        // A filter above the aggregation (HAVING) may be pushed below it, where the window
        // columns are panes: such views keep the repeated rows.
        LogicalPlan::Sort(_) | LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => {
            top_aggregate(plan.inputs().first()?)
        }
        LogicalPlan::Aggregate(aggregate) => Some(aggregate),
        _ => None,
    }
}

/// Where `window_start` and `window_end` are among the group columns: each at most once and
/// only as a plain column; at least one of them.
fn window_groups(
    aggregate: &datafusion::logical_expr::Aggregate,
) -> Option<(Option<usize>, Option<usize>)> {
    let (mut start, mut end) = (None, None);
    for (position, expr) in aggregate.group_expr.iter().enumerate() {
        match expr {
            Expr::Column(column) if column.name == WINDOW_START && start.is_none() => {
                start = Some(position);
            }
            Expr::Column(column) if column.name == WINDOW_END && end.is_none() => {
                end = Some(position);
            }
            other if references_window(other) => return None,
            // Constant or derived group keys may be eliminated by the optimizer, which would
            // move the window columns among the physical state columns.
            Expr::Column(_) => {}
            _ => return None,
        }
    }
    let distinct: std::collections::HashSet<&Expr> = aggregate.group_expr.iter().collect();
    (distinct.len() == aggregate.group_expr.len() && (start.is_some() || end.is_some()))
        .then_some((start, end))
}

/// Walks from the aggregation's input down to the `HOP` table, checking that the window
/// columns pass untouched; returns the window size (nanoseconds) from the projection that
/// adds `window_end`.
fn window_size_above_hop(node: &LogicalPlan) -> Option<i64> {
    match node {
        LogicalPlan::Projection(projection) => {
            if let LogicalPlan::SubqueryAlias(alias) = projection.input.as_ref()
                && alias.alias.table() == HOP_ALIAS
            {
                return projection.expr.iter().find_map(window_end_size);
            }
            let renamed = |e: &Expr| {
                let name = e.schema_name().to_string();
                (name == WINDOW_START || name == WINDOW_END)
                    && !matches!(e, Expr::Column(c) if c.name == name)
            };
            if projection
                .expr
                .iter()
                .any(|e| (references_window(e) && !matches!(e, Expr::Column(_))) || renamed(e))
            {
                return None;
            }
            window_size_above_hop(&projection.input)
        }
        LogicalPlan::Filter(filter) => {
            if references_window(&filter.predicate) {
                return None;
            }
            window_size_above_hop(&filter.input)
        }
        LogicalPlan::SubqueryAlias(alias) => window_size_above_hop(&alias.input),
        _ => None,
    }
}

/// `window_start + size AS window_end`: the size in nanoseconds.
fn window_end_size(expr: &Expr) -> Option<i64> {
    let Expr::Alias(Alias { expr, name, .. }) = expr else {
        return None;
    };
    if name != WINDOW_END {
        return None;
    }
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Plus,
        right,
    }) = peel(expr)
    else {
        return None;
    };
    matches!(peel(left), Expr::Column(c) if c.name == WINDOW_START)
        .then(|| interval_nanos(right))
        .flatten()
}

fn find_hop(plan: &LogicalPlan) -> Option<&SubqueryAlias> {
    if let LogicalPlan::SubqueryAlias(alias) = plan
        && alias.alias.table() == HOP_ALIAS
    {
        return Some(alias);
    }
    plan.inputs().into_iter().find_map(find_hop)
}

/// The `HOP` table's input rebuilt without the repetition: the table's rows, each with
/// `window_start` set to its pane, `date_bin(slide, ts)`, in the type the repeated rows had.
/// Also returns the slide in nanoseconds.
fn pane_input(hop: &SubqueryAlias) -> Option<(LogicalPlan, i64)> {
    let repeated = hop.input.as_ref();
    let unnest = find_unnest(repeated)?;
    let LogicalPlan::Projection(ranges) = unnest.input.as_ref() else {
        return None;
    };
    let (pane, slide) = ranges.expr.iter().find_map(pane_of_range)?;
    let rows = Arc::clone(&ranges.input);
    let rows_schema = rows.schema();
    let mut exprs = Vec::new();
    for (qualifier, field) in repeated.schema().iter() {
        if field.name() == WINDOW_START {
            exprs.push(
                Expr::Cast(Cast::new(Box::new(pane.clone()), field.data_type().clone()))
                    .alias(WINDOW_START),
            );
        } else {
            let column = Column::new(qualifier.cloned(), field.name());
            if !rows_schema.has_column(&column) {
                return None;
            }
            exprs.push(Expr::Column(column));
        }
    }
    // A NULL time has no window (unnest drops its NULL range), so it has no pane either.
    let rows = Arc::new(LogicalPlan::Filter(
        datafusion::logical_expr::Filter::try_new(pane.clone().is_not_null(), rows).ok()?,
    ));
    let projection = Projection::try_new(exprs, rows).ok()?;
    let plan = LogicalPlan::Projection(projection);
    // The parents keep their schemas: the pane rows must look exactly like the repeated ones.
    let same = plan.schema().fields().len() == repeated.schema().fields().len()
        && plan
            .schema()
            .fields()
            .iter()
            .zip(repeated.schema().fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    same.then_some((plan, slide))
}

fn find_unnest(plan: &LogicalPlan) -> Option<&datafusion::logical_expr::Unnest> {
    match plan {
        LogicalPlan::Unnest(unnest) => Some(unnest),
        other => other.inputs().into_iter().find_map(find_unnest),
    }
}

/// From `range(date_bin(slide, ts) - (size - slide), date_bin(slide, ts) + slide, slide)`:
/// the pane expression `date_bin(slide, ts)` and the slide in nanoseconds.
fn pane_of_range(expr: &Expr) -> Option<(Expr, i64)> {
    let Expr::ScalarFunction(function) = peel(expr) else {
        return None;
    };
    if function.func.name() != "range" || function.args.len() != 3 {
        return None;
    }
    let slide = interval_nanos(&function.args[2])?;
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Plus,
        right,
    }) = peel(&function.args[1])
    else {
        return None;
    };
    if interval_nanos(right)? != slide {
        return None;
    }
    let pane = peel(left);
    match pane {
        Expr::ScalarFunction(f) if f.func.name() == "date_bin" => Some((pane.clone(), slide)),
        _ => None,
    }
}

/// `expr` without the casts and aliases type coercion wraps around it.
fn peel(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(Alias { expr, .. })
        | Expr::Cast(Cast { expr, .. })
        | Expr::TryCast(TryCast { expr, .. }) => peel(expr),
        other => other,
    }
}

/// A literal interval without months, in nanoseconds.
fn interval_nanos(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = peel(expr) else {
        return None;
    };
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => i64::from(v.days)
            .checked_mul(86_400_000_000_000)?
            .checked_add(v.nanoseconds),
        ScalarValue::IntervalDayTime(Some(v)) => i64::from(v.days)
            .checked_mul(86_400_000_000_000)?
            .checked_add(i64::from(v.milliseconds) * 1_000_000),
        ScalarValue::DurationNanosecond(Some(v)) => Some(*v),
        ScalarValue::DurationMicrosecond(Some(v)) => v.checked_mul(1_000),
        ScalarValue::DurationMillisecond(Some(v)) => v.checked_mul(1_000_000),
        ScalarValue::DurationSecond(Some(v)) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    const HOP_SQL: &str = "SELECT device, window_start, window_end, count(*) AS c, avg(temp) AS a \
        FROM (SELECT *, window_start + INTERVAL '2 minutes' AS window_end FROM (SELECT *, \
        unnest(range(date_bin(INTERVAL '30 seconds', ts) - (INTERVAL '2 minutes' - INTERVAL \
        '30 seconds'), date_bin(INTERVAL '30 seconds', ts) + INTERVAL '30 seconds', INTERVAL \
        '30 seconds')) AS window_start FROM ev) AS basin_hop) AS ev \
        GROUP BY device, window_start, window_end";

    fn context() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("device", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("temp", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "a", "b"])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![10_000_000, 70_000_000, 40_000_000])
                        .with_timezone("UTC"),
                ),
                Arc::new(Float64Array::from(vec![1.0, 3.0, 5.0])),
            ],
        )
        .expect("batch");
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("table");
        ctx.register_table("ev", Arc::new(table)).expect("register");
        ctx
    }

    async fn analyzed(ctx: &SessionContext, sql: &str) -> LogicalPlan {
        let state = ctx.state();
        let plan = state.create_logical_plan(sql).await.expect("plan");
        state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .expect("analyze")
    }

    async fn rows(ctx: &SessionContext, plan: LogicalPlan) -> Vec<RecordBatch> {
        ctx.execute_logical_plan(plan)
            .await
            .expect("execute")
            .collect()
            .await
            .expect("collect")
    }

    #[tokio::test]
    async fn hop_aggregates_by_panes_with_the_repeated_rows_schema() {
        let ctx = context();
        let plan = analyzed(&ctx, HOP_SQL).await;
        let (pane_plan, panes) = rewrite(&plan).expect("a HOP aggregate uses panes");
        assert_eq!(panes.windows, 4);
        assert_eq!(panes.slide_nanos, 30_000_000_000);
        assert_eq!((panes.start, panes.end), (Some(1), Some(2)));
        assert_eq!(pane_plan.schema(), plan.schema());
        // Aggregated by pane, each row lands in one group only.
        let by_pane: usize = rows(&ctx, pane_plan)
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(by_pane, 3);
        let by_window: usize = rows(&ctx, plan).await.iter().map(|b| b.num_rows()).sum();
        assert_eq!(by_window, 10);
    }

    #[tokio::test]
    async fn window_bounds_used_below_the_aggregate_keep_the_repeated_rows() {
        let ctx = context();
        let filtered = HOP_SQL.replace(
            "AS ev GROUP BY",
            "AS ev WHERE window_start > TIMESTAMP '2000-01-01' GROUP BY",
        );
        assert!(rewrite(&analyzed(&ctx, &filtered).await).is_none());
        let argument = HOP_SQL.replace("avg(temp)", "max(window_start)");
        assert!(rewrite(&analyzed(&ctx, &argument).await).is_none());
        let having = format!("{HOP_SQL} HAVING window_start > TIMESTAMP '2000-01-01'");
        assert!(rewrite(&analyzed(&ctx, &having).await).is_none());
        let constant = HOP_SQL.replace("GROUP BY device,", "GROUP BY 'eu', device,");
        assert!(rewrite(&analyzed(&ctx, &constant).await).is_none());
    }
}
