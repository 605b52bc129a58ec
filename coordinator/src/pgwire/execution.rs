//! Running one statement for the wire: cancellation and `statement_timeout` around planning and
//! around every batch of the result stream, and Arrow batches turned into DataRows lazily so a
//! result is never held whole in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::Schema;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo, SendableRowStream};
use pgwire::error::{PgWireError, PgWireResult};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::encode::{encode_batch, is_regproc};
use super::types::{pg_type, type_modifier, type_size};
use crate::error::Error;
use crate::pg_catalog::{ATTNUM_METADATA, TABLE_OID_METADATA};
use crate::session::Session;
use crate::statements::{Output, ParsedStatement};

/// What the wire layer sends for one statement.
pub(crate) enum Reply {
    Rows {
        fields: Arc<Vec<FieldInfo>>,
        rows: SendableRowStream,
    },
    Command(String),
    TransactionStart(String),
    TransactionEnd(String),
}

/// Cancellation for one statement: a client cancel request or the statement timeout. The
/// timeout runs while the statement works for the client: for a portal fetched in pieces
/// (`max_rows`), only during each Execute, as in Postgres, not while the client holds it.
#[derive(Clone)]
pub(crate) struct StatementGuard {
    pub(crate) token: CancellationToken,
    timeout: Option<std::time::Duration>,
    timer: Arc<std::sync::Mutex<Option<tokio::task::AbortHandle>>>,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl StatementGuard {
    pub(crate) fn begin(session: &Session) -> Self {
        let guard = Self {
            token: session.begin_statement(),
            timeout: session.statement_timeout(),
            timer: Arc::default(),
            timed_out: Arc::default(),
        };
        guard.arm();
        guard
    }

    /// Starts (or restarts) the statement timeout.
    pub(crate) fn arm(&self) {
        let Some(timeout) = self.timeout else {
            return;
        };
        let token = self.token.clone();
        let timed_out = Arc::clone(&self.timed_out);
        let task = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
            token.cancel();
        });
        let previous = self
            .timer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(task.abort_handle());
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Stops the statement timeout until the next [`Self::arm`].
    pub(crate) fn disarm(&self) {
        if let Some(timer) = self.timer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            timer.abort();
        }
    }

    pub(crate) fn error(&self) -> Error {
        Error::Cancelled(
            if self.timed_out.load(std::sync::atomic::Ordering::SeqCst) {
                "canceling statement due to statement timeout".to_owned()
            } else {
                "canceling statement due to user request".to_owned()
            },
        )
    }

    /// Ends the statement: stops the timeout timer.
    pub(crate) fn finish(&self) {
        self.disarm();
    }
}

/// RowDescription fields for a result schema.
pub(crate) fn fields_for(schema: &Schema, formats: &Format) -> Arc<Vec<FieldInfo>> {
    Arc::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let pg = if is_regproc(field) {
                    Type::REGPROC
                } else {
                    pg_type(field.data_type())
                };
                let requested =
                    if formats_len(formats) > index || !matches!(formats, Format::Individual(_)) {
                        formats.format_for(index)
                    } else {
                        FieldFormat::Text
                    };
                // Types without a binary encoding go as text, and RowDescription says so.
                let format = if has_binary_encoding(field.data_type()) {
                    requested
                } else {
                    FieldFormat::Text
                };
                let metadata = field.metadata();
                let table = metadata
                    .get(TABLE_OID_METADATA)
                    .and_then(|oid| oid.parse::<u32>().ok())
                    .and_then(|oid| i32::try_from(oid).ok());
                let column = metadata
                    .get(ATTNUM_METADATA)
                    .and_then(|attnum| attnum.parse::<i16>().ok());
                FieldInfo::new(field.name().clone(), table, column, pg.clone(), format)
                    .with_type_size(type_size(field.data_type()))
                    .with_type_modifier(type_modifier(field.data_type()))
            })
            .collect(),
    )
}

/// Whether [`super::encode`] writes Postgres binary format for this type.
fn has_binary_encoding(data_type: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType as D;
    match data_type {
        D::Decimal256(..) | D::Struct(_) | D::Map(..) | D::Union(..) | D::RunEndEncoded(..) => {
            false
        }
        D::List(field) | D::LargeList(field) => has_binary_encoding(field.data_type()),
        D::FixedSizeList(..) | D::ListView(_) | D::LargeListView(_) => false,
        D::Dictionary(_, value) => has_binary_encoding(value),
        _ => true,
    }
}

fn formats_len(formats: &Format) -> usize {
    match formats {
        Format::Individual(codes) => codes.len(),
        _ => usize::MAX,
    }
}

