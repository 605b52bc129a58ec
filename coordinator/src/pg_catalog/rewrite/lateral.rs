//! Correlated scalar subqueries that do not aggregate, the staple of introspection queries:
//!
//! ```sql
//! SELECT a.attname,
//!   (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
//!    WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef)
//! FROM pg_attribute a
//! ```
//!
//! DataFusion decorrelates a scalar subquery only through an aggregate, and only when every
//! correlated predicate is an equality; psql's have outer-only (`a.atthasdef`) and non-equality
//! (`a.attcollation <> t.typcollation`) ones. A `LEFT JOIN LATERAL` has no such limits, and for
//! a subquery of at most one row (which Postgres enforces at run time) it is the same thing.
//! Only subqueries over catalog tables are moved, whose keys make them return one row; a user
//! query keeps DataFusion's behaviour.
//!
//! ```sql
//! SELECT a.attname, __basin_sq1.value
//! FROM pg_attribute a LEFT JOIN LATERAL (SELECT pg_get_expr(...) AS value FROM pg_attrdef d
//!   WHERE ...) AS __basin_sq1 ON true
//! ```
//!
//! DataFusion cannot plan outer columns in a lateral subquery's output, so an output such as
//! SQLAlchemy's `json_build_object('always', a.attidentity = 'a', 'start', s.seqstart)` is
//! computed outside: the subquery outputs `true AS found, s.seqstart AS value0`, and the outer
//! query `CASE WHEN __basin_sq1.found THEN json_build_object(..., __basin_sq1.value0) END`.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    CaseWhen, Expr, Ident, Join, JoinConstraint, JoinOperator, Query, Select, SelectItem, SetExpr,
    TableAlias, TableFactor, TableWithJoins, Value, VisitMut, VisitorMut,
};

use super::subqueries::{
    calls_lateral_function, contains_aggregate, inner_columns_of_correlated, is_correlated,
    is_simple, reads_only_catalog,
};

/// Name of the column a lateral subquery's one output gets.
const VALUE_COLUMN: &str = "value";
/// Name of the marker column of a lateral subquery whose output reads outer columns: true
/// where the subquery found a row.
const FOUND_COLUMN: &str = "found";

/// Moves the correlated, non-aggregating scalar subqueries of `select`'s output and `WHERE`
/// into `LEFT JOIN LATERAL`s. `counter` numbers the lateral aliases within a statement.
pub(super) fn lateralize(select: &mut Select, counter: &mut usize) {
    if select.from.is_empty() {
        return;
    }
    let mut collector = Collector {
        depth: 0,
        set_comparisons: HashSet::new(),
        counter,
        laterals: Vec::new(),
    };
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            let _ = expr.visit(&mut collector);
        }
    }
    if let Some(selection) = &mut select.selection {
        let _ = selection.visit(&mut collector);
    }
    let laterals = std::mem::take(&mut collector.laterals);
    if laterals.is_empty() {
        return;
    }
    let mut items = std::mem::take(&mut select.from).into_iter();
    let Some(mut from) = items.next() else {
        return;
    };
    cross_join_all(&mut from, items);
    for (alias, subquery) in laterals {
        from.joins.push(Join {
            relation: TableFactor::Derived {
                lateral: true,
                subquery,
                alias: Some(TableAlias {
                    explicit: true,
                    name: Ident::new(alias),
                    columns: Vec::new(),
                    at: None,
                }),
                sample: None,
            },
            global: false,
            join_operator: JoinOperator::LeftOuter(JoinConstraint::On(Expr::value(
                Value::Boolean(true),
            ))),
        });
    }
    select.from = vec![from];
}

/// `FROM a JOIN b ON x, c` as one join tree, `a JOIN b ON x CROSS JOIN c`, so a lateral join
/// appended to it sees every item.
fn cross_join_all(first: &mut TableWithJoins, rest: impl Iterator<Item = TableWithJoins>) {
    for item in rest {
        let relation = if item.joins.is_empty() {
            item.relation
        } else {
            TableFactor::NestedJoin {
                table_with_joins: Box::new(item),
                alias: None,
            }
        };
        first.joins.push(Join {
            relation,
            global: false,
            join_operator: JoinOperator::CrossJoin(JoinConstraint::None),
        });
    }
}

