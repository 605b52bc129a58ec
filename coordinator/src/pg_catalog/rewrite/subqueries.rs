//! Subqueries DataFusion cannot plan as Postgres writes them:
//!
//! * `ARRAY(SELECT x ...)` becomes `coalesce((SELECT array_agg(x ...) ...), ARRAY[])`;
//! * a scalar subquery that does not aggregate (Postgres checks "at most one row" at run
//!   time; DataFusion insists on an aggregate when the subquery is correlated), if
//!   [`lateral`](super::lateral) did not turn it into a join, gets its one column wrapped in
//!   `first_value`, which is the same for zero or one row (and `ORDER BY ... LIMIT 1` becomes
//!   `first_value(... ORDER BY ...)`); its `WHERE` conditions on outer columns alone move
//!   out into a `CASE WHEN` around it;
//! * a subquery whose `FROM` calls a set-returning function on columns of the outer query
//!   (`unnest(tc.reloptions)`, `generate_series(0, array_upper(pr.prattrs, 1))`) is a lateral
//!   call DataFusion cannot decorrelate; it becomes NULL. Only psql's footers over empty catalog
//!   tables (publications, TOAST options) do this today.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    Array, ArrayElemTypeDef, BinaryOperator, CaseWhen, CastKind, DataType, Distinct,
    DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArgumentList, FunctionArguments, GroupByExpr, LimitClause, ObjectName, OrderByExpr,
    OrderByKind, Query, Select, SelectItem, SetExpr, TableFactor, Value, Visit, Visitor,
};

use super::{call, function_call, is_keyword_function, null};
use crate::pg_catalog::snapshot::system_specs;
use crate::pg_catalog::table::parse_columns;

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
                    matches!(&value.value, Value::Number(n, _) if n == "1")
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
        *expr = empty_text_array();
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
    // `ARRAY(...)` of no rows is `{}`, `array_agg` of none is NULL.
    *expr = if gives_up {
        empty_text_array()
    } else {
        call(
            "coalesce",
            vec![
                Expr::Subquery(query),
                Expr::Array(Array {
                    elem: Vec::new(),
                    named: true,
                }),
            ],
        )
    };
}

/// What a given-up `ARRAY(...)` becomes: `ARRAY[]::text[]`, what Postgres returns over the
/// empty catalog tables this happens for; text is the element type of every such `ARRAY(...)`
/// psql writes (names, option strings), so `array_to_string` and `||` still plan.
fn empty_text_array() -> Expr {
    Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(Expr::Array(Array {
            elem: Vec::new(),
            named: true,
        })),
        data_type: DataType::Array(ArrayElemTypeDef::SquareBracket(
            Box::new(DataType::Text),
            None,
        )),
        array: false,
        format: None,
    }
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
    // A correlated common table expression (asyncpg's walk down a domain's base types) is past
    // what DataFusion decorrelates; Basin has no domains, so the walk finds nothing anyway.
    if query.with.is_some() && is_correlated(query) {
        *expr = null();
        return;
    }
    let guard = lift_outer_conditions(query);
    wrap_in_first_value(query);
    if aggregates(query) && is_correlated(query) && !decorrelates_through_aggregate(query) {
        *expr = null();
        return;
    }
    if let Some(condition) = guard {
        let subquery = std::mem::replace(expr, null());
        *expr = Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions: vec![CaseWhen {
                condition,
                result: subquery,
            }],
            else_result: None,
        };
    }
}

/// Takes the `WHERE` conditions that read only the outer query's columns
/// (`pg_attribute.attidentity != ''` in SQLAlchemy's column reflection) out of the subquery and
/// returns them joined by AND: `(SELECT x FROM t WHERE outer_only AND rest)` is
/// `CASE WHEN outer_only THEN (SELECT x FROM t WHERE rest) END` (no row, so NULL, whenever the
/// condition is not true), and DataFusion cannot decorrelate such a filter.
fn lift_outer_conditions(query: &mut Query) -> Option<Expr> {
    let scope = Scope::of(query);
    let select = select_mut(query)?;
    let selection = select.selection.take()?;
    let (lifted, kept): (Vec<Expr>, Vec<Expr>) = owned_conjuncts(selection)
        .into_iter()
        .partition(|conjunct| scope.references(conjunct) == (true, false));
    select.selection = and_all(kept);
    and_all(lifted)
}

