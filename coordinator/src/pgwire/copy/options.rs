//! What a `COPY ... FROM STDIN` statement asks for: the format with its options (both the
//! `WITH (FORMAT csv, HEADER, ...)` and the pre-9.0 `CSV HEADER` spelling) and the columns.

use arrow::datatypes::Schema;
use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption, Ident};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Format {
    Text(TextOptions),
    Binary,
}

/// Options of the text and CSV formats, as bytes (all ASCII).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TextOptions {
    pub(super) csv: bool,
    pub(super) delimiter: u8,
    pub(super) quote: u8,
    pub(super) escape: u8,
    /// The text that stands for NULL: `\N` in text, the empty unquoted field in CSV.
    pub(super) null: Vec<u8>,
    pub(super) header: bool,
}

impl TextOptions {
    pub(super) fn text() -> Self {
        Self {
            csv: false,
            delimiter: b'\t',
            quote: b'"',
            escape: b'"',
            null: b"\\N".to_vec(),
            header: false,
        }
    }

    pub(super) fn csv() -> Self {
        Self {
            csv: true,
            delimiter: b',',
            null: Vec::new(),
            ..Self::text()
        }
    }
}

/// The options as written, before defaults.
#[derive(Debug, Default)]
struct Written {
    format: Option<String>,
    delimiter: Option<char>,
    null: Option<String>,
    header: Option<bool>,
    quote: Option<char>,
    escape: Option<char>,
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(Error::syntax("conflicting or redundant options"));
    }
    *slot = Some(value);
    Ok(())
}

fn unsupported(option: impl std::fmt::Display) -> Error {
    Error::unsupported(format!("COPY option {option} is not supported"))
}

