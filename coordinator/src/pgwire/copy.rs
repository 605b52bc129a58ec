//! `COPY <table> [(columns)] FROM STDIN` in the text, CSV and binary formats, into streaming
//! tables and ordinary Basin tables ([`table_sink`]: one atomic commit at the end).
//!
//! The query handlers see the statement and call [`prepare`] (resolve the table, read the
//! options) and [`begin`] (CopyInResponse; pgwire now routes CopyData, CopyDone and CopyFail
//! to [`CopyIn`]). The state of the COPY lives in the connection's session extensions between
//! messages. CopyData chunks end anywhere, in the middle of a row too: the format's decoder
//! ([`text`], [`binary`]) takes the complete rows and leaves the rest for the next chunk.
//!
//! Rows are converted and appended in batches of up to [`BATCH_ROWS`] rows or [`BATCH_BYTES`]
//! of input, each through [`ingest::deliver`], which returns once the batch is durable; so
//! memory stays bounded and a slow log slows the client down. Like any stream ingest, a
//! COPY into a streaming table is not atomic: when row N is bad, the batches before the one holding row N stay
//! appended (the error's hint says how many rows), the rest of the data is refused. With
//! `on_error = 'dead_letter'`, bad rows (unconvertible values, NULL in NOT NULL columns,
//! wrong field counts, invalid UTF-8) go to the dead-letter table instead and the COPY goes
//! on; only broken framing (a truncated binary row, a bad signature) ends it.

mod binary;
mod options;
mod table_sink;
mod text;

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use basin_catalog::Catalog;
use basin_catalog::model::OnError;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast::{CopySource, CopyTarget, Statement as SqlStatement};
use futures::{Sink, SinkExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyInResponse};
use pgwire::messages::response::CommandComplete;
use tokio_util::sync::CancellationToken;

use self::options::Format;
use self::table_sink::{CopySink, TableCopy};
use crate::error::{Error, Result};
use crate::ingest::{self, BadRow, Decoded, Delivered};
use crate::query_log::QueryHandle;
use crate::session::Session;
use crate::statements::ParsedStatement;

/// Rows per appended batch.
const BATCH_ROWS: usize = 65_536;
/// Input bytes per appended batch, so that wide rows make smaller batches.
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// A row that is not complete after this many bytes is refused rather than buffered on.
const MAX_ROW_BYTES: usize = 256 * 1024 * 1024;

/// The `COPY ... FROM STDIN` statement in `parsed`, if it is one.
pub(super) fn from_stdin(parsed: &ParsedStatement) -> Option<&SqlStatement> {
    match &parsed.statement {
        DfStatement::Statement(statement)
            if matches!(
                statement.as_ref(),
                SqlStatement::Copy {
                    to: false,
                    target: CopyTarget::Stdin,
                    ..
                }
            ) =>
        {
            Some(statement)
        }
        _ => None,
    }
}

/// Where rows for `target` go: a streaming table, or an ordinary Basin (Delta) table.
async fn sink_for(
    session: &Arc<Session>,
    catalog: &Arc<Catalog>,
    target: &basin_catalog::RelationName,
    reference: &datafusion::common::TableReference,
) -> Result<CopySink> {
    use basin_catalog::model::RelationKind;
    let snapshot = catalog.snapshot();
    let Some(entry) = snapshot.relation(&target.database, &target.schema, &target.name) else {
        return Err(Error::user(
            "42P01",
            format!("relation \"{}\" does not exist", target.name),
        ));
    };
    match &entry.kind {
        RelationKind::Stream(_) => Ok(CopySink::Stream(
            ingest::stream_table(catalog, target).await?,
        )),
        RelationKind::Managed { .. } => {
            let provider = session.ctx.table_provider(reference.clone()).await?;
            Ok(CopySink::Table(Box::new(TableCopy::new(
                target.clone(),
                provider,
                session.ctx.state(),
            ))))
        }
        other => Err(
            crate::statements::not_writable("copy to", &target.name, other).unwrap_or_else(|| {
                Error::Internal(format!("no COPY path for \"{}\"", target.name))
            }),
        ),
    }
}

