//! `COPY table [(columns)] TO STDOUT` and `COPY (query) TO STDOUT`, in text, CSV and binary
//! format: psql's `\copy ... to`, psycopg's `cursor.copy()`, pandas and BI exports. The rows
//! stream batch by batch as CopyData messages, each value in the same Postgres text or binary
//! form a `SELECT` would send. `COPY ... TO 'file'` writes the same bytes to a file or an
//! object-store URL instead.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::results::FieldFormat;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::response::CommandComplete;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;

use crate::error::{Error, Result};
use crate::session::Session;
use crate::statements::{Output, ParsedStatement, parse};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
    Statement as SqlStatement,
};

/// How rows are written.
#[derive(Debug, Clone)]
enum Format {
    Text {
        delimiter: char,
        null: String,
    },
    Csv {
        delimiter: char,
        null: String,
        quote: char,
        header: bool,
    },
    Binary,
}

/// The `COPY ... TO STDOUT` statement in `parsed`, if it is one.
pub(super) fn to_stdout(parsed: &ParsedStatement) -> Option<&SqlStatement> {
    match &parsed.statement {
        DfStatement::Statement(statement)
            if matches!(
                statement.as_ref(),
                SqlStatement::Copy {
                    to: true,
                    target: CopyTarget::Stdout,
                    ..
                }
            ) =>
        {
            Some(statement)
        }
        _ => None,
    }
}

/// The `COPY ... TO 'file'` statement in `parsed` and its file, if it is one.
pub(super) fn to_file(parsed: &ParsedStatement) -> Option<(&SqlStatement, &str)> {
    match &parsed.statement {
        DfStatement::Statement(statement) => match statement.as_ref() {
            SqlStatement::Copy {
                to: true,
                target: CopyTarget::File { filename },
                ..
            } => Some((statement, filename.as_str())),
            _ => None,
        },
        _ => None,
    }
}

/// Runs the COPY's query and streams its rows to `client`; returns the row count.
pub(super) async fn run<C>(
    client: &mut C,
    session: &Arc<Session>,
    statement: &SqlStatement,
) -> PgWireResult<Result<u64>>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let (mut encoder, mut stream) = match start(session, statement).await {
        Ok(started) => started,
        Err(error) => return Ok(Err(error)),
    };
    let binary = matches!(encoder.format, Format::Binary);
    let wire = i16::from(binary);
    client
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            i8::from(binary),
            i16::try_from(encoder.columns).unwrap_or(i16::MAX),
            vec![wire; encoder.columns],
        )))
        .await?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        // The client is in copy-out mode: an ErrorResponse ends it (as in Postgres).
        let encoded = match batch.map_err(Error::from).and_then(|b| encoder.rows(&b)) {
            Ok(encoded) => encoded,
            Err(error) => return Ok(Err(error)),
        };
        rows += encoded.len() as u64;
        // Clients read one row per CopyData message, as Postgres sends them.
        for row in encoded {
            client
                .feed(PgWireBackendMessage::CopyData(CopyData::new(row.freeze())))
                .await?;
        }
        client.flush().await?;
    }
    if let Some(last) = encoder.finish() {
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(last.freeze())))
            .await?;
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    client
        .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
            format!("COPY {rows}"),
        )))
        .await?;
    Ok(Ok(rows))
}

