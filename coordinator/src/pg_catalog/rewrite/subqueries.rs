//! Subqueries DataFusion cannot plan as Postgres writes them:
//!
//! * `ARRAY(SELECT x ...)` becomes `(SELECT array_agg(x ...) ...)`;
//! * a scalar subquery that does not aggregate (Postgres checks "at most one row" at run
//!   time; DataFusion insists on an aggregate when the subquery is correlated), if
//!   [`lateral`](super::lateral) did not turn it into a join, gets its one column wrapped in
//!   `first_value`, which is the same for zero or one row (and `ORDER BY ... LIMIT 1` becomes
//!   `first_value(... ORDER BY ...)`);
//! * a subquery whose `FROM` calls a set-returning function on columns of the outer query
//!   (`unnest(tc.reloptions)`, `generate_series(0, array_upper(pr.prattrs, 1))`) is a lateral
//!   call DataFusion cannot decorrelate; it becomes NULL. Only psql's footers over empty catalog
//!   tables (publications, TOAST options) do this today.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Distinct, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, GroupByExpr, LimitClause,
    OrderByExpr, OrderByKind, Query, Select, SelectItem, SetExpr, TableFactor, Value, Visit,
    Visitor,
};

use super::{function_call, null};

/// Aggregate functions a scalar subquery may already use.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "first_value",
    "last_value",
    "json_agg",
    "jsonb_agg",
    "bit_and",
    "bit_or",
    "stddev",
    "variance",
    "median",
];

fn select_mut(query: &mut Query) -> Option<&mut Select> {
    match query.body.as_mut() {
        SetExpr::Select(select) => Some(select),
        _ => None,
    }
}

pub(super) fn is_simple(select: &Select) -> bool {
    select.projection.len() == 1
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(exprs, _) if exprs.is_empty())
}

fn item_expr(item: &mut SelectItem) -> Option<&mut Expr> {
    match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => Some(expr),
        _ => None,
    }
}

fn aggregate_call(name: &str, argument: Expr, order_by: Vec<OrderByExpr>, distinct: bool) -> Expr {
    let mut clauses = Vec::new();
    if !order_by.is_empty() {
        clauses.push(FunctionArgumentClause::OrderBy(order_by));
    }
    Expr::Function(function_call(
        name,
        FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: distinct.then_some(DuplicateTreatment::Distinct),
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))],
            clauses,
        }),
    ))
}

/// The query's ORDER BY, with `ORDER BY 1` and output aliases replaced by the expression.
fn take_order_by(query: &mut Query, projected: &Expr, alias: Option<&str>) -> Vec<OrderByExpr> {
    let Some(order_by) = query.order_by.take() else {
        return Vec::new();
    };
    let OrderByKind::Expressions(exprs) = order_by.kind else {
        return Vec::new();
    };
    exprs
        .into_iter()
        .map(|mut order| {
            let refers_to_output = match &order.expr {
                Expr::Value(value) => {
                    matches!(&value.value, Value::Number(n, _) if n.to_string() == "1")
                }
                Expr::Identifier(ident) => {
                    alias.is_some_and(|a| ident.value.eq_ignore_ascii_case(a))
                }
                _ => false,
            };
            if refers_to_output {
                order.expr = projected.clone();
            }
            order
        })
        .collect()
}

/// `ARRAY(SELECT x FROM ... ORDER BY ...)` → `(SELECT array_agg(x ORDER BY ...) FROM ...)`.
pub(super) fn rewrite_array_subquery(expr: &mut Expr) {
    let Expr::Function(function) = expr else {
        return;
    };
    let is_array = function.name.0.len() == 1
        && function
            .name
            .0
            .first()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("array"));
    let FunctionArguments::Subquery(query) = &mut function.args else {
        return;
    };
    if !is_array {
        return;
    }
    let catalog_only = reads_only_catalog(query);
    if catalog_only && calls_lateral_function(query) {
        *expr = null();
        return;
    }
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return;
    }
    let Some(select) = select_mut(query) else {
        return;
    };
    if !is_simple(select) {
        return;
    }
    let alias = match &select.projection[0] {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        _ => None,
    };
    let Some(projected) = item_expr(&mut select.projection[0]).map(|e| e.clone()) else {
        return;
    };
    let distinct = matches!(select.distinct.take(), Some(Distinct::Distinct));
    let order_by = take_order_by(query, &projected, alias.as_deref());
    if let Some(select) = select_mut(query) {
        select.projection = vec![SelectItem::UnnamedExpr(aggregate_call(
            "array_agg",
            projected,
            order_by,
            distinct,
        ))];
    }
    let gives_up = catalog_only && is_correlated(query) && !decorrelates_through_aggregate(query);
    let query = std::mem::replace(query, Box::new(empty_query()));
    *expr = if gives_up {
        null()
    } else {
        Expr::Subquery(query)
    };
}

