//! Bounds an epoch's join by its new rows. A join of the new rows of input `D` with another
//! input `O` on `O.t >= D.start AND O.t < D.end` can only match rows of `O` with
//! `t >= min(start)` and `t < max(end)` over the new rows. Those bounds go in as literal
//! filters above `O`, the optimizer pushes them into `O`'s scan, and lake files, row groups
//! and log batches outside the range are skipped: a closed window joined with its stream
//! reads the window's rows, not the whole stream (windowed stream–stream joins pruned by
//! the watermark).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use basin_catalog::model::Oid;
use basin_catalog::value_range::{greatest, least};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Filter, GroupingSet, JoinType, LogicalPlan, Operator, lit,
};

use super::compile::scans_input;

/// `plan` with every inner join between input `input` and another side filtered by the
/// bounds `rows` (the input's new rows) put on that other side's range conditions.
pub(super) fn bound_by_new_rows(
    plan: &LogicalPlan,
    input: Oid,
    rows: &[RecordBatch],
) -> DfResult<LogicalPlan> {
    plan.clone()
        .transform_up(|node| {
            let LogicalPlan::Join(join) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(condition) = &join.filter else {
                return Ok(Transformed::no(node));
            };
            if join.join_type != JoinType::Inner {
                return Ok(Transformed::no(node));
            }
            let (left, right) = (reads(&join.left, input), reads(&join.right, input));
            if left == right {
                return Ok(Transformed::no(node));
            }
            let (new, other) = if left {
                (&join.left, &join.right)
            } else {
                (&join.right, &join.left)
            };
            let bounds: Vec<Expr> = split_conjunction(condition)
                .into_iter()
                .filter_map(|conjunct| bound(conjunct, &join.schema, new, other, input, rows))
                .collect();
            let Some(predicate) = bounds.into_iter().reduce(Expr::and) else {
                return Ok(Transformed::no(node));
            };
            let filtered = Arc::new(LogicalPlan::Filter(Filter::try_new(
                predicate,
                Arc::clone(other),
            )?));
            let mut join = join.clone();
            if left {
                join.right = filtered;
            } else {
                join.left = filtered;
            }
            Ok(Transformed::yes(LogicalPlan::Join(join)))
        })
        .map(|t| t.data)
}

/// The literal bound one conjunct puts on `other`: `o >= n` and `o > n` bound `o` from below
/// by the least `n`, `o <= n` and `o < n` from above by the greatest (`n >= o` and the like
/// flipped first). Nothing for other conjuncts, or when `n` is not one of the input's columns.
/// Either side may be a cast of its column between timestamp units (the type coercion's
/// `CAST(ts AS Timestamp(ns))` against a window's bounds): the bound is then in `o`'s own
/// unit, rounded outwards and inclusive, so it never excludes a row the condition keeps.
fn bound(
    conjunct: &Expr,
    schema: &DFSchema,
    new: &LogicalPlan,
    other: &LogicalPlan,
    input: Oid,
    rows: &[RecordBatch],
) -> Option<Expr> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conjunct else {
        return None;
    };
    let (a, b) = (
        column_under_cast(left, schema)?,
        column_under_cast(right, schema)?,
    );
    let (o, n, op) = if other.schema().has_column(a) && new.schema().has_column(b) {
        (a, b, *op)
    } else if other.schema().has_column(b) && new.schema().has_column(a) {
        (b, a, op.swap()?)
    } else {
        return None;
    };
    let lower = match op {
        Operator::GtEq | Operator::Gt => true,
        Operator::LtEq | Operator::Lt => false,
        _ => return None,
    };
    let name = trace(new, n, input)?;
    let values = column_of(rows, &name)?;
    let limit = if lower {
        least(&values)
    } else {
        greatest(&values)
    }
    .ok()?;
    let (_, field) = other.schema().qualified_field_from_column(o).ok()?;
    if limit.is_null() {
        return None;
    }
    let (limit, op) = if &limit.data_type() == field.data_type() {
        // Floats are left alone: NaN sorts above every number in comparisons, not in min/max.
        if limit.data_type().is_floating() {
            return None;
        }
        (limit, op)
    } else {
        let limit = timestamp_in_unit(&limit, field.data_type(), lower)?;
        (
            limit,
            if lower {
                Operator::GtEq
            } else {
                Operator::LtEq
            },
        )
    };
    Some(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(Expr::Column(o.clone())),
        op,
        Box::new(lit(limit)),
    )))
}