/// `COPY ... TO 'file'`: the same bytes `TO STDOUT` would send, written by the coordinator to
/// an absolute path on its machine or to an object-store URL (`s3://bucket/key`, `file:///..`).
/// As in Postgres (where only superusers may; every Basin session is one) the file is written
/// with the server's own permissions. The object is complete or absent: it is uploaded (or, on
/// a local disk, written under a temporary name and renamed) when the last row is encoded.
/// Returns the `COPY n` tag's count.
pub(super) async fn run_to_file(
    session: &Arc<Session>,
    statement: &SqlStatement,
    filename: &str,
    guard: &super::execution::StatementGuard,
) -> Result<u64> {
    use datafusion::execution::object_store::ObjectStoreRegistry;
    use tokio::io::AsyncWriteExt;
    let url = file_url(filename)?;
    crate::statements::check_local_target(url.as_str())?;
    let path = object_store::path::Path::from_url_path(url.path()).map_err(|e| {
        Error::user(
            "42602",
            format!("invalid COPY file name \"{filename}\": {e}"),
        )
    })?;
    let store = session
        .server
        .catalog
        .object_stores()
        .get_store(&url)
        .map_err(Error::from)?;
    let (mut encoder, mut stream) = tokio::select! {
        started = start(session, statement) => started?,
        () = guard.token.cancelled() => return Err(guard.error()),
    };
    let mut out = object_store::buffered::BufWriter::new(store, path);
    let failed = |e: std::io::Error| {
        crate::statements::file_access_error(
            &e,
            format!("could not write COPY file \"{filename}\": {e}"),
        )
    };
    let mut rows = 0u64;
    let written: Result<()> = async {
        loop {
            let batch = tokio::select! {
                batch = stream.next() => batch,
                () = guard.token.cancelled() => return Err(guard.error()),
            };
            let Some(batch) = batch else { break };
            let encoded = encoder.rows(&batch?)?;
            rows += encoded.len() as u64;
            let mut chunk = BytesMut::new();
            for row in encoded {
                chunk.unsplit(row);
            }
            tokio::select! {
                written = out.write_all(&chunk) => written.map_err(failed)?,
                () = guard.token.cancelled() => return Err(guard.error()),
            }
        }
        if let Some(last) = encoder.finish() {
            tokio::select! {
                written = out.write_all(&last) => written.map_err(failed)?,
                () = guard.token.cancelled() => return Err(guard.error()),
            }
        }
        Ok(())
    }
    .await;
    match written {
        // `shutdown` uploads what is buffered and completes the upload (or the local rename).
        // Cancelled there, the writer is dropped: an object never completed is never visible.
        Ok(()) => tokio::select! {
            done = out.shutdown() => done.map_err(failed)?,
            () = guard.token.cancelled() => return Err(guard.error()),
        },
        Err(error) => {
            // Nothing half-written is left behind: a pending multipart upload is aborted.
            // (`abort` is only valid before `shutdown`, which was not called.)
            let _ = out.abort().await;
            return Err(error);
        }
    }
    Ok(rows)
}

/// The object-store URL of a COPY target: a URL with a scheme, or an absolute local path
/// (Postgres refuses relative paths, whose meaning depends on the server's directory).
fn file_url(filename: &str) -> Result<url::Url> {
    // `#` and `?` are part of an object's name here, not URL syntax: `s3://b/daily#1.csv` is
    // the key `daily#1.csv` (the URL parser would take `#1.csv` for a fragment).
    let escaped = filename.replace('#', "%23").replace('?', "%3F");
    if let Ok(url) = url::Url::parse(&escaped)
        && url.scheme().len() > 1
    {
        return Ok(url);
    }
    if !std::path::Path::new(filename).is_absolute() {
        return Err(Error::user(
            "42602",
            "relative path not allowed for COPY to file",
        ));
    }
    if filename.ends_with('/') || std::path::Path::new(filename).is_dir() {
        return Err(Error::user(
            "42809",
            format!("\"{filename}\" is a directory"),
        ));
    }
    url::Url::from_file_path(filename)
        .map_err(|()| Error::user("42602", format!("invalid COPY file name \"{filename}\"")))
}

/// Plans and starts the COPY's query.
async fn start(
    session: &Arc<Session>,
    statement: &SqlStatement,
) -> Result<(Encoder, SendableRecordBatchStream)> {
    let (query, format) = plan(statement)?;
    let parsed = parse(&query)?
        .pop()
        .ok_or_else(|| Error::syntax("COPY needs a query"))?;
    match session.execute(&parsed, None).await? {
        Output::Rows { schema, stream } => Ok((Encoder::new(format, &schema), stream)),
        _ => Err(Error::syntax(
            "COPY (query) TO needs a query that returns rows",
        )),
    }
}

