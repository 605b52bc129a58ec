//! Statement handling, independent of the wire: parse SQL, describe a statement (parameter and
//! result types), and execute it into an [`Output`]. One module per statement kind; this file
//! only dispatches.

mod ddl;
mod query;
mod settings;
mod show_tables;
mod stream_ddl;
mod transaction;

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

use crate::error::{Error, Result};
use crate::session::Session;

/// What a statement produced.
pub(crate) enum Output {
    /// Rows, streamed as they are computed.
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// A command's completion tag, e.g. `CREATE TABLE` or `INSERT 0 3`.
    Command(String),
    /// `BEGIN` or `ROLLBACK TO SAVEPOINT`: the connection is now in a healthy transaction block.
    TransactionStart(String),
    /// `COMMIT` / `ROLLBACK`: the transaction block ended.
    TransactionEnd(String),
}

/// A parsed statement, ready to describe or execute any number of times.
#[derive(Debug, Clone)]
pub(crate) struct ParsedStatement {
    pub(crate) sql: String,
    pub(crate) statement: DfStatement,
    /// Result column names as Postgres gives them, figured before rewriting.
    pub(crate) output_names: Option<Vec<String>>,
    /// Set for `CREATE TABLE ... APPEND ONLY`: what the parser could not see.
    pub(crate) stream: Option<stream_ddl::StreamClause>,
}

/// What a client learns from Describe: parameter types (None = unknown) and result columns.
pub(crate) struct Description {
    pub(crate) parameters: Vec<Option<DataType>>,
    pub(crate) result: Option<SchemaRef>,
}

/// Splits `sql` into statements, with Postgres-only syntax rewritten for DataFusion.
pub(crate) fn parse(sql: &str) -> Result<Vec<ParsedStatement>> {
    let (sql, stream_clauses) = stream_ddl::extract(sql)?;
    let mut stream_clauses = stream_clauses.into_iter();
    let dialect = PostgreSqlDialect {};
    let mut parser = DFParserBuilder::new(sql.as_str())
        .with_dialect(&dialect)
        .build()
        .map_err(|e| Error::syntax(e.to_string()))?;
    let statements = parser
        .parse_statements()
        .map_err(|e| Error::syntax(strip_parser_prefix(&e.to_string())))?;
    Ok(statements
        .into_iter()
        .map(normalize_reset)
        .map(|mut statement| {
            let mut output_names = None;
            if let DfStatement::Statement(inner) = &mut statement {
                output_names = crate::pg_catalog::output_names(inner);
                crate::pg_catalog::rewrite(inner);
            }
            ParsedStatement {
                sql: statement.to_string(),
                statement,
                output_names,
                stream: stream_clauses.next().flatten(),
            }
        })
        .collect())
}

/// DataFusion's parser has its own `RESET` node; Basin handles sqlparser's, with `RESET ALL`.
fn normalize_reset(statement: DfStatement) -> DfStatement {
    use datafusion::sql::parser::ResetStatement as DfReset;
    use datafusion::sql::sqlparser::ast::{Reset, ResetStatement};
    match statement {
        DfStatement::Reset(DfReset::Variable(name)) => {
            let reset = if name.to_string().eq_ignore_ascii_case("all") {
                Reset::ALL
            } else {
                Reset::ConfigurationParameter(name)
            };
            DfStatement::Statement(Box::new(SqlStatement::Reset(ResetStatement { reset })))
        }
        other => other,
    }
}

fn strip_parser_prefix(message: &str) -> String {
    let message = message
        .trim_start_matches("SQL error: ")
        .trim_start_matches("ParserError(\"")
        .trim_end_matches("\")");
    let message = message.trim_start_matches("sql parser error: ");
    format!("syntax error: {message}")
}

/// Statements Basin answers itself rather than through DataFusion's planner.
fn utility(statement: &DfStatement) -> Option<&SqlStatement> {
    let DfStatement::Statement(inner) = statement else {
        return None;
    };
    match inner.as_ref() {
        SqlStatement::Set(_)
        | SqlStatement::ShowVariable { .. }
        | SqlStatement::ShowVariables { .. }
        | SqlStatement::Reset(_)
        | SqlStatement::ShowTables { .. }
        | SqlStatement::StartTransaction { .. }
        | SqlStatement::Commit { .. }
        | SqlStatement::Rollback { .. }
        | SqlStatement::Savepoint { .. }
        | SqlStatement::ReleaseSavepoint { .. }
        | SqlStatement::Discard { .. }
        | SqlStatement::Deallocate { .. } => Some(inner.as_ref()),
        _ => None,
    }
}

impl Session {
    /// Brings the DataFusion session in line with the settings (search_path, TimeZone); called
    /// once the start-up packet's settings are in place.
    pub(crate) fn sync_engine_settings(&self) {
        settings::sync_engine(self);
    }