/// Resolves the target table, its columns and the format of `statement`.
pub(super) async fn prepare(
    session: &Arc<Session>,
    statement: &SqlStatement,
    sql: &str,
) -> Result<ActiveCopy> {
    let SqlStatement::Copy {
        source: CopySource::Table {
            table_name,
            columns,
        },
        to: false,
        target: CopyTarget::Stdin,
        options,
        legacy_options,
        ..
    } = statement
    else {
        return Err(Error::Internal(
            "COPY FROM STDIN expected a table source".to_owned(),
        ));
    };
    let format = options::format(options, legacy_options)?;
    let reference = object_name_to_table_reference(table_name.clone(), true)?;
    let target = crate::statements::resolve(session, &reference);
    let catalog = Arc::clone(&session.server.catalog);
    let sink = sink_for(session, &catalog, &target, &reference).await?;
    let table = sink.target();
    let schema = table.schema();
    let targets = options::column_targets(&schema, columns, table.name())?;
    let layout = Layout {
        targets,
        schema: Arc::clone(&schema),
    };
    let stop_on_bad = table.on_error() == OnError::Reject;
    let (decoder, wire_format): (Box<dyn RowDecoder>, i8) = match format {
        Format::Text(options) => {
            let keep_raw = !stop_on_bad;
            (
                Box::new(text::TextDecoder::new(
                    options,
                    layout,
                    stop_on_bad,
                    keep_raw,
                )),
                0,
            )
        }
        Format::Binary => (
            Box::new(binary::BinaryDecoder::try_new(layout, stop_on_bad)?),
            1,
        ),
    };
    let log = session
        .server
        .queries
        .start(session.vars.backend_pid, &session.vars.user, sql);
    Ok(ActiveCopy {
        catalog,
        relaxed: ingest::relaxed(&schema),
        table: sink,
        decoder,
        wire_format,
        pending: Vec::new(),
        next_row: 1,
        delivered: Delivered::default(),
        cancel: session.begin_statement(),
        log: Some(log),
    })
}

/// Enters copy-in mode: stores `copy` on the connection and sends CopyInResponse.
pub(super) async fn begin<C>(client: &mut C, copy: ActiveCopy, extended: bool) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let format = copy.wire_format;
    let columns = copy.decoder.width();
    CopySlot::of(client).put(copy);
    client.set_state(PgWireConnectionState::CopyInProgress(extended));
    let response = CopyInResponse::new(
        format,
        i16::try_from(columns).unwrap_or(i16::MAX),
        vec![i16::from(format); columns],
    );
    client
        .send(PgWireBackendMessage::CopyInResponse(response))
        .await?;
    Ok(())
}

/// pgwire's copy handler: feeds CopyData to the connection's COPY and ends it.
#[derive(Debug, Default)]
pub(crate) struct CopyIn;

#[async_trait]
impl CopyHandler for CopyIn {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let slot = CopySlot::of(client);
        let Some(mut copy) = slot.take() else {
            return Err(no_copy().into());
        };
        match copy.feed(&copy_data.data).await {
            Ok(()) => {
                slot.put(copy);
                Ok(())
            }
            Err(error) => Err(copy.fail(error).into()),
        }
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(mut copy) = CopySlot::of(client).take() else {
            return Err(no_copy().into());
        };
        let delivered = match copy.finish().await {
            Ok(delivered) => delivered,
            Err(error) => return Err(copy.fail(error).into()),
        };
        if let Ok(session) = super::startup::session_of(client) {
            session.note_write();
        }
        client
            .send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                format!("COPY {}", delivered.rows),
            )))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let error = Error::user("57014", format!("COPY from stdin failed: {}", fail.message));
        match CopySlot::of(client).take() {
            Some(copy) => copy.fail(error).into(),
            None => error.into(),
        }
    }
}

fn no_copy() -> Error {
    Error::user("08P01", "COPY data received but no COPY is in progress")
}