/// `a AND (b AND c)` → `[a, b, c]`, taking ownership.
fn owned_conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = owned_conjuncts(*left);
            all.extend(owned_conjuncts(*right));
            all
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            owned_conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn and_all(conditions: Vec<Expr>) -> Option<Expr> {
    conditions.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
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
        }) if limit_by.is_empty() && matches!(&value.value, Value::Number(n, _) if n == "1") => {
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

/// Columns of every catalog table, by schema and table name.
type ColumnsBySchema = HashMap<&'static str, HashMap<&'static str, HashSet<String>>>;

static CATALOG_COLUMNS: LazyLock<ColumnsBySchema> = LazyLock::new(|| {
    let mut by_schema = ColumnsBySchema::new();
    for (schema, spec) in system_specs() {
        if let Ok(columns) = parse_columns(spec.name, spec.columns) {
            by_schema
                .entry(schema)
                .or_default()
                .insert(spec.name, columns.into_iter().map(|c| c.name).collect());
        }
    }
    by_schema
});

fn catalog_columns(name: &ObjectName) -> Option<&'static HashSet<String>> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    let (schema, table) = match parts.as_slice() {
        [table] => ("pg_catalog", table),
        [.., schema, table] => (schema.as_str(), table),
        [] => return None,
    };
    CATALOG_COLUMNS.get(schema)?.get(table.as_str())
}

/// What a subquery defines, anywhere inside it: table names and aliases, and, when every table
/// it reads is a catalog table, the column names (so `attrelid` can be told from an outer
/// `c.oid`).
struct Scope {
    names: HashSet<String>,
    columns: Option<HashSet<String>>,
}

