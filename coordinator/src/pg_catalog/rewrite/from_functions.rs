//! Functions called in `FROM` as Postgres reads them.
//!
//! * A set-returning function of one column with an alias but no column list
//!   (`generate_series(1, 3) AS i`): Postgres names the column after the alias too, DataFusion
//!   keeps its own name (`value`). The alias gains the column list: `AS i(i)`.
//! * A scalar function called in `FROM`: Postgres makes it a one-row table whose one column is
//!   named by the alias (`FROM string_to_array(current_setting('search_path'), ',') s` gives
//!   column `s`; Grafana's table listing reads `s[i]` from it). DataFusion looks such names up
//!   as table functions only, so the call becomes a derived table:
//!
//! ```sql
//! FROM (SELECT string_to_array(current_setting('search_path'), ',') AS s) AS s
//! ```
//!
//! Only the scalar functions below are recognised: the others named in `FROM` are table
//! functions (`generate_series`, `unnest`) and stay as they are.
//! * `FROM VALUES (1, 'a') AS t(n, s)` without parentheses around `VALUES` (DataFusion's
//!   syntax; Postgres refuses it): the Postgres grammar reads a call of a function `values`,
//!   which becomes the derived table `(VALUES (1, 'a')) AS t(n, s)`. (With more than one row
//!   the statement does not parse as Postgres at all and DataFusion's dialect reads it.)

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, ObjectNamePart, SetExpr, TableAlias, TableAliasColumnDef,
    TableFactor, TableFunctionArgs,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Set-returning functions of one column.
const SINGLE_COLUMN_FUNCTIONS: &[&str] = &["generate_series", "unnest"];

/// Scalar functions clients call in `FROM`.
const SCALAR_FUNCTIONS: &[&str] = &["string_to_array", "current_schemas", "parse_ident"];

/// Rewrites `factor` in place if it is one of the calls above.
pub(super) fn rewrite_function_in_from(factor: &mut TableFactor) {
    name_single_column(factor);
    scalar_call_in_from(factor);
    values_call_in_from(factor);
}

fn values_call_in_from(factor: &mut TableFactor) {
    let Some((function, args, alias)) = unquoted_call(factor) else {
        return;
    };
    if !function.eq_ignore_ascii_case("values") {
        return;
    }
    let Some(row) = args
        .args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr.clone()),
            _ => None,
        })
        .collect::<Option<Vec<Expr>>>()
    else {
        return;
    };
    let Ok(mut query) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql("VALUES (NULL)")
        .and_then(|mut parser| parser.parse_query())
    else {
        return;
    };
    let SetExpr::Values(values) = query.body.as_mut() else {
        return;
    };
    let Some(only) = values.rows.first_mut() else {
        return;
    };
    only.content = row;
    *factor = TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: alias.cloned(),
        sample: None,
    };
}

/// A call of an unquoted, unqualified name in `FROM`: the name, its arguments and its alias.
fn unquoted_call(factor: &TableFactor) -> Option<(&str, &TableFunctionArgs, Option<&TableAlias>)> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        ..
    } = factor
    else {
        return None;
    };
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(function)] if function.quote_style.is_none() => {
            Some((function.value.as_str(), args, alias.as_ref()))
        }
        _ => None,
    }
}

fn name_single_column(factor: &mut TableFactor) {
    let TableFactor::Table {
        name,
        args: Some(_),
        alias: Some(alias),
        ..
    } = factor
    else {
        return;
    };
    let [ObjectNamePart::Identifier(function)] = name.0.as_slice() else {
        return;
    };
    if alias.columns.is_empty()
        && function.quote_style.is_none()
        && SINGLE_COLUMN_FUNCTIONS.contains(&function.value.to_ascii_lowercase().as_str())
    {
        alias.columns = vec![TableAliasColumnDef {
            name: alias.name.clone(),
            data_type: None,
        }];
    }
}

fn scalar_call_in_from(factor: &mut TableFactor) {
    let Some((function, args, alias)) = unquoted_call(factor) else {
        return;
    };
    if !SCALAR_FUNCTIONS.contains(&function.to_ascii_lowercase().as_str()) {
        return;
    }
    let function = datafusion::sql::sqlparser::ast::Ident::new(function);
    let alias = alias.cloned().unwrap_or_else(|| TableAlias {
        explicit: true,
        name: function.clone(),
        columns: Vec::new(),
        at: None,
    });
    let column = match alias.columns.as_slice() {
        [] => alias.name.clone(),
        [only] => only.name.clone(),
        _ => return,
    };
    let arguments = args
        .args
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {function}({arguments}) AS {column}");
    let Ok(query) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut parser| parser.parse_query())
    else {
        return;
    };
    *factor = TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(TableAlias {
            explicit: true,
            name: alias.name,
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    };
}