    /// Parameter and result types of `parsed`, for Describe.
    pub(crate) async fn describe(&self, parsed: &ParsedStatement) -> Result<Description> {
        if parsed.stream.is_some() {
            return Ok(Description {
                parameters: Vec::new(),
                result: None,
            });
        }
        if let Some(statement) = utility(&parsed.statement) {
            return Ok(Description {
                parameters: Vec::new(),
                result: settings::result_schema(statement),
            });
        }
        let plan = self
            .ctx
            .state()
            .statement_to_plan(parsed.statement.clone())
            .await?;
        let plan = typed_placeholders(plan)?;
        let types = plan.get_parameter_types()?;
        let mut parameters: Vec<(usize, Option<DataType>)> = types
            .into_iter()
            .filter_map(|(name, ty)| {
                let index = name.trim_start_matches('$').parse::<usize>().ok()?;
                Some((index, ty))
            })
            .collect();
        parameters.sort_by_key(|(i, _)| *i);
        let count = parameters.last().map(|(i, _)| *i).unwrap_or(0);
        let mut ordered = vec![None; count];
        for (index, ty) in parameters {
            if let Some(slot) = index.checked_sub(1).and_then(|i| ordered.get_mut(i)) {
                *slot = ty;
            }
        }
        let result = query::returns_rows(&plan).then(|| {
            rename_columns(
                Arc::new(plan.schema().as_arrow().clone()),
                parsed.output_names.clone(),
            )
        });
        Ok(Description {
            parameters: ordered,
            result,
        })
    }

    /// Runs one statement with `params` bound to `$1..$n`.
    pub(crate) async fn execute(
        self: &Arc<Self>,
        parsed: &ParsedStatement,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        if let Some(clause) = &parsed.stream {
            return stream_ddl::execute(self, &parsed.statement, clause).await;
        }
        if let Some(statement) = utility(&parsed.statement) {
            return match statement {
                SqlStatement::ShowTables { .. } => show_tables::execute(self),
                SqlStatement::StartTransaction { .. }
                | SqlStatement::Commit { .. }
                | SqlStatement::Rollback { .. }
                | SqlStatement::Savepoint { .. }
                | SqlStatement::ReleaseSavepoint { .. }
                | SqlStatement::Discard { .. }
                | SqlStatement::Deallocate { .. } => transaction::execute(self, statement),
                _ => settings::execute(self, statement),
            };
        }
        let state = self.ctx.state();
        tracing::debug!(sql = %parsed.sql, "execute");
        let mut plan =
            typed_placeholders(state.statement_to_plan(parsed.statement.clone()).await?)?;
        if let Some(params) = params {
            plan = plan.with_param_values(params)?;
        } else if !plan.get_parameter_types()?.is_empty() {
            return Err(Error::user(
                "08P01",
                "statement has parameters but none were bound",
            ));
        }
        if let Some(output) = ddl::execute(self, &parsed.statement, &plan).await? {
            return Ok(output);
        }
        let log = self
            .server
            .queries
            .start(self.vars.backend_pid, &self.vars.user, &parsed.sql);
        match query::execute(self, plan, &log).await {
            Ok(Output::Rows { schema, stream }) => Ok(Output::Rows {
                schema: rename_columns(schema, parsed.output_names.clone()),
                stream: log.track(stream),
            }),
            Ok(other) => {
                log.finish();
                Ok(other)
            }
            Err(err) => {
                log.fail(&err.message());
                Err(err)
            }
        }
    }
}

/// `$1::int` gives the parameter the cast's type, as Postgres infers it; DataFusion leaves a
/// placeholder under a cast untyped.
fn typed_placeholders(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{Cast, Expr, expr::Placeholder};
    let typed = plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|e| match e {
                Expr::Cast(Cast { expr, field }) => match *expr {
                    Expr::Placeholder(Placeholder { id, field: None }) => {
                        let typed = std::sync::Arc::new(arrow::datatypes::Field::new(
                            &id,
                            field.data_type().clone(),
                            true,
                        ));
                        Ok(Transformed::yes(Expr::Cast(Cast {
                            expr: Box::new(Expr::Placeholder(Placeholder {
                                id,
                                field: Some(typed),
                            })),
                            field,
                        })))
                    }
                    inner => Ok(Transformed::no(Expr::Cast(Cast {
                        expr: Box::new(inner),
                        field,
                    }))),
                },
                other => Ok(Transformed::no(other)),
            })
        })
    })?;
    Ok(typed.data)
}

/// The result schema with Postgres-style names, when they are known for every column.
fn rename_columns(schema: SchemaRef, names: Option<Vec<String>>) -> SchemaRef {
    match names {
        Some(names) if names.len() == schema.fields().len() => {
            Arc::new(arrow::datatypes::Schema::new(
                schema
                    .fields()
                    .iter()
                    .zip(names)
                    .map(|(field, name)| field.as_ref().clone().with_name(name))
                    .collect::<Vec<_>>(),
            ))
        }
        _ => schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_columns_keep_postgres_names_including_duplicates() {
        let parsed = parse("select 1, 1, count(*), a, t.b, 'x'::int, c as d, version() from t")
            .expect("parse");
        let expected: Vec<String> = [
            "?column?", "?column?", "count", "a", "b", "int4", "d", "version",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(parsed[0].output_names.as_ref(), Some(&expected));
        assert_eq!(
            parse("select * from t").expect("parse")[0].output_names,
            None
        );
    }
}
