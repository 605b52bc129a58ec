//! SQL cursors: `DECLARE name CURSOR FOR query`, `FETCH [FORWARD] n FROM name`, `CLOSE name`
//! (psycopg2's and psycopg 3's named cursors, SQLAlchemy's `stream_results`).
//!
//! A cursor holds its query's running result stream, so `FETCH` pulls only the rows it returns
//! and a large result is never materialised. Cursors are forward-only (Postgres' `NO SCROLL`);
//! a backward move fails with 55000 as Postgres' does for such cursors. Without `WITH HOLD` a
//! cursor lives until its transaction block ends and can only be declared inside one (25P01);
//! `WITH HOLD` cursors stay open until `CLOSE`, `DISCARD ALL` or the end of the session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CloseCursor, Declare, FetchDirection, Ident, Query, Statement as SqlStatement, Value,
};
use futures::StreamExt;

use super::{Output, ParsedStatement};
use crate::error::{Error, Result};
use crate::session::Session;

/// A session's open cursors and whether it is inside a transaction block.
#[derive(Default)]
pub(crate) struct Cursors {
    open: Mutex<HashMap<String, Cursor>>,
    in_block: AtomicBool,
}

struct Cursor {
    schema: SchemaRef,
    /// `None` while a FETCH is reading from it.
    stream: Option<SendableRecordBatchStream>,
    /// Rows of the last batch that the previous FETCH did not return.
    leftover: Option<RecordBatch>,
    hold: bool,
}

impl Cursors {
    /// `BEGIN`: cursors may be declared now.
    pub(crate) fn begin_block(&self) {
        self.in_block.store(true, Ordering::SeqCst);
    }

    /// `COMMIT` or `ROLLBACK`: cursors declared without `WITH HOLD` close.
    pub(crate) fn end_block(&self) {
        self.in_block.store(false, Ordering::SeqCst);
        self.lock().retain(|_, cursor| cursor.hold);
    }

    /// `DISCARD ALL`: every cursor closes, held ones too.
    pub(crate) fn close_all(&self) {
        self.lock().clear();
    }

    /// The result columns of an open cursor, for Describe of a `FETCH`.
    pub(crate) fn schema_of(&self, name: &str) -> Option<SchemaRef> {
        self.lock().get(name).map(|c| SchemaRef::clone(&c.schema))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cursor>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the statement is one of the cursor statements this module runs.
pub(super) fn handles(statement: &SqlStatement) -> bool {
    matches!(
        statement,
        SqlStatement::Declare { .. } | SqlStatement::Fetch { .. } | SqlStatement::Close { .. }
    )
}

/// The query of `DECLARE ... CURSOR FOR query`, for naming its output columns.
pub(super) fn declared_query(statement: &SqlStatement) -> Option<SqlStatement> {
    let SqlStatement::Declare { stmts } = statement else {
        return None;
    };
    let query = stmts.first()?.for_query.as_ref()?;
    Some(SqlStatement::Query(query.clone()))
}

/// The query of a `DECLARE` as a statement of its own, to describe or run.
pub(super) fn declared_statement(parsed: &ParsedStatement) -> Option<ParsedStatement> {
    let DfStatement::Statement(inner) = &parsed.statement else {
        return None;
    };
    let SqlStatement::Declare { stmts } = inner.as_ref() else {
        return None;
    };
    let query = stmts.first()?.for_query.as_ref()?;
    Some(query_statement(parsed, query))
}

fn query_statement(parsed: &ParsedStatement, query: &Query) -> ParsedStatement {
    ParsedStatement {
        sql: query.to_string(),
        statement: DfStatement::Statement(Box::new(SqlStatement::Query(Box::new(query.clone())))),
        output_names: parsed.output_names.clone(),
        stream: None,
        view: None,
    }
}

/// The name a cursor is known by: quoted names as written, others folded to lower case.
pub(super) fn cursor_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

pub(super) async fn execute(
    session: &std::sync::Arc<Session>,
    parsed: &ParsedStatement,
    statement: &SqlStatement,
    params: Option<ParamValues>,
) -> Result<Output> {
    match statement {
        SqlStatement::Declare { stmts } => match stmts.as_slice() {
            [declare] => declare_cursor(session, parsed, declare, params).await,
            _ => Err(Error::unsupported("DECLARE of several cursors at once")),
        },
        SqlStatement::Fetch {
            name, direction, ..
        } => fetch(session, &cursor_name(name), direction).await,
        SqlStatement::Close { cursor } => {
            let mut open = session.cursors.lock();
            match cursor {
                CloseCursor::All => {
                    open.clear();
                    Ok(Output::Command("CLOSE CURSOR ALL".to_owned()))
                }
                CloseCursor::Specific { name } => {
                    let name = cursor_name(name);
                    match open.remove(&name) {
                        Some(_) => Ok(Output::Command("CLOSE CURSOR".to_owned())),
                        None => Err(missing(&name)),
                    }
                }
            }
        }
        other => Err(Error::Internal(format!("not a cursor statement: {other}"))),
    }
}

async fn declare_cursor(
    session: &std::sync::Arc<Session>,
    parsed: &ParsedStatement,
    declare: &Declare,
    params: Option<ParamValues>,
) -> Result<Output> {
    let (Some(query), [name]) = (&declare.for_query, declare.names.as_slice()) else {
        return Err(Error::syntax("DECLARE needs a cursor name and FOR query"));
    };
    let name = cursor_name(name);
    let hold = declare.hold == Some(true);
    if !hold && !session.cursors.in_block.load(Ordering::SeqCst) {
        return Err(Error::user(
            "25P01",
            "DECLARE CURSOR can only be used in transaction blocks",
        ));
    }
    if declare.scroll == Some(true) {
        return Err(Error::unsupported(
            "SCROLL cursors; cursors can only scan forward",
        ));
    }
    if declare.binary == Some(true) {
        return Err(Error::unsupported(
            "BINARY cursors; fetch with binary result formats instead",
        ));
    }
    if session.cursors.lock().contains_key(&name) {
        return Err(Error::user(
            "42P03",
            format!("cursor \"{name}\" already exists"),
        ));
    }
    let inner = query_statement(parsed, query);
    let Output::Rows { schema, stream } = Box::pin(session.execute(&inner, params)).await? else {
        return Err(Error::user("42601", "cursor query must return rows"));
    };
    session.cursors.lock().insert(
        name,
        Cursor {
            schema,
            stream: Some(stream),
            leftover: None,
            hold,
        },
    );
    Ok(Output::Command("DECLARE CURSOR".to_owned()))
}

/// How many rows a FETCH asks for; `None` for all that remain.
fn fetch_count(direction: &FetchDirection) -> Result<Option<usize>> {
    let number = |value: &Value| match value {
        Value::Number(n, _) => n
            .parse::<usize>()
            .map_err(|_| Error::user("22023", format!("invalid FETCH count: {n}"))),
        other => Err(Error::user(
            "22023",
            format!("invalid FETCH count: {other}"),
        )),
    };
    match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => Ok(Some(1)),
        FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
            number(&limit.value).map(Some)
        }
        FetchDirection::All | FetchDirection::ForwardAll => Ok(None),
        _ => Err(Error::user("55000", "cursor can only scan forward")),
    }
}