/// The format `options` and `legacy` ask for, checked as Postgres checks them.
pub(super) fn format(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<Format> {
    let mut written = Written::default();
    for option in options {
        match option {
            CopyOption::Format(name) => set(&mut written.format, name.value.to_lowercase())?,
            CopyOption::Freeze(_) => {}
            CopyOption::Delimiter(c) => set(&mut written.delimiter, *c)?,
            CopyOption::Null(s) => set(&mut written.null, s.clone())?,
            CopyOption::Header(on) => set(&mut written.header, *on)?,
            CopyOption::Quote(c) => set(&mut written.quote, *c)?,
            CopyOption::Escape(c) => set(&mut written.escape, *c)?,
            CopyOption::Encoding(name) => check_encoding(name)?,
            other => return Err(unsupported(other)),
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Binary => set(&mut written.format, "binary".to_owned())?,
            CopyLegacyOption::Csv(csv_options) => {
                set(&mut written.format, "csv".to_owned())?;
                for csv_option in csv_options {
                    match csv_option {
                        CopyLegacyCsvOption::Header => set(&mut written.header, true)?,
                        CopyLegacyCsvOption::Quote(c) => set(&mut written.quote, *c)?,
                        CopyLegacyCsvOption::Escape(c) => set(&mut written.escape, *c)?,
                        other => return Err(unsupported(other)),
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => set(&mut written.delimiter, *c)?,
            CopyLegacyOption::Null(s) => set(&mut written.null, s.clone())?,
            CopyLegacyOption::Header => set(&mut written.header, true)?,
            other => return Err(unsupported(other)),
        }
    }
    match written.format.as_deref().unwrap_or("text") {
        "binary" => {
            let given = [
                ("DELIMITER", written.delimiter.is_some()),
                ("NULL", written.null.is_some()),
                ("HEADER", written.header.is_some()),
                ("QUOTE", written.quote.is_some()),
                ("ESCAPE", written.escape.is_some()),
            ];
            if let Some((name, _)) = given.iter().find(|(_, given)| *given) {
                return Err(Error::syntax(format!(
                    "cannot specify {name} in BINARY mode"
                )));
            }
            Ok(Format::Binary)
        }
        "text" => {
            if written.quote.is_some() || written.escape.is_some() {
                return Err(Error::unsupported("COPY QUOTE and ESCAPE require CSV mode"));
            }
            let mut options = TextOptions::text();
            apply(&mut options, &written)?;
            if options.delimiter == b'\\' || options.delimiter.is_ascii_alphanumeric() {
                return Err(Error::user(
                    "22023",
                    format!(
                        "COPY delimiter cannot be \"{}\"",
                        char::from(options.delimiter)
                    ),
                ));
            }
            Ok(Format::Text(options))
        }
        "csv" => {
            let mut options = TextOptions::csv();
            apply(&mut options, &written)?;
            if let Some(quote) = written.quote {
                options.quote = single_byte("QUOTE", quote)?;
                options.escape = options.quote;
            }
            if let Some(escape) = written.escape {
                options.escape = single_byte("ESCAPE", escape)?;
            }
            if options.delimiter == options.quote {
                return Err(Error::user(
                    "22023",
                    "COPY delimiter and quote must be different",
                ));
            }
            Ok(Format::Text(options))
        }
        other => Err(Error::user(
            "22023",
            format!("COPY format \"{other}\" not recognized"),
        )),
    }
}

fn apply(options: &mut TextOptions, written: &Written) -> Result<()> {
    if let Some(delimiter) = written.delimiter {
        options.delimiter = single_byte("delimiter", delimiter)?;
    }
    if matches!(options.delimiter, b'\r' | b'\n') {
        return Err(Error::user(
            "22023",
            "COPY delimiter cannot be newline or carriage return",
        ));
    }
    if let Some(null) = &written.null {
        if null.contains(['\r', '\n']) {
            return Err(Error::user(
                "22023",
                "COPY null representation cannot use newline or carriage return",
            ));
        }
        options.null = null.as_bytes().to_vec();
    }
    if options.null.contains(&options.delimiter) {
        return Err(Error::user(
            "22023",
            "COPY delimiter must not appear in the NULL specification",
        ));
    }
    options.header = written.header.unwrap_or(false);
    Ok(())
}

fn single_byte(option: &str, c: char) -> Result<u8> {
    u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| {
        Error::unsupported(format!("COPY {option} must be a single one-byte character"))
    })
}

fn check_encoding(name: &str) -> Result<()> {
    let normalized = name.to_ascii_lowercase().replace(['-', '_'], "");
    if matches!(normalized.as_str(), "utf8" | "unicode" | "sqlascii") {
        return Ok(());
    }
    Err(Error::unsupported(format!(
        "COPY ENCODING \"{name}\" is not supported; send UTF8"
    )))
}

/// The table column of each input column: the column list, or every column in order.
pub(super) fn column_targets(
    schema: &Schema,
    columns: &[Ident],
    table: &str,
) -> Result<Vec<usize>> {
    if columns.is_empty() {
        return Ok((0..schema.fields().len()).collect());
    }
    let mut targets = Vec::with_capacity(columns.len());
    for column in columns {
        let name = if column.quote_style.is_some() {
            column.value.clone()
        } else {
            column.value.to_lowercase()
        };
        let Some(index) = schema.fields().iter().position(|f| f.name() == &name) else {
            return Err(Error::user(
                "42703",
                format!("column \"{name}\" of relation \"{table}\" does not exist"),
            ));
        };
        if targets.contains(&index) {
            return Err(Error::user(
                "42701",
                format!("column \"{name}\" specified more than once"),
            ));
        }
        targets.push(index);
    }
    if let Some(missing) = schema
        .fields()
        .iter()
        .enumerate()
        .find(|(index, field)| !field.is_nullable() && !targets.contains(index))
    {
        return Err(Error::User {
            sqlstate: "23502",
            message: format!(
                "column \"{}\" of relation \"{table}\" is NOT NULL but not in the COPY column list",
                missing.1.name()
            ),
            hint: Some("add it to the column list".to_owned()),
        });
    }
    Ok(targets)
}