/// Turns batches into COPY data: one buffer per row, the header (binary signature or CSV
/// column names) in front of the first.
struct Encoder {
    format: Format,
    columns: usize,
    header: Option<BytesMut>,
}

impl Encoder {
    fn new(format: Format, schema: &SchemaRef) -> Self {
        let mut header = BytesMut::new();
        match &format {
            Format::Binary => {
                header.put_slice(b"PGCOPY\n\xff\r\n\0");
                header.put_i32(0);
                header.put_i32(0);
            }
            Format::Csv {
                header: true,
                delimiter,
                quote,
                ..
            } => {
                let names: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| csv_field(f.name(), *delimiter, *quote, false))
                    .collect();
                header.put_slice(names.join(&delimiter.to_string()).as_bytes());
                header.put_u8(b'\n');
            }
            _ => {}
        }
        Self {
            format,
            columns: schema.fields().len(),
            header: Some(header).filter(|h| !h.is_empty()),
        }
    }

    /// The rows of `batch`, one buffer each.
    fn rows(&mut self, batch: &RecordBatch) -> Result<Vec<BytesMut>> {
        let field_format = if matches!(self.format, Format::Binary) {
            FieldFormat::Binary
        } else {
            FieldFormat::Text
        };
        let encoded = super::encode::encode_batch(batch, &vec![field_format; self.columns])?;
        Ok(encoded
            .iter()
            .map(|row| {
                let mut out = self.header.take().unwrap_or_default();
                write_row(&mut out, &row.data, row.field_count, &self.format);
                out
            })
            .collect())
    }

    /// What follows the last row: a CSV header never sent (no rows), the binary trailer.
    fn finish(&mut self) -> Option<BytesMut> {
        let mut out = self.header.take().unwrap_or_default();
        if matches!(self.format, Format::Binary) {
            out.put_i16(-1);
        }
        Some(out).filter(|out| !out.is_empty())
    }
}

