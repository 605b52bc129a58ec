//! Statement handling, independent of the wire: parse SQL, describe a statement (parameter and
//! result types), and execute it into an [`Output`]. One module per statement kind; this file
//! only dispatches.

mod change;
pub(crate) use change::not_writable;
mod complexity;
mod copy_to;
pub(crate) use copy_to::{check_local_target, file_access_error};
mod cursors;
mod ddl;
mod mv_ddl;
mod parameters;
mod prepared;
pub(crate) use prepared::SqlPrepared;
mod query;
mod settings;
mod show_tables;
mod stream_ddl;
mod transaction;
mod windows;

pub(crate) use cursors::Cursors;
pub(crate) use ddl::resolve;

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{DFParser, DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{CopyTarget, Statement as SqlStatement};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

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
    /// Set for `EXPLAIN MATERIALIZED VIEW` and `SUBSCRIBE`, which sqlparser does not know.
    pub(crate) view: Option<mv_ddl::ViewCommand>,
}

/// What a client learns from Describe: parameter types (None = unknown) and result columns.
pub(crate) struct Description {
    pub(crate) parameters: Vec<Option<DataType>>,
    pub(crate) result: Option<SchemaRef>,
}

/// Splits `sql` into statements, with Postgres-only syntax rewritten for DataFusion.
pub(crate) fn parse(sql: &str) -> Result<Vec<ParsedStatement>> {
    if let Some((command, statement)) = mv_ddl::extract(sql)? {
        return Ok(vec![ParsedStatement {
            sql: sql.to_owned(),
            statement,
            output_names: None,
            stream: None,
            view: Some(command),
        }]);
    }
    let (sql, emit_on_window_close) = windows::strip_emit_on_window_close(sql);
    let (sql, stream_clauses) = stream_ddl::extract(&sql)?;
    let mut stream_clauses = stream_clauses.into_iter();
    let statements = match parse_in(&sql, &PostgreSqlDialect {}) {
        Ok(statements) => statements,
        // DataFusion's own syntax that Postgres' grammar lacks (`[1, 2]` arrays, `{'a': 1}`
        // structs, `FROM VALUES (...)` without parentheses) parses with DataFusion's default
        // dialect; what parses as Postgres never gets here. Postgres' error if both fail.
        Err(error) if error.sqlstate() == "42601" => {
            let mut statements = parse_in(&sql, &GenericDialect {}).map_err(|_| error)?;
            postgres_operators(&mut statements);
            statements
        }
        Err(error) => return Err(error),
    };
    statements
        .into_iter()
        .map(normalize_reset)
        .map(|mut statement| {
            if let DfStatement::Statement(inner) = &statement
                && let Some(datafusion_copy) = copy_to::as_datafusion(inner)?
            {
                statement = datafusion_copy;
            }
            complexity::check(&statement)?;
            let mut output_names = None;
            if let DfStatement::Statement(inner) = &mut statement {
                output_names = crate::pg_catalog::output_names(inner)
                    .or_else(|| {
                        cursors::declared_query(inner)
                            .and_then(|query| crate::pg_catalog::output_names(&query))
                    })
                    .or_else(|| prepared::inner_output_names(inner));
                windows::rewrite(inner)?;
                if emit_on_window_close {
                    windows::add_emit_option(inner);
                }
                crate::pg_catalog::rewrite(inner);
            }
            Ok(ParsedStatement {
                sql: statement.to_string(),
                statement,
                output_names,
                stream: stream_clauses.next().flatten(),
                view: None,
            })
        })
        .collect()
}