/// The column `expr` is, or casts between timestamp units (same time zone: a cast from a
/// zone-less timestamp to one with a zone shifts the values by the zone's offset).
fn column_under_cast<'a>(expr: &'a Expr, schema: &DFSchema) -> Option<&'a Column> {
    let (inner, to) = match expr {
        Expr::Column(column) => return Some(column),
        Expr::Cast(cast) => (&cast.expr, cast.field.data_type()),
        Expr::TryCast(cast) => (&cast.expr, cast.field.data_type()),
        _ => return None,
    };
    // Only to a unit at least as fine: those casts are exact. A coarser one truncates
    // (`CAST(ts AS TIMESTAMP(0))`), and a bound on the column's own values would drop rows
    // the truncated comparison keeps.
    let from = inner.get_type(schema).ok()?;
    match (&from, to) {
        (DataType::Timestamp(from_unit, from_zone), DataType::Timestamp(to_unit, to_zone))
            if from_zone == to_zone && per_second(to_unit) >= per_second(from_unit) =>
        {
            column_under_cast(inner, schema)
        }
        _ => None,
    }
}

fn per_second(unit: &TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// Timestamp `value` in the unit of timestamp type `to`, rounded down (`lower`) or up.
fn timestamp_in_unit(value: &ScalarValue, to: &DataType, lower: bool) -> Option<ScalarValue> {
    let DataType::Timestamp(to_unit, to_zone) = to else {
        return None;
    };
    let (raw, from_unit) = match value {
        ScalarValue::TimestampSecond(Some(v), _) => (*v, TimeUnit::Second),
        ScalarValue::TimestampMillisecond(Some(v), _) => (*v, TimeUnit::Millisecond),
        ScalarValue::TimestampMicrosecond(Some(v), _) => (*v, TimeUnit::Microsecond),
        ScalarValue::TimestampNanosecond(Some(v), _) => (*v, TimeUnit::Nanosecond),
        _ => return None,
    };
    // In units of 1/10^9 s times the target's units per second: exact for every pair.
    let scaled = i128::from(raw) * per_second(to_unit);
    let divisor = per_second(&from_unit);
    let converted = if lower {
        scaled.div_euclid(divisor)
    } else {
        -(-scaled).div_euclid(divisor)
    };
    let converted = i64::try_from(converted).ok()?;
    let zone = to_zone.clone();
    Some(match to_unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(Some(converted), zone),
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(converted), zone),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(converted), zone),
        TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(converted), zone),
    })
}

/// Whether `plan` scans input `input`.
fn reads(plan: &LogicalPlan, input: Oid) -> bool {
    plan.exists(|node| Ok(matches!(node, LogicalPlan::TableScan(scan) if scans_input(scan, input))))
        .unwrap_or(false)
}

