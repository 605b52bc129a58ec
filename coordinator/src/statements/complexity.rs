//! Statements too deep to plan are refused before planning, with SQLSTATE 54001 as Postgres
//! answers a statement that exceeds its stack depth.
//!
//! sqlparser bounds how deeply it recurses (parentheses, subqueries), but it builds chains of
//! binary operators (`1 + 1 + ...`, `a OR b OR ...`) and set operations (`SELECT ... UNION ALL
//! SELECT ...`) in a loop, so a statement of a few hundred kilobytes yields a tree tens of
//! thousands of levels deep. DataFusion's analyzer and optimizer walk such trees recursively
//! and several passes are quadratic in depth: measured on a debug build, a 1,000-term sum
//! plans in 3.8 s, 2,000 terms in 15 s, 8,000 in 6 minutes, and 50,000 overflowed the stack
//! and aborted the coordinator. The limits below are far beyond what people and BI tools
//! write (long value lists are `IN (...)`, one node however long).

use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Visit, Visitor};

use crate::error::Error;

/// Deepest expression nesting accepted.
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 1_000;
/// Most set operations (`UNION`, `INTERSECT`, `EXCEPT`) in one query body.
pub(crate) const MAX_SET_OPERATIONS: usize = 1_000;

/// Refuses `statement` when it is nested deeper than Basin plans.
pub(crate) fn check(statement: &DfStatement) -> Result<(), Error> {
    match statement {
        DfStatement::Statement(inner) => check_node(inner.as_ref()),
        DfStatement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(query) => check_node(query.as_ref()),
            CopyToSource::Relation(_) => Ok(()),
        },
        DfStatement::Explain(explain) => check(&explain.statement),
        DfStatement::CreateExternalTable(_) | DfStatement::Reset(_) => Ok(()),
    }
}

fn check_node<T: Visit>(statement: &T) -> Result<(), Error> {
    let mut depth = Depth::default();
    match statement.visit(&mut depth) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(what) => Err(Error::User {
            sqlstate: "54001",
            message: format!("statement too complex: {what}"),
            hint: Some(
                "write long chains of OR or = as IN (...) lists, or split the statement".into(),
            ),
        }),
    }
}

#[derive(Default)]
struct Depth {
    expression: usize,
}

impl Visitor for Depth {
    type Break = String;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        let operations = set_operations(&query.body, MAX_SET_OPERATIONS + 1);
        if operations > MAX_SET_OPERATIONS {
            return ControlFlow::Break(format!(
                "more than {MAX_SET_OPERATIONS} UNION/INTERSECT/EXCEPT operations in one query"
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<String> {
        self.expression += 1;
        if self.expression > MAX_EXPRESSION_DEPTH {
            return ControlFlow::Break(format!(
                "expressions nested more than {MAX_EXPRESSION_DEPTH} levels deep"
            ));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<String> {
        self.expression = self.expression.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

/// Set operations in `body` (not in its subqueries, which the visitor reaches on its own),
/// counted up to `cap`. Walks the left spine in a loop, where parsers put chains.
fn set_operations(body: &SetExpr, cap: usize) -> usize {
    let mut count = 0;
    let mut current = body;
    loop {
        match current {
            SetExpr::SetOperation { left, right, .. } => {
                count += 1;
                if count >= cap {
                    return count;
                }
                count += set_operations(right, cap - count);
                current = left;
            }
            _ => return count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn verdict(sql: &str) -> Result<(), Error> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        statements.iter().try_for_each(check_node)
    }

    fn sqlstate(result: Result<(), Error>) -> &'static str {
        result.map_or_else(|err| err.sqlstate(), |()| "ok")
    }

    #[test]
    fn long_chains_are_refused_with_54001() {
        let sum = |n: usize| format!("SELECT {}", vec!["1"; n].join(" + "));
        assert_eq!(sqlstate(verdict(&sum(900))), "ok");
        assert_eq!(sqlstate(verdict(&sum(5_000))), "54001");
        let union = |n: usize| {
            (0..n)
                .map(|i| format!("SELECT {i}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        };
        assert_eq!(sqlstate(verdict(&union(500))), "ok");
        assert_eq!(sqlstate(verdict(&union(3_000))), "54001");
        let in_list = (0..100_000).map(|i| i.to_string()).collect::<Vec<_>>();
        let wide = format!("SELECT 1 WHERE 5 IN ({})", in_list.join(", "));
        assert_eq!(sqlstate(verdict(&wide)), "ok");
    }

    #[test]
    fn subqueries_in_expressions_count_their_own_depth() {
        let sql = format!(
            "SELECT (SELECT {}) + (SELECT {})",
            vec!["1"; 600].join(" + "),
            vec!["1"; 600].join(" + ")
        );
        assert_eq!(sqlstate(verdict(&sql)), "ok");
    }
}