/// Statements up to this size are parsed on the connection's thread; longer ones (a 2 MB `IN`
/// list took 3 s to parse on a debug build) off the server's threads, under
/// `statement_timeout`.
const PARSE_INLINE_BYTES: usize = 64 << 10;

/// [`crate::statements::parse`], bounded like the statement it parses.
pub(crate) async fn parse_bounded(
    session: &Session,
    sql: &str,
) -> Result<Vec<ParsedStatement>, Error> {
    if let Some(parsed) = session.parsed.get(sql) {
        return Ok(parsed);
    }
    if sql.len() <= PARSE_INLINE_BYTES {
        let parsed = crate::statements::parse(sql)?;
        session.parsed.insert(sql, &parsed);
        return Ok(parsed);
    }
    let owned = sql.to_owned();
    let work =
        crate::query_runtime::off_server(crate::query_priority::Priority::Batch, async move {
            crate::statements::parse(&owned)
        });
    let parsed = match session.statement_timeout() {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_elapsed| {
                Error::Cancelled("canceling statement due to statement timeout".to_owned())
            })?,
        None => work.await,
    };
    parsed.map_err(|panic| Error::Internal(format!("parsing the statement panicked: {panic}")))?
}

/// Executes `parsed` under `guard`, returning rows as a lazy stream.
pub(crate) async fn run(
    session: &Arc<Session>,
    parsed: &ParsedStatement,
    params: Option<ParamValues>,
    formats: &Format,
    guard: &StatementGuard,
) -> Result<Reply, Error> {
    if params.as_ref().is_none_or(crate::statements::params_empty)
        && let Some(stream) = session
            .constants
            .get(&parsed.sql, &session.constant_validity())
    {
        let log =
            session
                .server
                .queries
                .start(session.vars.backend_pid, &session.vars.user, &parsed.sql);
        let fields = fields_for(&stream.schema(), formats);
        let rows = row_stream(log.track(stream), Arc::clone(&fields), guard.clone());
        return Ok(Reply::Rows { fields, rows });
    }
    // Planned off the server's threads: see `query_runtime::off_server`.
    let work = {
        let session = Arc::clone(session);
        let parsed = parsed.clone();
        let priority = crate::query_priority::Priority::of_statement(parsed.sql.len());
        Box::pin(crate::query_runtime::off_server(priority, async move {
            session.execute(&parsed, params).await
        }))
    };
    let output = tokio::select! {
        output = work => output
            .map_err(|panic| Error::Internal(format!("the statement panicked: {panic}")))??,
        () = guard.token.cancelled() => return Err(guard.error()),
    };
    Ok(match output {
        Output::Rows { schema, stream } => {
            let fields = fields_for(&schema, formats);
            let rows = row_stream(stream, Arc::clone(&fields), guard.clone());
            Reply::Rows { fields, rows }
        }
        Output::Command(tag) => Reply::Command(tag),
        Output::TransactionStart(tag) => Reply::TransactionStart(tag),
        Output::TransactionEnd(tag) => Reply::TransactionEnd(tag),
    })
}

/// A statement's rows for the wire: each Arrow batch is encoded when the previous one's rows
/// are sent, and the statement's cancellation (cancel request, `statement_timeout`) ends it
/// between batches or while it waits for one. A hand-written stream rather than
/// `futures::stream::unfold`, which moves its whole state into a new future for every row.
struct RowStream {
    batches: SendableRecordBatchStream,
    formats: Vec<FieldFormat>,
    pending: std::vec::IntoIter<pgwire::messages::data::DataRow>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    guard: StatementGuard,
    done: bool,
}

impl Stream for RowStream {
    type Item = PgWireResult<pgwire::messages::data::DataRow>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(row) = this.pending.next() {
                return Poll::Ready(Some(Ok(row)));
            }
            if this.done {
                this.guard.finish();
                return Poll::Ready(None);
            }
            if this.cancelled.as_mut().poll(cx).is_ready() {
                this.done = true;
                return Poll::Ready(Some(Err(PgWireError::from(this.guard.error()))));
            }
            match std::task::ready!(this.batches.poll_next_unpin(cx)) {
                None => this.done = true,
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(PgWireError::from(Error::from(e)))));
                }
                Some(Ok(batch)) => match encode_batch(&batch, &this.formats) {
                    Ok(rows) => this.pending = rows.into_iter(),
                    Err(e) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(PgWireError::from(e))));
                    }
                },
            }
        }
    }
}

fn row_stream(
    batches: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    guard: StatementGuard,
) -> SendableRowStream {
    Box::pin(RowStream {
        batches,
        formats: fields.iter().map(FieldInfo::format).collect(),
        pending: Vec::new().into_iter(),
        cancelled: Box::pin(guard.token.clone().cancelled_owned()),
        guard,
        done: false,
    })
}