pub(super) fn empty_query() -> Query {
    Query {
        with: None,
        body: Box::new(SetExpr::Values(datafusion::sql::sqlparser::ast::Values {
            explicit_row: false,
            value_keyword: false,
            rows: Vec::new(),
        })),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    }
}

/// Reshapes one scalar subquery (not the right side of `= ANY (SELECT ...)`).
pub(super) fn rewrite_scalar_subquery(expr: &mut Expr) {
    let Expr::Subquery(query) = expr else {
        return;
    };
    if !reads_only_catalog(query) {
        return;
    }
    if calls_lateral_function(query) {
        *expr = null();
        return;
    }
    wrap_in_first_value(query);
    if aggregates(query) && is_correlated(query) && !decorrelates_through_aggregate(query) {
        *expr = null();
    }
}

/// Whether the query's single output is an aggregate.
fn aggregates(query: &Query) -> bool {
    match query.body.as_ref() {
        SetExpr::Select(select) => match select.projection.first() {
            Some(SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) => {
                contains_aggregate(expr)
            }
            _ => false,
        },
        _ => false,
    }
}

fn wrap_in_first_value(query: &mut Query) {
    if query.fetch.is_some() {
        return;
    }
    // `ORDER BY ... LIMIT 1` picks the first row, as `first_value(... ORDER BY ...)` does.
    match &query.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(value)),
            offset: None,
            limit_by,
        }) if limit_by.is_empty()
            && matches!(&value.value, Value::Number(n, _) if n.to_string() == "1") =>
        {
            query.limit_clause = None;
        }
        Some(_) => return,
    }
    let alias = match query.body.as_ref() {
        SetExpr::Select(select) => match select.projection.first() {
            Some(SelectItem::ExprWithAlias { alias, .. }) => Some(alias.value.clone()),
            _ => None,
        },
        _ => None,
    };
    let Some(select) = select_mut(query) else {
        return;
    };
    if !is_simple(select) || select.distinct.is_some() {
        return;
    }
    let Some(projected) = item_expr(&mut select.projection[0]) else {
        return;
    };
    if contains_aggregate(projected) {
        return;
    }
    let projected = projected.clone();
    let order_by = take_order_by(query, &projected, alias.as_deref());
    if let Some(select) = select_mut(query)
        && let Some(target) = item_expr(&mut select.projection[0])
    {
        *target = aggregate_call("first_value", projected, order_by, false);
    }
}

/// Whether the expression calls an aggregate; one inside a nested subquery counts too, which
/// only makes the rewrite leave more queries alone.
pub(super) fn contains_aggregate(expr: &Expr) -> bool {
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(function) = expr
                && function.over.is_none()
                && function
                    .name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str()))
            {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = expr.visit(&mut finder);
    finder.0
}

/// Whether the query's own `FROM` calls a table function with column references in its
/// arguments, i.e. laterally on the outer query.
pub(super) fn calls_lateral_function(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let factors = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    factors.into_iter().any(|factor| match factor {
        TableFactor::Table {
            args: Some(args), ..
        } => args.args.iter().any(argument_references_columns),
        TableFactor::Function { args, .. } => args.iter().any(argument_references_columns),
        TableFactor::UNNEST { array_exprs, .. } => array_exprs.iter().any(references_columns),
        _ => false,
    })
}

fn argument_references_columns(argument: &FunctionArg) -> bool {
    match argument {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))
        | FunctionArg::Named {
            arg: FunctionArgExpr::Expr(expr),
            ..
        }
        | FunctionArg::ExprNamed {
            arg: FunctionArgExpr::Expr(expr),
            ..
        } => references_columns(expr),
        _ => false,
    }
}

fn references_columns(expr: &Expr) -> bool {
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = expr.visit(&mut finder);
    finder.0
}

