//! `FROM pg_constraint AS con CROSS JOIN UNNEST(conkey) AS conkeys` (ADBC's constraint listing):
//! a set-returning call in `FROM` on a column of the table before it, which Postgres joins
//! laterally and DataFusion cannot plan. When the array reads only that table, the pair
//! becomes one derived table that unnests in its select list, under the table's own alias:
//!
//! ```sql
//! FROM (SELECT con.*, UNNEST(conkey) AS conkeys FROM pg_constraint AS con) AS con
//! ```
//!
//! The unnested column is then reachable by its unqualified name, as such queries use it.

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, JoinOperator, Select, TableAlias, TableFactor, TableWithJoins, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// Rewrites every `table CROSS JOIN UNNEST(array) AS alias` at the start of a `FROM` item.
pub(super) fn inline_lateral_unnest(select: &mut Select) {
    for item in &mut select.from {
        inline_first_join(item);
    }
}

fn inline_first_join(item: &mut TableWithJoins) {
    let Some(join) = item.joins.first() else {
        return;
    };
    if !matches!(join.join_operator, JoinOperator::CrossJoin(_)) {
        return;
    }
    let TableFactor::UNNEST {
        alias: Some(unnest_alias),
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = &join.relation
    else {
        return;
    };
    let [array] = array_exprs.as_slice() else {
        return;
    };
    let TableFactor::Table {
        name,
        alias: table_alias,
        args: None,
        ..
    } = &item.relation
    else {
        return;
    };
    let qualifier = match table_alias {
        Some(alias) if alias.columns.is_empty() => alias.name.clone(),
        Some(_) => return,
        None => match name.0.last().and_then(|part| part.as_ident()) {
            Some(ident) => ident.clone(),
            None => return,
        },
    };
    if !reads_only(array, &qualifier) {
        return;
    }
    let column = match unnest_alias.columns.as_slice() {
        [] => unnest_alias.name.clone(),
        [only] => only.name.clone(),
        _ => return,
    };
    let sql =
        format!("SELECT {qualifier}.*, UNNEST({array}) AS {column} FROM {name} AS {qualifier}");
    let Ok(query) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut parser| parser.parse_query())
    else {
        return;
    };
    item.relation = TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(TableAlias {
            explicit: true,
            name: qualifier,
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    };
    item.joins.remove(0);
}

/// Whether every column `expr` names is unqualified or qualified by `qualifier`.
fn reads_only(expr: &Expr, qualifier: &Ident) -> bool {
    struct Check<'a> {
        qualifier: &'a Ident,
        other: bool,
        subquery: bool,
    }
    impl Visitor for Check<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    let table = &parts[parts.len() - 2];
                    if !table.value.eq_ignore_ascii_case(&self.qualifier.value) {
                        self.other = true;
                    }
                }
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    self.subquery = true;
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut check = Check {
        qualifier,
        other: false,
        subquery: false,
    };
    let _ = expr.visit(&mut check);
    !check.other && !check.subquery
}