async fn fetch(
    session: &std::sync::Arc<Session>,
    name: &str,
    direction: &FetchDirection,
) -> Result<Output> {
    let wanted = fetch_count(direction)?;
    let (schema, mut stream, mut leftover) = {
        let mut open = session.cursors.lock();
        let cursor = open.get_mut(name).ok_or_else(|| missing(name))?;
        (
            SchemaRef::clone(&cursor.schema),
            cursor.stream.take(),
            cursor.leftover.take(),
        )
    };
    let mut batches = Vec::new();
    let mut count = 0usize;
    let mut failure = None;
    while wanted.is_none_or(|wanted| count < wanted) {
        let batch = match leftover.take() {
            Some(batch) => batch,
            None => match stream.as_mut() {
                Some(rows) => match rows.next().await {
                    Some(Ok(batch)) => batch,
                    Some(Err(error)) => {
                        failure = Some(Error::from(error));
                        stream = None;
                        break;
                    }
                    None => {
                        stream = None;
                        break;
                    }
                },
                None => break,
            },
        };
        let take = wanted.map_or(batch.num_rows(), |w| (w - count).min(batch.num_rows()));
        if take < batch.num_rows() {
            leftover = Some(batch.slice(take, batch.num_rows() - take));
        }
        count += take;
        batches.push(batch.slice(0, take));
    }
    if let Some(cursor) = session.cursors.lock().get_mut(name) {
        cursor.stream = stream;
        cursor.leftover = leftover;
    }
    if let Some(error) = failure {
        return Err(error);
    }
    let rows = futures::stream::iter(batches.into_iter().map(Ok));
    Ok(Output::Rows {
        schema: SchemaRef::clone(&schema),
        stream: Box::pin(RecordBatchStreamAdapter::new(schema, rows)),
    })
}

fn missing(name: &str) -> Error {
    Error::user("34000", format!("cursor \"{name}\" does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(sql: &str) -> Result<Option<usize>> {
        let parsed = super::super::parse(sql).expect("parses");
        let DfStatement::Statement(inner) = &parsed[0].statement else {
            panic!("not a sqlparser statement: {sql}");
        };
        let SqlStatement::Fetch { direction, .. } = inner.as_ref() else {
            panic!("not a FETCH: {sql}");
        };
        fetch_count(direction)
    }

    #[test]
    fn fetch_counts_forward_only() {
        assert_eq!(count("FETCH 5 FROM c").expect("forward"), Some(5));
        assert_eq!(
            count("FETCH FORWARD 2000 FROM \"c\"").expect("forward"),
            Some(2000)
        );
        assert_eq!(count("FETCH NEXT FROM c").expect("forward"), Some(1));
        assert_eq!(count("FETCH FORWARD ALL FROM c").expect("forward"), None);
        assert_eq!(count("FETCH ALL IN c").expect("forward"), None);
        let backward = count("FETCH BACKWARD 1 FROM c").expect_err("backward");
        assert_eq!(backward.sqlstate(), "55000");
    }
}
