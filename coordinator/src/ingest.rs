//! What every ingest front end (COPY, HTTP, Flight) shares: finding the streaming table, turning
//! text, CSV, NDJSON and Arrow IPC into a batch of the table's schema with bad rows named by
//! row number and column, and delivering the batch (and, with `on_error = 'dead_letter'`, the
//! bad rows) to the table's one append path.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::FormatOptions;
use basin_catalog::model::{OnError, RelationKind};
use basin_catalog::streams::{RowError, StreamTable};
use basin_catalog::{Catalog, RelationName};

use crate::error::{Error, Result};

/// Rows the JSON decoder builds at a time.
const JSON_BATCH_ROWS: usize = 65_536;
/// Rows the CSV reader builds at a time (it preallocates buffers for this many).
const CSV_BATCH_ROWS: usize = 65_536;

/// What decoding needs to know of the table rows go to: a streaming table, or (for COPY) an
/// ordinary Basin table.
pub(crate) trait Target: Send + Sync {
    fn schema(&self) -> SchemaRef;
    fn name(&self) -> &str;
    fn on_error(&self) -> OnError;
    /// Counts rows refused before they reached the table.
    fn record_rejected(&self, rows: u64);
}

impl Target for StreamTable {
    fn schema(&self) -> SchemaRef {
        StreamTable::schema(self)
    }

    fn name(&self) -> &str {
        StreamTable::name(self)
    }

    fn on_error(&self) -> OnError {
        self.spec().on_error
    }

    fn record_rejected(&self, rows: u64) {
        StreamTable::record_rejected(self, rows);
    }
}

/// A row the table could not take.
#[derive(Debug, Clone)]
pub(crate) struct BadRow {
    /// 1-based within the request.
    pub(crate) row: u64,
    pub(crate) column: Option<String>,
    pub(crate) error: String,
    pub(crate) raw: Option<String>,
}

/// Rows converted to the table's schema, minus the bad ones (only kept with dead-lettering).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) batch: RecordBatch,
    pub(crate) bad: Vec<BadRow>,
}

/// What an ingest request achieved.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct Delivered {
    pub(crate) rows: u64,
    pub(crate) dead_lettered: u64,
}

impl From<RowError> for Error {
    fn from(error: RowError) -> Self {
        Error::user(error.sqlstate, error.to_string())
    }
}

/// The open streaming table `target`, or a Postgres-style error if there is no such table or
/// it is not a streaming table.
pub(crate) async fn stream_table(
    catalog: &Arc<Catalog>,
    target: &RelationName,
) -> Result<Arc<StreamTable>> {
    let snapshot = catalog.snapshot();
    let Some(entry) = snapshot.relation(&target.database, &target.schema, &target.name) else {
        return Err(Error::user(
            "42P01",
            format!("relation \"{}\" does not exist", target.name),
        ));
    };
    if !matches!(entry.kind, RelationKind::Stream(_)) {
        return Err(Error::user(
            "42809",
            format!(
                "\"{}\" is not a streaming table; this ingest path appends to tables created \
                 with APPEND ONLY (use INSERT for other tables)",
                target.name
            ),
        ));
    }
    Ok(catalog.stream_table(entry).await?)
}

/// A `schema.table` or `table` name (unquoted parts lower-cased, `"Quoted"` kept) in the
/// default database; unqualified names are in `public`.
pub(crate) fn parse_name(name: &str) -> Result<RelationName> {
    let parts: Vec<String> = name
        .split('.')
        .map(|part| {
            if part.len() >= 2 && part.starts_with('"') && part.ends_with('"') {
                part[1..part.len() - 1].to_owned()
            } else {
                part.to_lowercase()
            }
        })
        .collect();
    let (schema, table) = match parts.as_slice() {
        [table] => (
            basin_catalog::model::DEFAULT_SCHEMA.to_owned(),
            table.clone(),
        ),
        [schema, table] => (schema.clone(), table.clone()),
        _ => {
            return Err(Error::user(
                "42602",
                format!("invalid table name \"{name}\""),
            ));
        }
    };
    if table.is_empty() {
        return Err(Error::user("42602", "empty table name"));
    }
    Ok(RelationName {
        database: basin_catalog::model::DEFAULT_DATABASE.to_owned(),
        schema,
        name: table,
    })
}