/// The connection's COPY in progress, between CopyData messages.
#[derive(Default)]
struct CopySlot(Mutex<Option<ActiveCopy>>);

impl CopySlot {
    fn of<C: ClientInfo>(client: &C) -> Arc<Self> {
        client
            .session_extensions()
            .get_or_insert_with(Self::default)
    }

    fn put(&self, copy: ActiveCopy) {
        // A COPY left behind by a protocol error is replaced; dropping it ends its log entry.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(copy);
    }

    fn take(&self) -> Option<ActiveCopy> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Where the input columns go: `targets[i]` is the table column of input column `i`; table
/// columns no input column names are NULL.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) targets: Vec<usize>,
    pub(super) schema: SchemaRef,
}

impl Layout {
    pub(super) fn width(&self) -> usize {
        self.targets.len()
    }

    pub(super) fn name(&self, input: usize) -> Option<String> {
        let target = *self.targets.get(input)?;
        Some(self.schema.fields().get(target)?.name().clone())
    }

    /// Input columns in table order, with NULL columns filled in; `text`: every column Utf8.
    pub(super) fn assemble(&self, inputs: Vec<ArrayRef>, rows: usize, text: bool) -> Vec<ArrayRef> {
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.schema.fields().len()];
        for (target, input) in self.targets.iter().zip(inputs) {
            if let Some(slot) = columns.get_mut(*target) {
                *slot = Some(input);
            }
        }
        columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(column, field)| {
                column.unwrap_or_else(|| {
                    let data_type = if text {
                        DataType::Utf8
                    } else {
                        field.data_type().clone()
                    };
                    new_null_array(&data_type, rows)
                })
            })
            .collect()
    }
}

/// A row the decoder could not take, or (`index: None` or fatal) a break in the framing.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DecodeError {
    /// 0-based within the current batch.
    pub(super) index: Option<usize>,
    pub(super) column: Option<String>,
    pub(super) message: String,
    pub(super) sqlstate: &'static str,
}

/// What one call of [`RowDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// The batch is full: deliver it, then call again with the rest.
    Full,
    /// Every complete row is taken; the rest waits for more data.
    NeedMore,
    /// The end-of-data marker came; later data is ignored.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Step {
    pub(super) consumed: usize,
    pub(super) status: Status,
}

/// The rows of one batch, in table order.
pub(super) struct Taken {
    pub(super) columns: Vec<ArrayRef>,
    pub(super) rows: usize,
    /// Rows set aside: every column NULL in `columns`, to be dropped after conversion.
    pub(super) bad: Vec<DecodeError>,
    pub(super) raw: Option<RawRows>,
}

/// The original text of a batch's rows, for the dead-letter table.
#[derive(Debug, Default)]
pub(super) struct RawRows {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RawRows {
    pub(super) fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.ends.push(self.bytes.len());
    }

    pub(super) fn line(&self, row: usize) -> String {
        let start = match row.checked_sub(1) {
            Some(previous) => self.ends.get(previous).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(row).copied().unwrap_or(start);
        self.bytes
            .get(start..end)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

/// One format's decoder: bytes in, columns of the current batch out.
pub(super) trait RowDecoder: Send {
    /// Takes the complete rows at the start of `data` until the batch is full. With `at_end`,
    /// `data` is all that is left and an unterminated last row counts as complete.
    fn decode(&mut self, data: &[u8], at_end: bool) -> Result<Step, DecodeError>;
    fn rows(&self) -> usize;
    fn width(&self) -> usize;
    fn has_bad(&self) -> bool;
    /// Whether the columns are text for [`ingest::from_text`] (else typed, for `from_arrow`).
    fn is_text(&self) -> bool;
    /// Ends the current batch.
    fn take(&mut self) -> Taken;
}

/// A COPY in progress on one connection.
pub(crate) struct ActiveCopy {
    catalog: Arc<Catalog>,
    table: CopySink,
    /// The table's schema with every column nullable, for typed batches before NOT NULL checks.
    relaxed: SchemaRef,
    decoder: Box<dyn RowDecoder>,
    wire_format: i8,
    /// The start of a row whose end has not arrived yet.
    pending: Vec<u8>,
    /// The number of the current batch's first row, counted from 1.
    next_row: u64,
    delivered: Delivered,
    cancel: CancellationToken,
    log: Option<QueryHandle>,
}

impl ActiveCopy {
    async fn feed(&mut self, data: &[u8]) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled(
                "canceling statement due to user request".to_owned(),
            ));
        }
        if self.pending.is_empty() {
            let consumed = self.decode(data, false).await?;
            self.keep(data.get(consumed..).unwrap_or_default())?;
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(data);
            let consumed = self.decode(&pending, false).await?;
            pending.drain(..consumed.min(pending.len()));
            self.pending = pending;
            self.check_row_size()?;
        }
        Ok(())
    }

