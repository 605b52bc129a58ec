//! `ORDER BY` keys that hold a subquery.
//!
//! DataFusion plans `IN (SELECT ...)`, `EXISTS` and scalar subqueries in projections and
//! filters but not in a sort. Grafana's table listing sorts by whether a table's schema is on
//! the search path:
//!
//! ```sql
//! SELECT CASE WHEN quote_ident(table_schema) IN (SELECT ...) THEN quote_ident(table_name)
//!             ELSE ... END AS "table"
//! FROM information_schema.tables WHERE ...
//! ORDER BY CASE WHEN quote_ident(table_schema) IN (SELECT ...) THEN 0 ELSE 1 END, 1
//! ```
//!
//! Such a key is computed as a hidden column of the select list and the query sorts outside:
//!
//! ```sql
//! SELECT * EXCLUDE (__basin_order_1) FROM (
//!     SELECT CASE ... END AS "table", CASE ... THEN 0 ELSE 1 END AS __basin_order_1
//!     FROM information_schema.tables WHERE ...
//! ) AS __basin_ordered
//! ORDER BY __basin_order_1, 1
//! ```
//!
//! Output positions (`1`) and output names keep their meaning outside; every other key becomes a
//! hidden column too, since the outer query no longer sees the inner tables. `DISTINCT` queries
//! and set operations stay as they are (a hidden column would change their rows).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Distinct, ExcludeSelectItem, Expr, Ident, ObjectName, OrderByKind, Query, SelectItem, SetExpr,
    TableFactor, Value, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

const HIDDEN_PREFIX: &str = "__basin_order_";

/// Rewrites `query` in place when an `ORDER BY` key holds a subquery.
pub(super) fn hoist_subquery_sort_keys(query: &mut Query) {
    let Some(order_by) = &query.order_by else {
        return;
    };
    let OrderByKind::Expressions(keys) = &order_by.kind else {
        return;
    };
    if !keys.iter().any(|key| holds_subquery(&key.expr)) {
        return;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return;
    };
    if select
        .distinct
        .as_ref()
        .is_some_and(|d| !matches!(d, Distinct::All))
    {
        return;
    }
    let output_names: Vec<String> = select.projection.iter().filter_map(output_name).collect();
    let Some(mut outer) = outer_query() else {
        return;
    };
    let Some(mut order_by) = query.order_by.take() else {
        return;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let OrderByKind::Expressions(keys) = &mut order_by.kind else {
        return;
    };
    let mut hidden = Vec::new();
    for key in keys.iter_mut() {
        if refers_to_output(&key.expr, &output_names) {
            continue;
        }
        let name = Ident::new(format!("{HIDDEN_PREFIX}{}", hidden.len() + 1));
        let expr = std::mem::replace(&mut key.expr, Expr::Identifier(name.clone()));
        select.projection.push(SelectItem::ExprWithAlias {
            expr,
            alias: name.clone(),
        });
        hidden.push(name);
    }
    if let SetExpr::Select(outer_select) = outer.body.as_mut()
        && let Some(SelectItem::Wildcard(options)) = outer_select.projection.first_mut()
    {
        options.opt_exclude = Some(ExcludeSelectItem::Multiple(
            hidden
                .into_iter()
                .map(|name| ObjectName::from(vec![name]))
                .collect(),
        ));
    }
    outer.order_by = Some(order_by);
    outer.limit_clause = query.limit_clause.take();
    outer.fetch = query.fetch.take();
    let inner = std::mem::replace(query, outer);
    if let SetExpr::Select(outer_select) = query.body.as_mut()
        && let Some(TableFactor::Derived { subquery, .. }) =
            outer_select.from.first_mut().map(|from| &mut from.relation)
    {
        **subquery = inner;
    }
}

/// `SELECT * EXCLUDE (x) FROM (SELECT 1) AS __basin_ordered`, to fill in.
fn outer_query() -> Option<Query> {
    let sql = format!("SELECT * EXCLUDE ({HIDDEN_PREFIX}1) FROM (SELECT 1) AS __basin_ordered");
    Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut parser| parser.parse_query())
        .ok()
        .map(|query| *query)
}

fn holds_subquery(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    expr.visit(&mut Finder).is_break()
}

/// The name a select item's column is known by outside, if it has one.
fn output_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(normalized(alias)),
        SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(normalized(ident)),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(normalized),
        _ => None,
    }
}

fn normalized(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

/// `ORDER BY 2` or `ORDER BY name` of an output column: valid outside as it is.
fn refers_to_output(expr: &Expr, output_names: &[String]) -> bool {
    match expr {
        Expr::Value(value) => matches!(value.value, Value::Number(..)),
        Expr::Identifier(ident) => output_names.contains(&normalized(ident)),
        _ => false,
    }
}