/// Appends `decoded` to `table`; its bad rows go to the dead-letter table.
pub(crate) async fn deliver(
    catalog: &Arc<Catalog>,
    table: &StreamTable,
    decoded: Decoded,
    source: &str,
) -> Result<Delivered> {
    let bad = decoded.bad.len() as u64;
    if bad > 0 {
        table.record_rejected(bad);
        dead_letter(catalog, table, &decoded.bad, source).await?;
    }
    let rows = table
        .append(decoded.batch)
        .await
        .map_err(|e| ingest_error(table, e))?;
    Ok(Delivered {
        rows,
        dead_lettered: bad,
    })
}

/// An append failure as the client should see it.
pub(crate) fn ingest_error(
    table: &StreamTable,
    error: basin_catalog::streams::IngestError,
) -> Error {
    use basin_catalog::streams::IngestError;
    match error {
        IngestError::Rejected(row) => row.into(),
        IngestError::Dropped(_) => Error::user(
            "42P01",
            format!("relation \"{}\" was dropped", table.name()),
        ),
        IngestError::Stalled(message) => Error::user("53000", message),
        IngestError::Unavailable(message) => Error::user("57P03", message),
        IngestError::Unknown(message) => Error::user("08007", message),
        IngestError::Log(log) => Error::user(
            "58030",
            format!("could not make rows durable in {}: {log}", table.name()),
        ),
    }
}

async fn dead_letter(
    catalog: &Arc<Catalog>,
    table: &StreamTable,
    bad: &[BadRow],
    source: &str,
) -> Result<()> {
    let Some(name) = table.spec().dead_letter.clone() else {
        return Ok(());
    };
    let (schema, _) = table.name().split_once('.').unwrap_or(("public", ""));
    let target = RelationName {
        database: basin_catalog::model::DEFAULT_DATABASE.to_owned(),
        schema: schema.to_owned(),
        name,
    };
    let letters = stream_table(catalog, &target).await?;
    let now = chrono::Utc::now().timestamp_micros();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(vec![now; bad.len()]).with_timezone("UTC")),
        Arc::new(StringArray::from(vec![source; bad.len()])),
        Arc::new(Int64Array::from_iter_values(
            bad.iter().map(|b| i64::try_from(b.row).unwrap_or(i64::MAX)),
        )),
        Arc::new(StringArray::from_iter(bad.iter().map(|b| b.column.clone()))),
        Arc::new(StringArray::from_iter_values(
            bad.iter().map(|b| b.error.clone()),
        )),
        Arc::new(StringArray::from_iter(bad.iter().map(|b| b.raw.clone()))),
    ];
    let batch = RecordBatch::try_new(letters.schema(), columns)
        .map_err(|e| Error::Internal(format!("dead-letter batch: {e}")))?;
    letters
        .append(batch)
        .await
        .map_err(|e| ingest_error(&letters, e))?;
    Ok(())
}