    fn keep(&mut self, rest: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(rest);
        self.check_row_size()
    }

    fn check_row_size(&self) -> Result<()> {
        if self.pending.len() > MAX_ROW_BYTES {
            return Err(self.located(DecodeError {
                index: Some(self.decoder.rows()),
                column: None,
                message: format!("row is longer than {} MiB", MAX_ROW_BYTES / 1024 / 1024),
                sqlstate: "54000",
            }));
        }
        Ok(())
    }

    /// The data is complete: takes the last row and delivers the last batch.
    async fn finish(&mut self) -> Result<Delivered> {
        let pending = std::mem::take(&mut self.pending);
        self.decode(&pending, true).await?;
        self.flush().await?;
        self.delivered.rows += self.table.commit(&self.catalog).await?;
        if let Some(log) = self.log.take() {
            log.finish();
        }
        tracing::debug!(
            table = self.table.target().name(),
            rows = self.delivered.rows,
            dead_lettered = self.delivered.dead_lettered,
            "copy finished"
        );
        Ok(self.delivered)
    }

    /// Ends the COPY with `error`, adding how many rows stay appended.
    fn fail(mut self, error: Error) -> Error {
        let error = self.with_progress(error);
        if let Some(log) = self.log.take() {
            log.fail(&error.message());
        }
        error
    }

    /// Decodes the complete rows of `data`, delivering each batch that fills up; returns the
    /// bytes taken.
    async fn decode(&mut self, data: &[u8], at_end: bool) -> Result<usize> {
        let mut at = 0;
        loop {
            let step = match self
                .decoder
                .decode(data.get(at..).unwrap_or_default(), at_end)
            {
                Ok(step) => step,
                Err(error) => return Err(self.refuse(error)),
            };
            at += step.consumed;
            if self.decoder.has_bad() && self.table.target().on_error() == OnError::Reject {
                let taken = self.decoder.take();
                let first = taken.bad.first().cloned();
                return Err(match first {
                    Some(bad) => self.refuse_in(taken, bad),
                    None => Error::Internal("bad row vanished".to_owned()),
                });
            }
            match step.status {
                Status::Full => self.flush().await?,
                Status::NeedMore | Status::Finished => return Ok(at),
            }
        }
    }

    /// The error for a break in the data at `error.index` of the current batch.
    fn refuse(&mut self, error: DecodeError) -> Error {
        let taken = self.decoder.take();
        self.refuse_in(taken, error)
    }

    /// Reports a value error in a row before `error`'s, as Postgres would, else `error`.
    fn refuse_in(&self, taken: Taken, error: DecodeError) -> Error {
        let index = error.index.unwrap_or(taken.rows).min(taken.rows);
        if index > 0 {
            let earlier = Taken {
                columns: taken.columns.iter().map(|c| c.slice(0, index)).collect(),
                rows: index,
                bad: Vec::new(),
                raw: None,
            };
            if let Err(error) = self.convert(earlier, self.next_row) {
                return error;
            }
        }
        self.table.target().record_rejected(taken.rows as u64);
        self.located(error)
    }