/// The name of input `input`'s column whose values `column` of `plan` carries unchanged (a
/// subset of them: filters and joins drop rows, projections and groupings pass values on).
fn trace(plan: &LogicalPlan, column: &Column, input: Oid) -> Option<String> {
    match plan {
        LogicalPlan::TableScan(scan) => (scans_input(scan, input)
            && scan.projected_schema.has_column(column))
        .then(|| column.name.clone()),
        LogicalPlan::SubqueryAlias(alias) => {
            let index = alias.schema.index_of_column(column).ok()?;
            let below = Column::from(alias.input.schema().qualified_field(index));
            trace(&alias.input, &below, input)
        }
        LogicalPlan::Projection(projection) => {
            let index = projection.schema.index_of_column(column).ok()?;
            match projection.expr.get(index)?.clone().unalias_nested().data {
                Expr::Column(below) => trace(&projection.input, &below, input),
                _ => None,
            }
        }
        LogicalPlan::Aggregate(aggregate) => {
            let grouping_sets = aggregate
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(GroupingSet::GroupingSets(_))));
            if grouping_sets {
                return None;
            }
            let index = aggregate.schema.index_of_column(column).ok()?;
            match aggregate
                .group_expr
                .get(index)?
                .clone()
                .unalias_nested()
                .data
            {
                Expr::Column(below) => trace(&aggregate.input, &below, input),
                _ => None,
            }
        }
        LogicalPlan::Join(join) => {
            // Semi, anti and mark joins output one side only.
            let from_left = match join.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => true,
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => false,
                _ => join.left.schema().has_column(column),
            };
            if from_left {
                trace(&join.left, column, input)
            } else {
                trace(&join.right, column, input)
            }
        }
        LogicalPlan::Filter(_) | LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => {
            trace(plan.inputs().first()?, column, input)
        }
        _ => None,
    }
}

/// Column `name` of `rows`, as one array.
fn column_of(rows: &[RecordBatch], name: &str) -> Option<ArrayRef> {
    let arrays: Vec<&dyn arrow::array::Array> = rows
        .iter()
        .map(|batch| batch.column_by_name(name).map(|c| c.as_ref()))
        .collect::<Option<_>>()?;
    if arrays.is_empty() {
        return None;
    }
    arrow::compute::concat(&arrays).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(v: i64) -> ScalarValue {
        ScalarValue::TimestampNanosecond(Some(v), None)
    }

    #[test]
    fn only_exact_timestamp_casts_are_looked_through() {
        use datafusion::logical_expr::{Cast, col};
        let schema = DFSchema::try_from(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]))
        .expect("schema");
        let cast = |unit, zone: Option<&str>| {
            Expr::Cast(Cast::new(
                Box::new(col("ts")),
                DataType::Timestamp(unit, zone.map(Into::into)),
            ))
        };
        let finer = cast(TimeUnit::Nanosecond, Some("UTC"));
        assert!(column_under_cast(&finer, &schema).is_some());
        let same = cast(TimeUnit::Microsecond, Some("UTC"));
        assert!(column_under_cast(&same, &schema).is_some());
        // Truncating, or shifting by a zone's offset: no bound.
        let coarser = cast(TimeUnit::Second, Some("UTC"));
        assert!(column_under_cast(&coarser, &schema).is_none());
        let other_zone = cast(TimeUnit::Nanosecond, None);
        assert!(column_under_cast(&other_zone, &schema).is_none());
    }

    #[test]
    fn timestamp_bounds_round_outwards() {
        let micros = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let at = |v| ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()));
        assert_eq!(timestamp_in_unit(&ns(1_500), &micros, true), Some(at(1)));
        assert_eq!(timestamp_in_unit(&ns(1_500), &micros, false), Some(at(2)));
        assert_eq!(timestamp_in_unit(&ns(2_000), &micros, false), Some(at(2)));
        assert_eq!(timestamp_in_unit(&ns(-1_500), &micros, true), Some(at(-2)));
        assert_eq!(timestamp_in_unit(&ns(-1_500), &micros, false), Some(at(-1)));
        let seconds = ScalarValue::TimestampSecond(Some(3), None);
        assert_eq!(
            timestamp_in_unit(&seconds, &micros, true),
            Some(at(3_000_000))
        );
        assert_eq!(
            timestamp_in_unit(&ScalarValue::Int64(Some(1)), &micros, true),
            None
        );
        assert_eq!(timestamp_in_unit(&ns(1), &DataType::Int64, true), None);
    }
}