/// Converts text columns (one Utf8 array per table column, NULL for SQL NULL) to the table's
/// types. A value that does not convert, or a NULL in a NOT NULL column, is a bad row: with
/// `on_error = 'reject'` the first one fails the request, naming its row (counted from
/// `first_row`) and column; with dead-lettering the bad rows are set aside. `raw` renders a
/// row's original text for the dead-letter table.
pub(crate) fn from_text(
    table: &dyn Target,
    columns: Vec<ArrayRef>,
    first_row: u64,
    raw: &dyn Fn(usize) -> String,
) -> Result<Decoded> {
    let schema = table.schema();
    if columns.len() != schema.fields().len() {
        return Err(Error::user(
            "22P04",
            format!(
                "row {first_row}: expected {} columns, got {}",
                schema.fields().len(),
                columns.len()
            ),
        ));
    }
    let rows = columns.first().map_or(0, |c| c.len());
    let options = CastOptions {
        safe: true,
        format_options: FormatOptions::default(),
    };
    let mut converted = Vec::with_capacity(columns.len());
    let mut bad: Vec<Option<BadRow>> = vec![None; rows];
    for (field, text) in schema.fields().iter().zip(&columns) {
        let typed = cast_with_options(text, field.data_type(), &options)
            .map_err(|e| Error::user("22P02", format!("column \"{}\": {e}", field.name())))?;
        let strings = text.as_any().downcast_ref::<StringArray>();
        for (row, slot) in bad.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let error = if text.is_valid(row) && typed.is_null(row) {
                let value = strings.map(|s| s.value(row)).unwrap_or_default();
                Some(format!(
                    "invalid input syntax for type {}: \"{value}\"",
                    crate::pgwire::types::pg_type(field.data_type()).name()
                ))
            } else if typed.is_null(row) && !field.is_nullable() {
                Some("null value violates not-null constraint".to_owned())
            } else {
                None
            };
            if let Some(error) = error {
                *slot = Some(BadRow {
                    row: first_row + row as u64,
                    column: Some(field.name().clone()),
                    error,
                    raw: None,
                });
            }
        }
        converted.push(typed);
    }
    // NOT NULL columns may hold the NULLs of bad rows until those are split off.
    let batch = RecordBatch::try_new(relaxed(&schema), converted)
        .map_err(|e| Error::Internal(format!("build batch: {e}")))?;
    let decoded = split_bad(table, batch, bad, raw)?;
    Ok(Decoded {
        batch: restore_schema(&schema, decoded.batch)?,
        bad: decoded.bad,
    })
}

/// Keeps the good rows; with `on_error = 'reject'` fails on the first bad one.
fn split_bad(
    table: &dyn Target,
    batch: RecordBatch,
    bad: Vec<Option<BadRow>>,
    raw: &dyn Fn(usize) -> String,
) -> Result<Decoded> {
    if bad.iter().all(Option::is_none) {
        return Ok(Decoded {
            batch,
            bad: Vec::new(),
        });
    }
    if table.on_error() == OnError::Reject {
        let rows = batch.num_rows() as u64;
        table.record_rejected(rows);
        let first = bad.into_iter().flatten().next();
        let Some(first) = first else {
            return Err(Error::Internal("bad row vanished".to_owned()));
        };
        let sqlstate = if first.error.starts_with("null value") {
            "23502"
        } else {
            "22P02"
        };
        return Err(Error::user(
            sqlstate,
            match &first.column {
                Some(column) => format!("row {}, column \"{column}\": {}", first.row, first.error),
                None => format!("row {}: {}", first.row, first.error),
            },
        ));
    }
    let keep = BooleanArray::from_iter(bad.iter().map(|b| Some(b.is_none())));
    let good = filter_record_batch(&batch, &keep)
        .map_err(|e| Error::Internal(format!("filter bad rows: {e}")))?;
    let bad = bad
        .into_iter()
        .enumerate()
        .filter_map(|(index, b)| {
            b.map(|mut b| {
                b.raw = Some(raw(index));
                b
            })
        })
        .collect();
    Ok(Decoded { batch: good, bad })
}