    fn located(&self, error: DecodeError) -> Error {
        let row = error.index.map(|index| self.next_row + index as u64);
        let message = match (row, &error.column) {
            (Some(row), Some(column)) => {
                format!("row {row}, column \"{column}\": {}", error.message)
            }
            (Some(row), None) => format!("row {row}: {}", error.message),
            (None, _) => error.message,
        };
        Error::user(error.sqlstate, message)
    }

    fn with_progress(&self, error: Error) -> Error {
        let appended = self.next_row - 1;
        if !self.table.appends_per_batch() {
            // An ordinary table commits at the end: nothing of a failed COPY stays.
            return error;
        }
        match error {
            Error::User {
                sqlstate,
                message,
                hint: None,
            } if appended > 0 => Error::User {
                sqlstate,
                message,
                hint: Some(format!(
                    "COPY appends in batches of up to {BATCH_ROWS} rows: the first {appended} \
                     rows of this COPY were appended before the failing batch and stay"
                )),
            },
            other => other,
        }
    }

    /// Converts and appends the current batch.
    async fn flush(&mut self) -> Result<()> {
        let taken = self.decoder.take();
        let rows = taken.rows as u64;
        if rows == 0 {
            return Ok(());
        }
        let decoded = self.convert(taken, self.next_row)?;
        let delivered = self.table.deliver(&self.catalog, decoded).await?;
        self.delivered.rows += delivered.rows;
        self.delivered.dead_lettered += delivered.dead_lettered;
        self.next_row += rows;
        Ok(())
    }

    /// The batch in the table's types, with the rows the decoder set aside among the bad ones.
    fn convert(&self, taken: Taken, first_row: u64) -> Result<Decoded> {
        let Taken {
            columns,
            rows,
            bad,
            raw,
        } = taken;
        let raw_line = |row: usize| raw.as_ref().map(|r| r.line(row)).unwrap_or_default();
        let decoded = if self.decoder.is_text() {
            ingest::from_text(self.table.target(), columns, first_row, &raw_line)?
        } else {
            let batch = RecordBatch::try_new_with_options(
                Arc::clone(&self.relaxed),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )
            .map_err(|e| Error::Internal(format!("COPY batch: {e}")))?;
            ingest::from_arrow(self.table.target(), batch, first_row)?
        };
        if bad.is_empty() {
            return Ok(decoded);
        }
        set_aside(decoded, &bad, rows, first_row, &raw_line)
    }
}

/// Moves the rows the decoder refused (NULL placeholders in `decoded`) to the bad rows.
fn set_aside(
    mut decoded: Decoded,
    bad: &[DecodeError],
    rows: usize,
    first_row: u64,
    raw_line: &dyn Fn(usize) -> String,
) -> Result<Decoded> {
    let refused: HashSet<usize> = bad.iter().filter_map(|b| b.index).collect();
    let converted_bad: HashSet<u64> = decoded.bad.iter().map(|b| b.row).collect();
    // Row j of the converted batch is the j-th row the conversion did not set aside.
    let keep: BooleanArray = (0..rows)
        .filter(|index| !converted_bad.contains(&(first_row + *index as u64)))
        .map(|index| Some(!refused.contains(&index)))
        .collect();
    if keep.len() != decoded.batch.num_rows() {
        return Err(Error::Internal(format!(
            "COPY: {} converted rows, expected {}",
            decoded.batch.num_rows(),
            keep.len()
        )));
    }
    decoded.batch = filter_record_batch(&decoded.batch, &keep)
        .map_err(|e| Error::Internal(format!("COPY: drop refused rows: {e}")))?;
    decoded.bad.retain(|b| {
        let index = b.row.checked_sub(first_row).map(|i| i as usize);
        !index.is_some_and(|i| refused.contains(&i))
    });
    decoded.bad.extend(
        bad.iter()
            .filter_map(|b| b.index.map(|index| (index, b)))
            .map(|(index, b)| BadRow {
                row: first_row + index as u64,
                column: b.column.clone(),
                error: b.message.clone(),
                raw: Some(raw_line(index)),
            }),
    );
    decoded.bad.sort_by_key(|b| b.row);
    Ok(decoded)
}

#[cfg(test)]
mod tests;
