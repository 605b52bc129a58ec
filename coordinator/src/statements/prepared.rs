//! SQL prepared statements, as in Postgres: `PREPARE name [(type, ...)] AS statement`,
//! `EXECUTE name [(value, ...)]` and `DEALLOCATE [PREPARE] name | ALL` (psql users, and drivers
//! that prepare through SQL rather than the protocol).
//!
//! `PREPARE` plans the statement at once, so a bad one fails there, as in Postgres. A prepared
//! statement lives until `DEALLOCATE`, `DISCARD ALL` or the end of the session. `EXECUTE`
//! evaluates its values (constant expressions, cast to the declared types), binds them to the
//! statement's `$1..$n` and runs it as a protocol Bind/Execute would. Names are identifiers:
//! unquoted ones fold to lower case.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{DataType as SqlDataType, Expr, Ident, Statement};

use super::{Description, Output, ParsedStatement};
use crate::error::{Error, Result};
use crate::session::Session;

/// A session's SQL prepared statements, by name.
#[derive(Default)]
pub(crate) struct SqlPrepared(Mutex<HashMap<String, Arc<Prepared>>>);

pub(crate) struct Prepared {
    statement: ParsedStatement,
    /// The types `PREPARE name (...)` declared for `$1..$n`.
    declared: Vec<SqlDataType>,
}