/// Operators the generic dialect reads differently from Postgres get Postgres' meaning: `^` is
/// exponentiation in Postgres, bitwise XOR in the generic dialect.
fn postgres_operators(statements: &mut [DfStatement]) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, visit_expressions_mut};
    for statement in statements {
        if let DfStatement::Statement(inner) = statement {
            let _ = visit_expressions_mut(inner.as_mut(), |expr| {
                if let Expr::BinaryOp { op, .. } = expr
                    && *op == BinaryOperator::BitwiseXor
                {
                    *op = BinaryOperator::PGExp;
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
    }
}

/// The statements of `sql` in `dialect`.
fn parse_in(sql: &str, dialect: &dyn Dialect) -> Result<Vec<DfStatement>> {
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(dialect)
        .build()
        .map_err(|e| Error::syntax(e.to_string()))?;
    parse_statements(&mut parser, dialect).map_err(|e| {
        let message = strip_parser_prefix(&e.to_string());
        if message.contains("RecursionLimitExceeded")
            || message.contains("recursion limit exceeded")
        {
            // Postgres answers a statement nested beyond its stack limit with 54001.
            Error::user("54001", format!("statement too complex: {message}"))
        } else {
            Error::syntax(message)
        }
    })
}

/// [`DFParser::parse_statements`], except that `COPY` in Postgres syntax (`FROM STDIN`, column
/// lists, `WITH (FORMAT ...)`), which DataFusion's own `COPY ... TO` parser refuses, goes to
/// sqlparser's.
fn parse_statements(
    parser: &mut DFParser<'_>,
    dialect: &dyn Dialect,
) -> Result<Vec<DfStatement>, DataFusionError> {
    let mut statements = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while parser.parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        let next = parser.parser.peek_token();
        if next.token == Token::EOF {
            return Ok(statements);
        }
        if expecting_delimiter {
            return parser
                .parser
                .expected("end of statement", next)
                .map_err(Into::into);
        }
        let statement = match parse_postgres_copy(&mut parser.parser, dialect)? {
            Some(copy) => DfStatement::Statement(Box::new(copy)),
            None => parser.parse_statement()?,
        };
        statements.push(statement);
        expecting_delimiter = true;
    }
}

/// A `COPY` statement in Postgres syntax, parsed on its own tokens (sqlparser would otherwise
/// read whatever follows `FROM STDIN;` as inline data). `None`: not a `COPY`, or a `COPY ...
/// TO` only DataFusion's parser knows (`STORED AS`), left to it.
fn parse_postgres_copy(
    parser: &mut Parser<'_>,
    dialect: &dyn Dialect,
) -> Result<Option<SqlStatement>, ParserError> {
    let is_copy = |token: &Token| matches!(token, Token::Word(w) if w.keyword == Keyword::COPY);
    if !is_copy(&parser.peek_token().token) {
        return Ok(None);
    }
    let mut is_copy_to = false;
    let mut not_postgres = false;
    let attempt = parser.try_parse(|parser| {
        let mut tokens = Vec::new();
        let mut depth = 0usize;
        loop {
            let token = parser.peek_token();
            match &token.token {
                Token::EOF => break,
                Token::SemiColon if depth == 0 => break,
                Token::LParen => depth += 1,
                Token::RParen => depth = depth.saturating_sub(1),
                Token::Word(w) if depth == 0 && w.keyword == Keyword::TO => is_copy_to = true,
                _ => {}
            }
            tokens.push(parser.next_token());
        }
        let mut own = Parser::new(dialect).with_tokens_with_locations(tokens);
        let statement = own.parse_statement()?;
        let rest = own.peek_token();
        if rest.token != Token::EOF {
            return own.expected("end of statement", rest);
        }
        if !matches!(statement, SqlStatement::Copy { .. }) {
            // `COPY INTO` (Snowflake): rewind and let DataFusion's parser have it.
            not_postgres = true;
            return own.expected("COPY", rest);
        }
        Ok(statement)
    });
    match attempt {
        Ok(statement) => Ok(Some(statement)),
        Err(_) if is_copy_to || not_postgres => Ok(None),
        Err(error) => Err(error),
    }
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
        | SqlStatement::Deallocate { .. }
        | SqlStatement::Copy { .. } => Some(inner.as_ref()),
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
        // `set_config()` may have changed TimeZone or search_path inside the last query.
        settings::sync_engine_if_changed(self);
        if parsed.stream.is_some() {
            return Ok(Description {
                parameters: Vec::new(),
                result: None,
            });
        }
        if parsed.view.is_some() || mv_ddl::handles(&parsed.statement) {
            return Ok(Description {
                parameters: Vec::new(),
                result: mv_ddl::result_schema(self, &parsed.statement, parsed.view.as_ref())
                    .await?,
            });
        }
        if let DfStatement::Statement(inner) = &parsed.statement
            && cursors::handles(inner)
        {
            return Ok(match inner.as_ref() {
                SqlStatement::Fetch { name, .. } => Description {
                    parameters: Vec::new(),
                    result: self.cursors.schema_of(&cursors::cursor_name(name)),
                },
                // A DECLARE takes its query's parameters.
                SqlStatement::Declare { .. } => match cursors::declared_statement(parsed) {
                    Some(query) => Description {
                        parameters: Box::pin(self.describe(&query)).await?.parameters,
                        result: None,
                    },
                    None => Description {
                        parameters: Vec::new(),
                        result: None,
                    },
                },
                _ => Description {
                    parameters: Vec::new(),
                    result: None,
                },
            });
        }
        if let DfStatement::Statement(inner) = &parsed.statement
            && prepared::handles(inner)
        {
            return prepared::describe(self, inner).await;
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
            let schema = rename_columns(
                Arc::new(plan.schema().as_arrow().clone()),
                parsed.output_names.clone(),
            );
            crate::pg_catalog::with_origins(schema, &self.column_origins(&plan))
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
        // `set_config()` may have changed TimeZone or search_path inside the last query.
        settings::sync_engine_if_changed(self);
        if let Some(clause) = &parsed.stream {
            return stream_ddl::execute(self, &parsed.statement, clause).await;
        }
        if parsed.view.is_some() || mv_ddl::handles(&parsed.statement) {
            return mv_ddl::execute(self, &parsed.statement, parsed.view.as_ref()).await;
        }
        if let DfStatement::Statement(inner) = &parsed.statement
            && cursors::handles(inner)
        {
            return cursors::execute(self, parsed, inner, params).await;
        }
        if let DfStatement::Statement(inner) = &parsed.statement
            && prepared::handles(inner)
        {
            return prepared::execute(self, parsed, inner).await;
        }
        if let Some(statement) = utility(&parsed.statement) {
            return match statement {
                SqlStatement::ShowTables { .. } => show_tables::execute(self),
                SqlStatement::Copy { to, target, .. } => Err(copy_not_here(*to, target)),
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
        let validity = self.constant_validity();
        let no_params = params.as_ref().is_none_or(params_empty);
        let state = self.ctx.state();
        tracing::debug!(
            sql = %basin_catalog::object_stores::redact_sql(&parsed.sql),
            "execute"
        );
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
        let constant = no_params && crate::session::constants::is_constant(&plan);
        let origins = self.column_origins(&plan);
        let log = self
            .server
            .queries
            .start(self.vars.backend_pid, &self.vars.user, &parsed.sql);
        match Box::pin(query::execute(self, state, plan, &log)).await {
            Ok(Output::Rows { schema, stream }) => {
                let schema = crate::pg_catalog::with_origins(
                    rename_columns(schema, parsed.output_names.clone()),
                    &origins,
                );
                let stream = if constant {
                    self.constants
                        .record(&parsed.sql, validity, Arc::clone(&schema), stream)
                } else {
                    stream
                };
                Ok(Output::Rows {
                    schema,
                    stream: log.track(stream),
                })
            }
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

impl Session {
    /// Source table OID and column number of each result column of `plan`, for RowDescription.
    fn column_origins(&self, plan: &LogicalPlan) -> Vec<Option<(u32, i16)>> {
        // Read in place: `ctx.state()` would clone the whole session state for one string.
        let default_schema = self
            .ctx
            .state_ref()
            .read()
            .config()
            .options()
            .catalog
            .default_schema
            .clone();
        crate::pg_catalog::column_origins(
            plan,
            &self.server.catalog.snapshot(),
            &self.vars.database,
            &default_schema,
        )
    }
}

impl ParsedStatement {
    /// The command tag word of a statement that returns rows: `FETCH` for cursor reads,
    /// `SELECT` otherwise.
    pub(crate) fn rows_tag(&self) -> &'static str {
        match &self.statement {
            DfStatement::Statement(inner)
                if matches!(inner.as_ref(), SqlStatement::Fetch { .. }) =>
            {
                "FETCH"
            }
            _ => "SELECT",
        }
    }
}

/// Whether `params` binds nothing.
pub(crate) fn params_empty(params: &ParamValues) -> bool {
    match params {
        ParamValues::List(values) => values.is_empty(),
        ParamValues::Map(values) => values.is_empty(),
    }
}

/// `COPY ... FROM STDIN` runs in the wire layer, which owns the client's data stream; the
/// other forms are not supported.
fn copy_not_here(to: bool, target: &CopyTarget) -> Error {
    match (to, target) {
        (true, _) => Error::unsupported(
            "COPY ... TO PROGRAM is not supported; COPY ... TO a file or an s3:// URL is",
        ),
        (false, CopyTarget::Stdin) => {
            Error::unsupported("COPY ... FROM STDIN needs a client that sends the data")
        }
        (false, _) => Error::User {
            sqlstate: "0A000",
            message: "COPY ... FROM a file or program on the server is not supported".to_owned(),
            hint: Some(
                "send the data from the client: COPY ... FROM STDIN, or \\copy in psql".to_owned(),
            ),
        },
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
        _ if schema
            .fields()
            .iter()
            .any(|f| crate::pg_catalog::duplicate_column_name(f.name()).is_some()) =>
        {
            Arc::new(arrow::datatypes::Schema::new(
                schema
                    .fields()
                    .iter()
                    .map(
                        |field| match crate::pg_catalog::duplicate_column_name(field.name()) {
                            Some(name) => field.as_ref().clone().with_name(name),
                            None => field.as_ref().clone(),
                        },
                    )
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
