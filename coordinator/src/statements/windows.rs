//! Window table functions, rewritten into plain SQL before planning so that the views using
//! them stay ordinary (and incrementally maintainable) queries:
//!
//! - `TUMBLE(table, ts, size)`: every row of `table` with `window_start = date_bin(size, ts)`
//!   and `window_end = window_start + size`;
//! - `HOP(table, ts, slide, size)`: every row once per window of width `size` starting every
//!   `slide` that holds it (`size` a multiple of `slide`), with the same two columns.
//!
//! Also recognises the `EMIT ON WINDOW CLOSE` clause of `CREATE MATERIALIZED VIEW`, which
//! sqlparser does not know, and turns it into the view option `emit = 'on_window_close'`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CreateTableOptions, Expr as SqlExpr, FunctionArg, FunctionArgExpr, Ident, Query, SqlOption,
    Statement, TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// Rewrites every `TUMBLE(...)` / `HOP(...)` in `statement` into a derived table.
pub(super) fn rewrite(statement: &mut Statement) -> Result<()> {
    let mut rewriter = WindowRewriter { error: None };
    let _ = statement.visit(&mut rewriter);
    match rewriter.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

struct WindowRewriter {
    error: Option<Error>,
}

impl VisitorMut for WindowRewriter {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        match window_table(factor) {
            Ok(Some(derived)) => *factor = derived,
            Ok(None) => {}
            Err(error) => {
                self.error = Some(error);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

fn window_table(factor: &TableFactor) -> Result<Option<TableFactor>> {
    let TableFactor::Table {
        name, alias, args, ..
    } = factor
    else {
        return Ok(None);
    };
    let Some(args) = args else {
        return Ok(None);
    };
    let function = name.to_string().to_ascii_lowercase();
    let arity = match function.as_str() {
        "tumble" => 3,
        "hop" => 4,
        _ => return Ok(None),
    };
    let usage = if arity == 3 {
        "TUMBLE(table, time_column, size)"
    } else {
        "HOP(table, time_column, slide, size)"
    };
    let exprs: Vec<&SqlExpr> = args
        .args
        .iter()
        .filter_map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
            _ => None,
        })
        .collect();
    if exprs.len() != arity || args.args.len() != arity {
        return Err(Error::user(
            "42883",
            format!(
                "{} takes {arity} arguments: {usage}",
                function.to_uppercase()
            ),
        ));
    }
    let table = match exprs[0] {
        SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_) => exprs[0].to_string(),
        other => {
            return Err(Error::user(
                "42601",
                format!("the first argument of {usage} must name a table, not {other}"),
            ));
        }
    };
    let time = exprs[1].to_string();
    let inner = if arity == 3 {
        let size = exprs[2];
        format!(
            "SELECT *, date_bin({size}, {time}) AS window_start, \
             date_bin({size}, {time}) + {size} AS window_end FROM {table}"
        )
    } else {
        let (slide, size) = (exprs[2], exprs[3]);
        format!(
            "SELECT *, window_start + {size} AS window_end FROM (SELECT *, \
             unnest(range(date_bin({slide}, {time}) - ({size} - {slide}), \
             date_bin({slide}, {time}) + {slide}, {slide})) AS window_start FROM {table}) AS basin_hop"
        )
    };
    let dialect = PostgreSqlDialect {};
    let subquery: Box<Query> = Parser::new(&dialect)
        .try_with_sql(&inner)
        .and_then(|mut parser| parser.parse_query())
        .map_err(|e| Error::syntax(format!("in {usage}: {e}")))?;
    let alias = alias.clone().or_else(|| {
        let last = match exprs[0] {
            SqlExpr::Identifier(ident) => ident.clone(),
            SqlExpr::CompoundIdentifier(parts) => parts
                .last()
                .cloned()
                .unwrap_or_else(|| Ident::new("window")),
            _ => Ident::new("window"),
        };
        Some(TableAlias {
            explicit: true,
            name: last,
            columns: Vec::new(),
            at: None,
        })
    });
    Ok(Some(TableFactor::Derived {
        lateral: false,
        subquery,
        alias,
        sample: None,
    }))
}

/// Cuts a trailing `EMIT ON WINDOW CLOSE` off a `CREATE MATERIALIZED VIEW` statement; true if
/// it was there.
pub(super) fn strip_emit_on_window_close(sql: &str) -> (String, bool) {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    let lower = trimmed.to_ascii_lowercase();
    let normalized: Vec<&str> = lower.split_whitespace().collect();
    let is_create =
        normalized.len() > 4 && normalized[0] == "create" && normalized.contains(&"materialized");
    let ends = normalized.ends_with(&["emit", "on", "window", "close"]);
    if !(is_create && ends) {
        return (sql.to_owned(), false);
    }
    // Remove the last four words.
    let mut end = trimmed.len();
    for _ in 0..4 {
        let before = trimmed[..end].trim_end();
        end = before.rfind(char::is_whitespace).map_or(0, |at| at + 1);
    }
    (trimmed[..end].to_owned(), true)
}

/// Adds `emit = 'on_window_close'` to a `CREATE MATERIALIZED VIEW`'s options.
pub(super) fn add_emit_option(statement: &mut Statement) {
    let Statement::CreateView(view) = statement else {
        return;
    };
    let option = SqlOption::KeyValue {
        key: Ident::new("emit"),
        value: SqlExpr::Value(Value::SingleQuotedString("on_window_close".to_owned()).into()),
    };
    match &mut view.options {
        CreateTableOptions::With(options) | CreateTableOptions::Options(options) => {
            options.push(option);
        }
        other => *other = CreateTableOptions::With(vec![option]),
    }
}