/// Table names and aliases a query defines anywhere inside it.
fn defined_names(query: &Query) -> HashSet<String> {
    struct Names(HashSet<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            let alias = match factor {
                TableFactor::Table { name, alias, .. } => {
                    if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                        self.0.insert(last.value.to_ascii_lowercase());
                    }
                    alias
                }
                TableFactor::Derived { alias, .. }
                | TableFactor::Function { alias, .. }
                | TableFactor::UNNEST { alias, .. }
                | TableFactor::NestedJoin { alias, .. } => alias,
                _ => &None,
            };
            if let Some(alias) = alias {
                self.0.insert(alias.name.value.to_ascii_lowercase());
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(HashSet::new());
    let _ = query.visit(&mut names);
    names.0
}

/// The table qualifiers of the column references in `node` (`a` of `a.attrelid`).
fn qualifiers<T: Visit>(node: &T) -> HashSet<String> {
    struct Qualifiers(HashSet<String>);
    impl Visitor for Qualifiers {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = expr
                && parts.len() >= 2
                && let Some(qualifier) = parts.get(parts.len() - 2)
            {
                self.0.insert(qualifier.value.to_ascii_lowercase());
            }
            ControlFlow::Continue(())
        }
    }
    let mut found = Qualifiers(HashSet::new());
    let _ = node.visit(&mut found);
    found.0
}

/// Whether the query names a table it does not define: `a.attrelid` where `a` is the outer
/// query's. Unqualified outer references are not seen.
pub(super) fn is_correlated(query: &Query) -> bool {
    let defined = defined_names(query);
    qualifiers(query).iter().any(|q| !defined.contains(q))
}

/// Whether DataFusion can decorrelate the (aggregating) subquery: every predicate that refers
/// to the outer query is `inner_column = outer_expression`, and none sits in a join condition.
pub(super) fn decorrelates_through_aggregate(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return true;
    };
    let defined = defined_names(query);
    let is_outer = |q: &String| !defined.contains(q);
    let refers_outside = |e: &Expr| qualifiers(e).iter().any(is_outer);
    let join_refers_outside = select
        .from
        .iter()
        .flat_map(|t| &t.joins)
        .any(|join| qualifiers(&join.join_operator).iter().any(is_outer));
    if join_refers_outside {
        return false;
    }
    let Some(selection) = &select.selection else {
        return true;
    };
    let is_inner_column = |e: &Expr| match e {
        Expr::Identifier(_) => true,
        Expr::CompoundIdentifier(_) => !refers_outside(e),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => {
            matches!(
                expr.as_ref(),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_)
            ) && !refers_outside(expr)
        }
        _ => false,
    };
    let only_outer = |e: &Expr| {
        let found = qualifiers(e);
        !found.is_empty() && found.iter().all(is_outer) && !has_unqualified_column(e)
    };
    conjuncts(selection).into_iter().all(|conjunct| {
        !refers_outside(conjunct)
            || matches!(conjunct, Expr::BinaryOp { left, op: BinaryOperator::Eq, right }
                if (is_inner_column(left) && only_outer(right))
                    || (is_inner_column(right) && only_outer(left)))
    })
}

fn has_unqualified_column(expr: &Expr) -> bool {
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if matches!(expr, Expr::Identifier(_)) {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = expr.visit(&mut finder);
    finder.0
}

/// `a AND (b AND c)` → `[a, b, c]`.
fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(left);
            all.extend(conjuncts(right));
            all
        }
        Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// Whether every table the query reads is a catalog table (`pg_catalog`, `information_schema`).
/// Rewrites that trade Postgres' run-time "more than one row" error for a plan, or give up
/// with NULL, are only made for these: the catalog's keys keep such subqueries to one row,
/// and only psql footers over tables Basin leaves empty ever give up.
pub(super) fn reads_only_catalog(query: &Query) -> bool {
    struct Tables(bool);
    impl Visitor for Tables {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name, args: None, ..
            } = factor
            {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident())
                    .map(|i| i.value.to_ascii_lowercase())
                    .collect();
                let catalog = match parts.as_slice() {
                    [table] => super::CATALOG_TABLES.contains(table.as_str()),
                    [.., schema, _] => schema == "pg_catalog" || schema == "information_schema",
                    [] => false,
                };
                if !catalog {
                    self.0 = false;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut tables = Tables(true);
    let _ = query.visit(&mut tables);
    tables.0
}
