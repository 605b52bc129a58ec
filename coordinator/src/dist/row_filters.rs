//! Whether a query's Parquet scans evaluate its filters while decoding (DataFusion's
//! `pushdown_filters`: a row filter decodes the predicate's columns first and only the matching
//! rows of the others) or after, in a `FilterExec` over whole batches.
//!
//! Neither wins everywhere, measured on TPC-H SF1 here (`basin bench tpch`, release, both
//! settings in turn):
//! - Point lookups gain: `o_orderkey = $1` on `orders` ran at 357 tps with row filters and 224
//!   without, `l_partkey = $1` on `lineitem` at 19.6 and 12.0.
//! - Scans keeping a few percent of the rows or more lose: the selection is many short runs,
//!   and skipping between them costs more than decoding everything. The 22 queries' geometric
//!   mean was 244 ms with row filters and 205 ms without; q6 took 234 ms against 115.
//!
//! DataFusion 55 cannot switch while it reads, so the planner chooses per query: row filters
//! when a scan is restricted to a few values of an integer column (`id = 42`,
//! `id IN (1, 2, 3)`) and nothing is joined, the shape of a lookup by key; whole batches
//! otherwise. Equality on text
//! or dates is left out: in analytic schemas those columns are mostly categories (a status, a
//! segment, a ship mode) that keep a large share of the rows. A session that sets
//! `datafusion.execution.parquet.pushdown_filters` itself keeps row filters for every query.
//!
//! `SET basin.row_filters = 'on' | 'off'` overrides the choice for a session (`'auto'`, the
//! default, chooses as above): `off` is the way out should a row-filter bug in DataFusion hit
//! a lookup, since `pushdown_filters = false` cannot be told from the default.

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, TableScan};

/// The session setting that overrides the per-query choice.
pub(crate) const SETTING: &str = "basin.row_filters";

/// `basin.row_filters` as of a statement, carried in its session config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum RowFilterMode {
    /// Row filters for lookups by key, and wherever the session turned DataFusion's on.
    #[default]
    Auto,
    /// Row filters for every query.
    On,
    /// No row filters, whatever DataFusion's setting says.
    Off,
}

impl RowFilterMode {
    /// The mode a setting's text names (`auto`, `on`/`true`, `off`/`false`, quoted or not).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.trim().trim_matches('\'').to_ascii_lowercase().as_str() {
            "auto" | "default" | "" => Some(Self::Auto),
            "on" | "true" => Some(Self::On),
            "off" | "false" => Some(Self::Off),
            _ => None,
        }
    }

    /// Whether `plan` runs with row filters, given DataFusion's setting in its session.
    pub(crate) fn wants(self, plan: &LogicalPlan, session_setting: bool) -> bool {
        match self {
            Self::Auto => session_setting || has_key_lookup(plan),
            Self::On => true,
            Self::Off => false,
        }
    }
}

/// `IN` lists up to this long count as a lookup.
const MAX_LOOKUP_VALUES: usize = 64;

/// Whether `plan` is a lookup by an integer key: every scan with a filter is restricted to a
/// few values of an integer column (one lookup must not switch row filters on for another
/// scan's range filter), and nothing is joined.
///
/// With a join, DataFusion pushes the hash join's dynamic filter (the build side's keys) into
/// the probe side's scan, where row filters would evaluate it while decoding: that is the
/// many-short-runs case, and the TPC-H and TPC-DS queries that restrict a dimension by an
/// integer (`d_year = 2000`) would pay it on their fact table.
pub(crate) fn has_key_lookup(plan: &LogicalPlan) -> bool {
    let mut lookups = 0usize;
    let mut other_filters = false;
    let mut joined = false;
    // The closure never fails; an error would only stop the walk early.
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::Join(_) => {
                joined = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            LogicalPlan::TableScan(scan) if !scan.filters.is_empty() => {
                if scan_is_lookup(scan) {
                    lookups += 1;
                } else {
                    other_filters = true;
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    lookups > 0 && !other_filters && !joined
}

fn scan_is_lookup(scan: &TableScan) -> bool {
    let schema = scan.source.schema();
    // A hive partition column (`year=2024/`) prunes whole directories, not rows: equality on
    // it says nothing about how many rows of the files match.
    let partition_columns: Vec<String> = source_as_provider(&scan.source)
        .ok()
        .and_then(|provider| {
            provider.downcast_ref::<ListingTable>().map(|table| {
                table
                    .options()
                    .table_partition_cols
                    .iter()
                    .map(|(name, _)| name.clone())
                    .collect()
            })
        })
        .unwrap_or_default();
    let is_integer_column = |expr: &Expr| {
        column_of(expr).is_some_and(|name| {
            !partition_columns.iter().any(|partition| partition == name)
                && schema
                    .field_with_name(name)
                    .is_ok_and(|field| field.data_type().is_integer())
        })
    };
    scan.filters
        .iter()
        .flat_map(|filter| split_conjunction(filter))
        .any(|conjunct| match conjunct {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                (is_integer_column(left) && is_value(right))
                    || (is_integer_column(right) && is_value(left))
            }
            Expr::InList(list) => {
                !list.negated
                    && list.list.len() <= MAX_LOOKUP_VALUES
                    && is_integer_column(&list.expr)
                    && list.list.iter().all(is_value)
            }
            _ => false,
        })
}

/// The column `expr` reads, through casts.
fn column_of(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(column) => Some(column.name.as_str()),
        Expr::Cast(cast) => column_of(&cast.expr),
        Expr::TryCast(cast) => column_of(&cast.expr),
        _ => None,
    }
}

/// A constant: a literal or a statement parameter, possibly cast.
fn is_value(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(value, _) => !value.is_null() && !matches!(value.data_type(), DataType::Null),
        Expr::Placeholder(_) => true,
        Expr::Cast(cast) => is_value(&cast.expr),
        Expr::TryCast(cast) => is_value(&cast.expr),
        _ => false,
    }
}
