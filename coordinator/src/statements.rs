//! Statement handling, independent of the wire: parse SQL, describe a statement (parameter and
//! result types), and execute it into an [`Output`]. One module per statement kind; this file
//! only dispatches.

mod ddl;
mod query;
mod settings;
mod show_tables;
mod transaction;

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
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
    /// `BEGIN`: the connection is now in a transaction block.
    TransactionStart(String),
    /// `COMMIT` / `ROLLBACK`: the transaction block ended.
    TransactionEnd(String),
}

/// A parsed statement, ready to describe or execute any number of times.
#[derive(Debug, Clone)]
pub(crate) struct ParsedStatement {
    pub(crate) sql: String,
    pub(crate) statement: DfStatement,
}

/// What a client learns from Describe: parameter types (None = unknown) and result columns.
pub(crate) struct Description {
    pub(crate) parameters: Vec<Option<DataType>>,
    pub(crate) result: Option<SchemaRef>,
}

/// Splits `sql` into statements, with Postgres-only syntax rewritten for DataFusion.
pub(crate) fn parse(sql: &str) -> Result<Vec<ParsedStatement>> {
    let dialect = PostgreSqlDialect {};
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .map_err(|e| Error::syntax(e.to_string()))?;
    let statements = parser
        .parse_statements()
        .map_err(|e| Error::syntax(strip_parser_prefix(&e.to_string())))?;
    Ok(statements
        .into_iter()
        .map(|mut statement| {
            if let DfStatement::Statement(inner) = &mut statement {
                crate::pg_catalog::rewrite(inner);
            }
            ParsedStatement {
                sql: statement.to_string(),
                statement,
            }
        })
        .collect())
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
    /// Parameter and result types of `parsed`, for Describe.
    pub(crate) async fn describe(&self, parsed: &ParsedStatement) -> Result<Description> {
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
        let result = query::returns_rows(&plan)
            .then(|| Arc::new(plan.schema().as_arrow().clone()) as SchemaRef);
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
        let mut plan = state.statement_to_plan(parsed.statement.clone()).await?;
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
        query::execute(self, plan).await
    }
}