impl SqlPrepared {
    /// `DEALLOCATE name` (`ALL`: every one). A name that was never prepared in SQL may be a
    /// protocol-level statement (psycopg deallocates its own that way), so it is no error.
    pub(crate) fn deallocate(&self, name: &Ident) {
        let mut map = self.lock();
        if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
            map.clear();
        } else {
            map.remove(&key(name));
        }
    }

    /// `DISCARD ALL`.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn get(&self, name: &Ident) -> Result<Arc<Prepared>> {
        self.lock().get(&key(name)).cloned().ok_or_else(|| {
            Error::user(
                "26000",
                format!("prepared statement \"{}\" does not exist", key(name)),
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Prepared>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn key(name: &Ident) -> String {
    match name.quote_style {
        Some(_) => name.value.clone(),
        None => name.value.to_lowercase(),
    }
}

/// Whether this module runs the statement.
pub(super) fn handles(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Prepare { .. } | Statement::Execute { name: Some(_), .. }
    )
}

/// Describe: `EXECUTE` returns what its statement returns; `PREPARE` returns nothing.
pub(super) async fn describe(session: &Session, statement: &Statement) -> Result<Description> {
    let result = match statement {
        Statement::Execute {
            name: Some(name), ..
        } => {
            let prepared = session.prepared.get(single_ident(name)?)?;
            Box::pin(session.describe(&prepared.statement))
                .await?
                .result
        }
        _ => None,
    };
    Ok(Description {
        parameters: Vec::new(),
        result,
    })
}

pub(super) async fn execute(
    session: &Arc<Session>,
    parsed: &ParsedStatement,
    statement: &Statement,
) -> Result<Output> {
    match statement {
        Statement::Prepare {
            name,
            data_types,
            statement,
        } => {
            let mut statement = statement.clone();
            declare_parameter_types(&mut statement, data_types);
            let inner = ParsedStatement {
                sql: statement.to_string(),
                statement: DfStatement::Statement(statement.clone()),
                // `parse` names the prepared statement's columns on the PREPARE.
                output_names: parsed.output_names.clone(),
                stream: None,
                view: None,
            };
            // Postgres prepares queries and DML only.
            let preparable = matches!(
                statement.as_ref(),
                Statement::Query(_)
                    | Statement::Insert(_)
                    | Statement::Update { .. }
                    | Statement::Delete(_)
                    | Statement::Merge { .. }
            );
            if !preparable {
                // Postgres' grammar has no PREPARE of other statements: a syntax error there.
                return Err(Error::syntax(format!(
                    "syntax error at or near \"{}\"",
                    statement_kind(&statement)
                )));
            }
            // Planned now: a statement that cannot run fails at PREPARE, as in Postgres.
            Box::pin(session.describe(&inner)).await?;
            let mut map = session.prepared.lock();
            let key = key(name);
            if map.contains_key(&key) {
                return Err(Error::user(
                    "42P05",
                    format!("prepared statement \"{key}\" already exists"),
                ));
            }
            map.insert(
                key,
                Arc::new(Prepared {
                    statement: inner,
                    declared: data_types.clone(),
                }),
            );
            Ok(Output::Command("PREPARE".to_owned()))
        }
        Statement::Execute {
            name: Some(name),
            parameters,
            using,
            into,
            ..
        } => {
            if !using.is_empty() || !into.is_empty() {
                return Err(Error::syntax("syntax error at or near \"USING\""));
            }
            let name = single_ident(name)?;
            let prepared = session.prepared.get(name)?;
            let description = Box::pin(session.describe(&prepared.statement)).await?;
            let expected = description.parameters.len().max(prepared.declared.len());
            if parameters.len() != expected {
                return Err(Error::user(
                    "42601",
                    format!(
                        "wrong number of parameters for prepared statement \"{}\": expected {expected}, got {}",
                        key(name),
                        parameters.len()
                    ),
                ));
            }
            let mut values = evaluate(session, parameters, &prepared.declared).await?;
            for (value, target) in values.iter_mut().zip(&description.parameters) {
                if let Some(target) = target
                    && value.data_type() != *target
                {
                    *value = value.cast_to(target).map_err(|e| {
                        Error::user(
                            "22P02",
                            format!("invalid value for a parameter of type {target}: {e}"),
                        )
                    })?;
                }
            }
            let params = ParamValues::List(values.into_iter().map(Into::into).collect());
            Box::pin(session.execute(&prepared.statement, Some(params))).await
        }
        other => Err(Error::Internal(format!(
            "not a prepared-statement command: {other}"
        ))),
    }
}

/// Gives `$n` the type `PREPARE name (type, ...)` declared for it: each becomes `$n::type`,
/// which the planner reads as a placeholder of that type (`typed_placeholders`), so
/// `PREPARE p (int) AS SELECT $1` returns an `int4` column, as in Postgres.
fn declare_parameter_types(statement: &mut Statement, declared: &[SqlDataType]) {
    use datafusion::sql::sqlparser::ast::{CastKind, Value, visit_expressions_mut};
    if declared.is_empty() {
        return;
    }
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(id) = &value.value
            && let Some(data_type) = id
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| declared.get(i))
        {
            *expr = Expr::Cast {
                kind: CastKind::DoubleColon,
                expr: Box::new(expr.clone()),
                data_type: data_type.clone(),
                array: false,
                format: None,
            };
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Result column names of a `PREPARE`d statement, as Postgres gives them.
pub(super) fn inner_output_names(statement: &Statement) -> Option<Vec<String>> {
    match statement {
        Statement::Prepare { statement, .. } => crate::pg_catalog::output_names(statement),
        _ => None,
    }
}

fn single_ident(name: &datafusion::sql::sqlparser::ast::ObjectName) -> Result<&Ident> {
    match name.0.as_slice() {
        [part] => part.as_ident().ok_or_else(|| bad_name(name)),
        _ => Err(bad_name(name)),
    }
}

fn bad_name(name: &datafusion::sql::sqlparser::ast::ObjectName) -> Error {
    Error::syntax(format!("invalid prepared statement name \"{name}\""))
}

fn statement_kind(statement: &Statement) -> String {
    statement
        .to_string()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_uppercase()
}

/// The values of `EXECUTE`'s expressions, each cast to its declared type if `PREPARE` gave
/// one: one `SELECT` of constant expressions through the session's planner.
async fn evaluate(
    session: &Arc<Session>,
    parameters: &[Expr],
    declared: &[SqlDataType],
) -> Result<Vec<ScalarValue>> {
    if parameters.is_empty() {
        return Ok(Vec::new());
    }
    let columns = parameters
        .iter()
        .enumerate()
        .map(|(i, expr)| match declared.get(i) {
            Some(data_type) => format!("CAST(({expr}) AS {data_type})"),
            None => format!("({expr})"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let batches = session
        .ctx
        .sql(&format!("SELECT {columns}"))
        .await?
        .collect()
        .await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(Error::Internal("EXECUTE's values gave no row".to_owned()));
    };
    batch
        .columns()
        .iter()
        .map(|column| ScalarValue::try_from_array(column, 0).map_err(Error::from))
        .collect()
}