struct Collector<'a> {
    /// Nesting below the select being rewritten; only its own subqueries are moved.
    depth: usize,
    set_comparisons: HashSet<*const Query>,
    counter: &'a mut usize,
    laterals: Vec<(String, Box<Query>)>,
}

impl VisitorMut for Collector<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        if let Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } = expr
            && let Expr::Subquery(query) = right.as_ref()
        {
            self.set_comparisons
                .insert(std::ptr::from_ref(query.as_ref()));
        }
        let Expr::Subquery(query) = expr else {
            return ControlFlow::Continue(());
        };
        if self
            .set_comparisons
            .contains(&std::ptr::from_ref(query.as_ref()))
            || !is_candidate(query)
        {
            return ControlFlow::Continue(());
        }
        *self.counter += 1;
        let alias = format!("__basin_sq{}", self.counter);
        let mut query = std::mem::replace(query, Box::new(placeholder_query()));
        let mut outer_value = None;
        let inner_columns =
            select_output(&query).and_then(|value| inner_columns_of_correlated(&query, value));
        if let SetExpr::Select(select) = query.body.as_mut()
            && let Some(item) = select.projection.first_mut()
            && let SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. } =
                item
        {
            let value = std::mem::replace(value, Expr::value(Value::Null));
            match inner_columns {
                // The output reads the outer query's columns, which DataFusion cannot take into
                // a lateral subquery: the subquery hands out its own columns (and a marker that
                // it found a row) and the outer query computes the output.
                Some(columns) => {
                    let mut items = vec![SelectItem::ExprWithAlias {
                        expr: Expr::value(Value::Boolean(true)),
                        alias: Ident::new(FOUND_COLUMN),
                    }];
                    let mut computed = value;
                    for (index, column) in columns.into_iter().enumerate() {
                        let name = format!("{VALUE_COLUMN}{index}");
                        let reference =
                            Expr::CompoundIdentifier(vec![Ident::new(&alias), Ident::new(&name)]);
                        let _ = computed.visit(&mut Replace {
                            from: &column,
                            to: &reference,
                        });
                        items.push(SelectItem::ExprWithAlias {
                            expr: column,
                            alias: Ident::new(name),
                        });
                    }
                    select.projection = items;
                    outer_value = Some(Expr::Case {
                        case_token: AttachedToken::empty(),
                        end_token: AttachedToken::empty(),
                        operand: None,
                        conditions: vec![CaseWhen {
                            condition: Expr::CompoundIdentifier(vec![
                                Ident::new(&alias),
                                Ident::new(FOUND_COLUMN),
                            ]),
                            result: computed,
                        }],
                        else_result: None,
                    });
                }
                None => {
                    *item = SelectItem::ExprWithAlias {
                        expr: value,
                        alias: Ident::new(VALUE_COLUMN),
                    };
                }
            }
        }
        *expr = outer_value.unwrap_or_else(|| {
            Expr::CompoundIdentifier(vec![Ident::new(&alias), Ident::new(VALUE_COLUMN)])
        });
        self.laterals.push((alias, query));
        ControlFlow::Continue(())
    }
}

/// Replaces every occurrence of one expression (a column reference) with another.
struct Replace<'a> {
    from: &'a Expr,
    to: &'a Expr,
}

impl VisitorMut for Replace<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if expr == self.from {
            *expr = self.to.clone();
        }
        ControlFlow::Continue(())
    }
}

/// The one output expression of a plain SELECT.
fn select_output(query: &Query) -> Option<&Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    match select.projection.first()? {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => Some(expr),
        _ => None,
    }
}

fn placeholder_query() -> Query {
    super::subqueries::empty_query()
}

/// A single-column, non-aggregating, unlimited plain SELECT that refers to the outer query.
fn is_candidate(query: &Query) -> bool {
    if query.limit_clause.is_some()
        || query.fetch.is_some()
        || query.order_by.is_some()
        || query.with.is_some()
    {
        return false;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    if !is_simple(select) || select.distinct.is_some() || calls_lateral_function(query) {
        return false;
    }
    let projected = match &select.projection[0] {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => expr,
        _ => return false,
    };
    !contains_aggregate(projected) && is_correlated(query) && reads_only_catalog(query)
}