/// A schema like `schema` with every column nullable, to hold rows before NOT NULL checks.
pub(crate) fn relaxed(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Puts the table's schema (with its NOT NULLs) back on a batch whose bad rows are gone.
fn restore_schema(schema: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    RecordBatch::try_new(Arc::clone(schema), batch.columns().to_vec())
        .map_err(|e| Error::Internal(format!("restore schema: {e}")))
}

/// CSV with a header line (or not), fields converted like COPY's text.
pub(crate) fn from_csv(table: &dyn Target, body: &[u8], header: bool) -> Result<Decoded> {
    let schema = table.schema();
    let text_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = arrow::csv::ReaderBuilder::new(Arc::clone(&text_schema))
        .with_header(header)
        .with_batch_size(CSV_BATCH_ROWS)
        .build(Cursor::new(body))
        .map_err(|e| Error::user("22P04", format!("CSV: {e}")))?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(batch.map_err(|e| Error::user("22P04", format!("CSV: {e}")))?);
    }
    let text = arrow::compute::concat_batches(&text_schema, &batches)
        .map_err(|e| Error::Internal(format!("CSV: {e}")))?;
    let lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .skip(usize::from(header))
        .collect();
    let raw = |row: usize| {
        lines
            .get(row)
            .map(|l| String::from_utf8_lossy(l).trim_end_matches('\r').to_owned())
            .unwrap_or_default()
    };
    let first_row = 1;
    from_text(table, text.columns().to_vec(), first_row, &raw)
}

/// Newline-delimited JSON objects, one row each; unknown keys are refused.
pub(crate) fn from_ndjson(table: &dyn Target, body: &[u8]) -> Result<Decoded> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Error::user(
            "22P02",
            "expected newline-delimited JSON (one object per line), got a JSON array",
        ));
    }
    let schema = table.schema();
    let relaxed_schema = relaxed(&schema);
    match decode_json(&relaxed_schema, body) {
        Ok(batch) => {
            let bad = not_null_violations(&schema, &batch);
            let decoded = split_bad(table, batch, bad, &|row| line_of(body, row))?;
            Ok(Decoded {
                batch: restore_schema(&schema, decoded.batch)?,
                bad: decoded.bad,
            })
        }
        Err(_) => {
            // Find the bad lines one by one; the fast path failed somewhere.
            let mut good = Vec::new();
            let mut bad = Vec::new();
            let mut batches = Vec::new();
            for (index, line) in body
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .enumerate()
            {
                match decode_json(&relaxed_schema, line) {
                    Ok(batch) => {
                        good.push(index);
                        batches.push(batch);
                    }
                    Err(message) => bad.push(BadRow {
                        row: index as u64 + 1,
                        column: column_in(&message, &schema),
                        error: message,
                        raw: Some(String::from_utf8_lossy(line).into_owned()),
                    }),
                }
            }
            if table.on_error() == OnError::Reject
                && let Some(first) = bad.first()
            {
                table.record_rejected((good.len() + bad.len()) as u64);
                return Err(Error::user(
                    "22P02",
                    format!("row {}: {}", first.row, first.error),
                ));
            }
            let batch = arrow::compute::concat_batches(&relaxed_schema, &batches)
                .map_err(|e| Error::Internal(format!("NDJSON: {e}")))?;
            let mut nulls = not_null_violations(&schema, &batch);
            // Rows of `batch` are the good lines only: number them as the input's lines.
            for slot in nulls.iter_mut().flatten() {
                let index = usize::try_from(slot.row)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(1);
                slot.row = good.get(index).map_or(slot.row, |line| *line as u64 + 1);
            }
            let decoded = split_bad(table, batch, nulls, &|row| {
                good.get(row)
                    .map(|line| line_of(body, *line))
                    .unwrap_or_default()
            })?;
            bad.extend(decoded.bad);
            Ok(Decoded {
                batch: restore_schema(&schema, decoded.batch)?,
                bad,
            })
        }
    }
}

fn decode_json(schema: &SchemaRef, body: &[u8]) -> std::result::Result<RecordBatch, String> {
    let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(schema))
        .with_strict_mode(true)
        .with_batch_size(JSON_BATCH_ROWS)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    let mut batches = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let read = decoder.decode(&body[at..]).map_err(|e| e.to_string())?;
        at += read;
        if read == 0 || decoder.len() >= JSON_BATCH_ROWS {
            // A full batch: take it out so decoding can go on.
            batches.extend(decoder.flush().map_err(|e| e.to_string())?);
        }
    }
    batches.extend(decoder.flush().map_err(|e| e.to_string())?);
    arrow::compute::concat_batches(schema, &batches).map_err(|e| e.to_string())
}