impl Scope {
    fn of(query: &Query) -> Self {
        struct Collector(Scope);
        impl Visitor for Collector {
            type Break = ();
            fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
                let scope = &mut self.0;
                let alias = match factor {
                    TableFactor::Table {
                        name, alias, args, ..
                    } => {
                        if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                            scope.names.insert(last.value.to_ascii_lowercase());
                        }
                        match (args, catalog_columns(name), &mut scope.columns) {
                            (None, Some(known), Some(columns)) => {
                                columns.extend(known.iter().cloned())
                            }
                            (None, _, columns) => *columns = None,
                            // A table function's columns are named by its alias.
                            (Some(_), _, Some(columns)) => {
                                if let Some(alias) = alias {
                                    columns.insert(alias.name.value.to_ascii_lowercase());
                                    columns.extend(
                                        alias
                                            .columns
                                            .iter()
                                            .map(|c| c.name.value.to_ascii_lowercase()),
                                    );
                                }
                            }
                            (Some(_), _, None) => {}
                        }
                        alias
                    }
                    TableFactor::Function { alias, .. } | TableFactor::UNNEST { alias, .. } => {
                        if let (Some(alias), Some(columns)) = (alias, &mut scope.columns) {
                            columns.insert(alias.name.value.to_ascii_lowercase());
                            columns.extend(
                                alias
                                    .columns
                                    .iter()
                                    .map(|c| c.name.value.to_ascii_lowercase()),
                            );
                        }
                        alias
                    }
                    TableFactor::Derived { alias, .. } => {
                        scope.columns = None;
                        alias
                    }
                    TableFactor::NestedJoin { alias, .. } => alias,
                    _ => {
                        scope.columns = None;
                        &None
                    }
                };
                if let Some(alias) = alias {
                    scope.names.insert(alias.name.value.to_ascii_lowercase());
                }
                ControlFlow::Continue(())
            }
            fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
                // Output aliases may be named again in ORDER BY.
                if let Some(columns) = &mut self.0.columns {
                    for item in &select.projection {
                        if let SelectItem::ExprWithAlias { alias, .. } = item {
                            columns.insert(alias.value.to_ascii_lowercase());
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut collector = Collector(Scope {
            names: HashSet::new(),
            columns: Some(HashSet::new()),
        });
        let _ = query.visit(&mut collector);
        collector.0
    }

    /// Whether a column reference names something outside the subquery.
    fn is_outer(&self, expr: &Expr) -> bool {
        match expr {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => parts
                .get(parts.len() - 2)
                .is_some_and(|q| !self.names.contains(&q.value.to_ascii_lowercase())),
            Expr::Identifier(ident) if !is_keyword_function(ident) => self
                .columns
                .as_ref()
                .is_some_and(|columns| !columns.contains(&ident.value.to_ascii_lowercase())),
            _ => false,
        }
    }

    /// The column references in `node`: (any outside the subquery, any inside it).
    fn references<T: Visit>(&self, node: &T) -> (bool, bool) {
        struct Finder<'s> {
            scope: &'s Scope,
            outer: bool,
            inner: bool,
        }
        impl Visitor for Finder<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
                if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                    if self.scope.is_outer(expr) {
                        self.outer = true;
                    } else if !matches!(expr, Expr::Identifier(i) if is_keyword_function(i)) {
                        self.inner = true;
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut finder = Finder {
            scope: self,
            outer: false,
            inner: false,
        };
        let _ = node.visit(&mut finder);
        (finder.outer, finder.inner)
    }
}

/// Whether the query refers to the query around it (`a.attrelid`, or an unqualified column
/// that none of its catalog tables has).
pub(super) fn is_correlated(query: &Query) -> bool {
    Scope::of(query).references(query).0
}

/// If `expr`, an output of `query`, refers to the query around it: the column references in it
/// that are the query's own, each once. `None` when it refers only to the query's own columns.
pub(super) fn inner_columns_of_correlated(query: &Query, expr: &Expr) -> Option<Vec<Expr>> {
    let scope = Scope::of(query);
    if !scope.references(expr).0 {
        return None;
    }
    struct Finder<'s> {
        scope: &'s Scope,
        found: Vec<Expr>,
    }
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            let column = match expr {
                Expr::Identifier(ident) => !is_keyword_function(ident),
                Expr::CompoundIdentifier(_) => true,
                _ => false,
            };
            if column && !self.scope.is_outer(expr) && !self.found.contains(expr) {
                self.found.push(expr.clone());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder {
        scope: &scope,
        found: Vec::new(),
    };
    let _ = expr.visit(&mut finder);
    Some(finder.found)
}

/// Whether DataFusion can decorrelate the (aggregating) subquery: every predicate that refers
/// to the outer query is `inner_column = outer_expression`, and none sits in a join condition.
pub(super) fn decorrelates_through_aggregate(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return true;
    };
    let scope = Scope::of(query);
    let join_refers_outside = select
        .from
        .iter()
        .flat_map(|t| &t.joins)
        .any(|join| scope.references(&join.join_operator).0);
    if join_refers_outside {
        return false;
    }
    let Some(selection) = &select.selection else {
        return true;
    };
    let is_inner_column = |e: &Expr| {
        let column = match e {
            Expr::Cast { expr, .. } | Expr::Nested(expr) => expr.as_ref(),
            other => other,
        };
        matches!(column, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            && !scope.is_outer(column)
    };
    let only_outer = |e: &Expr| scope.references(e) == (true, false);
    conjuncts(selection).into_iter().all(|conjunct| {
        !scope.references(conjunct).0
            || matches!(conjunct, Expr::BinaryOp { left, op: BinaryOperator::Eq, right }
                if (is_inner_column(left) && only_outer(right))
                    || (is_inner_column(right) && only_outer(left)))
    })
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
    // Common table expressions defined inside the query count as what their bodies read.
    struct Tables(bool, HashSet<String>);
    impl Visitor for Tables {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.1.insert(cte.alias.name.value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
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
                    [table] => {
                        super::CATALOG_TABLES.contains(table.as_str()) || self.1.contains(table)
                    }
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
    let mut tables = Tables(true, HashSet::new());
    let _ = query.visit(&mut tables);
    tables.0
}