/// The query a COPY reads and its output format.
fn plan(statement: &SqlStatement) -> Result<(String, Format)> {
    let SqlStatement::Copy {
        source,
        options,
        legacy_options,
        ..
    } = statement
    else {
        return Err(Error::Internal(
            "COPY TO without a COPY statement".to_owned(),
        ));
    };
    let query = match source {
        CopySource::Table {
            table_name,
            columns,
        } => {
            let list = if columns.is_empty() {
                "*".to_owned()
            } else {
                columns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("SELECT {list} FROM {table_name}")
        }
        CopySource::Query(query) => query.to_string(),
    };
    Ok((query, format(options, legacy_options)?))
}

fn format(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<Format> {
    let mut kind = "text".to_owned();
    let mut delimiter = None;
    let mut null = None;
    let mut quote = '"';
    let mut header = false;
    for option in options {
        match option {
            CopyOption::Format(name) => kind = name.value.to_lowercase(),
            CopyOption::Delimiter(c) => delimiter = Some(*c),
            CopyOption::Null(text) => null = Some(text.clone()),
            CopyOption::Header(on) => header = *on,
            CopyOption::Quote(c) => quote = *c,
            CopyOption::Encoding(name) if name.eq_ignore_ascii_case("utf8") => {}
            other => {
                return Err(Error::unsupported(format!(
                    "COPY TO option {other} is not supported"
                )));
            }
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Binary => kind = "binary".to_owned(),
            CopyLegacyOption::Csv(csv) => {
                kind = "csv".to_owned();
                for item in csv {
                    match item {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(c) => quote = *c,
                        other => {
                            return Err(Error::unsupported(format!(
                                "COPY TO option {other} is not supported"
                            )));
                        }
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
            CopyLegacyOption::Null(text) => null = Some(text.clone()),
            other => {
                return Err(Error::unsupported(format!(
                    "COPY TO option {other} is not supported"
                )));
            }
        }
    }
    match kind.as_str() {
        "text" => Ok(Format::Text {
            delimiter: delimiter.unwrap_or('\t'),
            null: null.unwrap_or_else(|| "\\N".to_owned()),
        }),
        "csv" => Ok(Format::Csv {
            delimiter: delimiter.unwrap_or(','),
            null: null.unwrap_or_default(),
            quote,
            header,
        }),
        "binary" => Ok(Format::Binary),
        other => Err(Error::user(
            "22023",
            format!("COPY format \"{other}\" not recognized"),
        )),
    }
}

/// Writes one encoded row (`data`: each value as a 4-byte length, -1 for NULL, then bytes).
fn write_row(out: &mut BytesMut, data: &[u8], fields: i16, format: &Format) {
    if let Format::Binary = format {
        // PGCOPY's tuple layout is the DataRow layout after a field count.
        out.put_i16(fields);
        out.put_slice(data);
        return;
    }
    let mut at = 0;
    for index in 0..usize::try_from(fields).unwrap_or(0) {
        let Some(length) = data
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            break;
        };
        at += 4;
        let value = match usize::try_from(length) {
            Ok(length) => {
                let bytes = data.get(at..at + length).unwrap_or_default();
                at += length;
                Some(String::from_utf8_lossy(bytes))
            }
            Err(_) => None,
        };
        match format {
            Format::Text { delimiter, null } => {
                if index > 0 {
                    out.put_slice(delimiter.to_string().as_bytes());
                }
                match value {
                    None => out.put_slice(null.as_bytes()),
                    Some(text) => out.put_slice(text_escape(&text, *delimiter).as_bytes()),
                }
            }
            Format::Csv {
                delimiter,
                null,
                quote,
                ..
            } => {
                if index > 0 {
                    out.put_slice(delimiter.to_string().as_bytes());
                }
                match value {
                    None => out.put_slice(null.as_bytes()),
                    Some(text) => out.put_slice(
                        csv_field(&text, *delimiter, *quote, text.as_ref() == null.as_str())
                            .as_bytes(),
                    ),
                }
            }
            Format::Binary => {}
        }
    }
    out.put_u8(b'\n');
}

/// COPY text escaping: backslash, newline, carriage return, tab and the delimiter.
fn text_escape(value: &str, delimiter: char) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A CSV field, quoted when it holds the delimiter, the quote, a line break, or would read back
/// as NULL (`force`).
fn csv_field(value: &str, delimiter: char, quote: char, force: bool) -> String {
    let needs = force
        || value.contains(delimiter)
        || value.contains(quote)
        || value.contains('\n')
        || value.contains('\r');
    if !needs {
        return value.to_owned();
    }
    let doubled = value.replace(quote, &format!("{quote}{quote}"));
    format!("{quote}{doubled}{quote}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(text_escape("a\tb\\c\nd", '\t'), "a\\tb\\\\c\\nd");
        assert_eq!(csv_field("plain", ',', '"', false), "plain");
        assert_eq!(csv_field("a,b", ',', '"', false), "\"a,b\"");
        assert_eq!(
            csv_field("say \"hi\"", ',', '"', false),
            "\"say \"\"hi\"\"\""
        );
        assert_eq!(csv_field("", ',', '"', true), "\"\"");
    }

    #[test]
    fn rows_in_text_and_csv() {
        let mut data = BytesMut::new();
        data.put_i32(1);
        data.put_slice(b"1");
        data.put_i32(-1);
        data.put_i32(0);
        let mut out = BytesMut::new();
        write_row(
            &mut out,
            &data,
            3,
            &Format::Text {
                delimiter: '\t',
                null: "\\N".to_owned(),
            },
        );
        assert_eq!(&out[..], b"1\t\\N\t\n");
        let mut out = BytesMut::new();
        write_row(
            &mut out,
            &data,
            3,
            &Format::Csv {
                delimiter: ',',
                null: String::new(),
                quote: '"',
                header: false,
            },
        );
        assert_eq!(&out[..], b"1,,\"\"\n");
    }
}
