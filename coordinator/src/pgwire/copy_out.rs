//! `COPY table [(columns)] TO STDOUT` and `COPY (query) TO STDOUT`, in text, CSV and binary
//! format: psql's `\copy ... to`, psycopg's `cursor.copy()`, pandas and BI exports. The rows
//! stream batch by batch as CopyData messages, each value in the same Postgres text or binary
//! form a `SELECT` would send.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::results::FieldFormat;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::response::CommandComplete;

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
    let (query, format) = match plan(statement) {
        Ok(planned) => planned,
        Err(error) => return Ok(Err(error)),
    };
    let parsed = match parse(&query).map(|mut s| s.pop()) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(Err(Error::syntax("COPY needs a query"))),
        Err(error) => return Ok(Err(error)),
    };
    let (schema, mut stream) = match session.execute(&parsed, None).await {
        Ok(Output::Rows { schema, stream }) => (schema, stream),
        Ok(_) => {
            return Ok(Err(Error::syntax(
                "COPY (query) TO needs a query that returns rows",
            )));
        }
        Err(error) => return Ok(Err(error)),
    };
    let columns = schema.fields().len();
    let binary = matches!(format, Format::Binary);
    let wire = i16::from(binary);
    client
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            i8::from(binary),
            i16::try_from(columns).unwrap_or(i16::MAX),
            vec![wire; columns],
        )))
        .await?;
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
    // Clients read one row per CopyData message, as Postgres sends them; the binary header
    // travels with the first row (or the trailer).
    let mut header = Some(header).filter(|h| !h.is_empty());
    let field_format = if binary {
        FieldFormat::Binary
    } else {
        FieldFormat::Text
    };
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(batch) => batch,
            // The client is in copy-out mode: an ErrorResponse ends it (as in Postgres).
            Err(error) => return Ok(Err(Error::from(error))),
        };
        let encoded = match super::encode::encode_batch(&batch, &vec![field_format; columns]) {
            Ok(encoded) => encoded,
            Err(error) => return Ok(Err(error)),
        };
        for row in &encoded {
            let mut out = header.take().unwrap_or_default();
            write_row(&mut out, &row.data, row.field_count, &format);
            client
                .feed(PgWireBackendMessage::CopyData(CopyData::new(out.freeze())))
                .await?;
        }
        rows += encoded.len() as u64;
        client.flush().await?;
    }
    if let Some(header) = header.take().filter(|_| !binary) {
        // A CSV header with no rows after it.
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(
                header.freeze(),
            )))
            .await?;
    }
    if binary {
        let mut trailer = header.take().unwrap_or_default();
        trailer.put_i16(-1);
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(
                trailer.freeze(),
            )))
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
