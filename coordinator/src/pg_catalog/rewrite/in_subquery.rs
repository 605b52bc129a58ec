//! `x IN (SELECT ...)` in a select list.
//!
//! DataFusion plans `IN (SELECT ...)` only in filters; in a select list (Grafana's table listing
//! asks `CASE WHEN quote_ident(table_schema) IN (SELECT <search path>) THEN ... END`) it fails
//! at execution. An uncorrelated one becomes an array membership test over a scalar subquery,
//! which DataFusion plans everywhere:
//!
//! ```sql
//! coalesce(array_has((SELECT array_agg(__basin_in.v) FROM (SELECT ...) AS __basin_in(v)), x), false)
//! ```
//!
//! It differs from Postgres only when `x` is NULL or the subquery yields NULLs without a match
//! (Postgres says NULL, this says false), which a `CASE WHEN` or a filter treats alike.
//! `NOT IN` is the negation. Filters and correlated subqueries stay as they are.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Select, SelectItem, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::subqueries::is_correlated;

/// Rewrites the uncorrelated `IN (SELECT ...)` tests of `select`'s own select list.
pub(super) fn rewrite_in_subqueries_in_projection(select: &mut Select) {
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            let _ = expr.visit(&mut InRewriter { depth: 0 });
        }
    }
}

/// Rewrites outside nested queries only: their own select lists get their own turn.
struct InRewriter {
    depth: usize,
}

impl VisitorMut for InRewriter {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.depth == 0
            && let Expr::InSubquery {
                expr: tested,
                subquery,
                negated,
            } = expr
            && !is_correlated(subquery)
            && let Some(membership) = membership_test(tested, subquery, *negated)
        {
            *expr = membership;
        }
        ControlFlow::Continue(())
    }
}

fn membership_test(tested: &Expr, subquery: &Query, negated: bool) -> Option<Expr> {
    let not = if negated { "NOT " } else { "" };
    let sql = format!(
        "{not}coalesce(array_has((SELECT array_agg(__basin_in.v) FROM ({subquery}) AS __basin_in(v)), {tested}), false)"
    );
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut parser| parser.parse_expr())
        .ok()
}