/// The non-empty line `row` (0-based) of `body`.
fn line_of(body: &[u8], row: usize) -> String {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .nth(row)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default()
}

/// arrow-json names the field in its messages ("whilst decoding field 'temp'").
fn column_in(message: &str, schema: &SchemaRef) -> Option<String> {
    schema
        .fields()
        .iter()
        .map(|f| f.name())
        .find(|name| message.contains(&format!("'{name}'")))
        .cloned()
}

/// Rows with NULL in a NOT NULL column.
fn not_null_violations(schema: &SchemaRef, batch: &RecordBatch) -> Vec<Option<BadRow>> {
    let mut bad: Vec<Option<BadRow>> = vec![None; batch.num_rows()];
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.is_nullable() || column.null_count() == 0 {
            continue;
        }
        for (row, slot) in bad.iter_mut().enumerate() {
            if slot.is_none() && column.is_null(row) {
                *slot = Some(BadRow {
                    row: row as u64 + 1,
                    column: Some(field.name().clone()),
                    error: "null value violates not-null constraint".to_owned(),
                    raw: None,
                });
            }
        }
    }
    bad
}

/// An Arrow IPC stream whose schema matches the table's columns by name and type (nullability
/// may be looser; NULLs in NOT NULL columns are bad rows).
pub(crate) fn from_arrow_ipc(table: &dyn Target, body: &[u8]) -> Result<Vec<Decoded>> {
    let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(body), None)
        .map_err(|e| Error::user("22P04", format!("Arrow IPC stream: {e}")))?;
    check_arrow_schema(table, &reader.schema())?;
    let mut out = Vec::new();
    let mut first_row = 1u64;
    for batch in reader {
        let batch = batch.map_err(|e| Error::user("22P04", format!("Arrow IPC stream: {e}")))?;
        out.push(from_arrow(table, batch, first_row)?);
        first_row += out
            .last()
            .map_or(0, |d| (d.batch.num_rows() + d.bad.len()) as u64);
    }
    Ok(out)
}

/// Refuses an Arrow schema that does not name the table's columns with its types.
pub(crate) fn check_arrow_schema(table: &dyn Target, schema: &Schema) -> Result<()> {
    let expected = table.schema();
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same = expected.fields().len() == schema.fields().len()
        && expected
            .fields()
            .iter()
            .zip(schema.fields())
            .all(|(a, b)| a.name() == b.name() && same_values(a.data_type(), b.data_type()));
    if !same {
        return Err(Error::user(
            "42804",
            format!(
                "Arrow schema ({}) does not match table {} ({})",
                names(schema),
                table.name(),
                names(&expected)
            ),
        ));
    }
    Ok(())
}

/// Whether values of type `theirs` are values of type `ours` as they are: the same type, or
/// timestamps of one unit with time zones on both (the same instants, shown in another zone).
fn same_values(ours: &arrow::datatypes::DataType, theirs: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType::Timestamp;
    match (ours, theirs) {
        (Timestamp(a, Some(_)), Timestamp(b, Some(_))) => a == b,
        _ => ours == theirs,
    }
}

/// One Arrow batch of the table's column types: NOT NULL violations become bad rows.
pub(crate) fn from_arrow(
    table: &dyn Target,
    batch: RecordBatch,
    first_row: u64,
) -> Result<Decoded> {
    let schema = table.schema();
    let mut bad = not_null_violations(&schema, &batch);
    for row in bad.iter_mut().flatten() {
        row.row += first_row - 1;
    }
    // Timestamps in another zone take the table's (a change of type metadata only).
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::user("22P04", format!("Arrow batch: {e}")))?;
    let relaxed_batch = RecordBatch::try_new(relaxed(&schema), columns)
        .map_err(|e| Error::user("22P04", format!("Arrow batch: {e}")))?;
    let decoded = split_bad(table, relaxed_batch, bad, &|_| String::new())?;
    Ok(Decoded {
        batch: restore_schema(&schema, decoded.batch)?,
        bad: decoded.bad,
    })
}
