//! The text and CSV formats. A row ends at a newline that is not escaped by a backslash
//! (text) or not inside quotes (CSV); its fields become Utf8 values (NULL for the NULL
//! marker) that [`crate::ingest::from_text`] converts to the table's types.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};

use super::options::TextOptions;
use super::{
    BATCH_BYTES, BATCH_ROWS, DecodeError, Layout, RawRows, RowDecoder, Status, Step, Taken,
};

/// A field of the current row: where its text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Null,
    /// As written, at this range of the row.
    Plain(usize, usize),
    /// Unescaped or unquoted, at this range of the scratch buffer.
    Owned(usize, usize),
}

/// How far the search for the end of the current row got, so that a row arriving in many
/// chunks is scanned once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Scan {
    position: usize,
    in_quotes: bool,
    /// The previous byte was a backslash (text) or an escape inside quotes (CSV).
    escaped: bool,
}

impl Scan {
    /// The length of the first row of `data`, newline included, once it is complete.
    fn row_end(&mut self, data: &[u8], options: &TextOptions) -> Option<usize> {
        let mut at = self.position;
        if options.csv {
            let (quote, escape) = (options.quote, options.escape);
            while let Some(&byte) = data.get(at) {
                if self.escaped {
                    self.escaped = false;
                    if byte == quote || byte == escape {
                        at += 1;
                        continue;
                    }
                }
                if self.in_quotes {
                    if escape != quote && byte == escape {
                        self.escaped = true;
                    } else if byte == quote {
                        self.in_quotes = false;
                    }
                } else if byte == b'\n' {
                    *self = Scan::default();
                    return Some(at + 1);
                } else if byte == quote {
                    self.in_quotes = true;
                }
                at += 1;
            }
        } else {
            while at < data.len() {
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                    continue;
                }
                let rest = data.get(at..).unwrap_or_default();
                match rest.iter().position(|&b| b == b'\n' || b == b'\\') {
                    None => at = data.len(),
                    Some(offset) => {
                        at += offset;
                        if data.get(at) == Some(&b'\n') {
                            *self = Scan::default();
                            return Some(at + 1);
                        }
                        self.escaped = true;
                        at += 1;
                    }
                }
            }
        }
        self.position = at;
        None
    }
}

pub(super) struct TextDecoder {
    options: TextOptions,
    layout: Layout,
    builders: Vec<StringBuilder>,
    scan: Scan,
    fields: Vec<Value>,
    scratch: Vec<u8>,
    skip_header: bool,
    ended: bool,
    rows: usize,
    bytes: usize,
    bad: Vec<DecodeError>,
    raw: Option<RawRows>,
    stop_on_bad: bool,
}

impl TextDecoder {
    pub(super) fn new(
        options: TextOptions,
        layout: Layout,
        stop_on_bad: bool,
        keep_raw: bool,
    ) -> Self {
        Self {
            skip_header: options.header,
            builders: (0..layout.width()).map(|_| new_builder()).collect(),
            options,
            layout,
            scan: Scan::default(),
            fields: Vec::new(),
            scratch: Vec::new(),
            ended: false,
            rows: 0,
            bytes: 0,
            bad: Vec::new(),
            raw: keep_raw.then(RawRows::default),
            stop_on_bad,
        }
    }

    fn row(&mut self, record: &[u8]) {
        let line = self.strip_line_end(record);
        if self.skip_header {
            self.skip_header = false;
            return;
        }
        if line == b"\\." {
            self.ended = true;
            return;
        }
        match self.split(line) {
            Ok(text) => self.append(text),
            Err(mut error) => {
                error.index = Some(self.rows);
                for builder in &mut self.builders {
                    builder.append_null();
                }
                self.bad.push(error);
            }
        }
        if let Some(raw) = &mut self.raw {
            raw.push(line);
        }
        self.rows += 1;
    }

    fn strip_line_end<'a>(&self, record: &'a [u8]) -> &'a [u8] {
        let line = record.strip_suffix(b"\n").unwrap_or(record);
        match line.strip_suffix(b"\r") {
            // In text, `\` before the CR makes it data.
            Some(stripped)
                if self.options.csv
                    || stripped.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0 =>
            {
                stripped
            }
            _ => line,
        }
    }

    /// Finds the fields of `line`; the row's text on success.
    fn split<'a>(&mut self, line: &'a [u8]) -> Result<&'a str, DecodeError> {
        let text = std::str::from_utf8(line).map_err(|e| {
            error(
                None,
                format!(
                    "invalid byte sequence for encoding \"UTF8\" at byte {}",
                    e.valid_up_to() + 1
                ),
                "22021",
            )
        })?;
        self.fields.clear();
        self.scratch.clear();
        if self.options.csv {
            self.split_csv(line)?;
        } else {
            self.split_text(line)?;
        }
        let width = self.layout.width();
        if self.fields.len() < width {
            return Err(error(
                self.layout.name(self.fields.len()),
                "missing data".to_owned(),
                "22P04",
            ));
        }
        if self.fields.len() > width {
            return Err(error(
                None,
                "extra data after last expected column".to_owned(),
                "22P04",
            ));
        }
        Ok(text)
    }

    fn split_text(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        let delimiter = self.options.delimiter;
        let mut start = 0;
        let mut escaped = false;
        let mut at = 0;
        while let Some(&byte) = line.get(at) {
            if byte == b'\\' {
                escaped = true;
                at += 2;
                continue;
            }
            if byte == delimiter {
                self.text_field(line, start, at, escaped)?;
                start = at + 1;
                escaped = false;
            }
            at += 1;
        }
        self.text_field(line, start, line.len(), escaped)
    }

    fn text_field(
        &mut self,
        line: &[u8],
        start: usize,
        end: usize,
        escaped: bool,
    ) -> Result<(), DecodeError> {
        let raw = line.get(start..end).unwrap_or_default();
        let value = if raw == self.options.null.as_slice() {
            Value::Null
        } else if !escaped {
            Value::Plain(start, end)
        } else {
            let from = self.scratch.len();
            unescape(raw, &mut self.scratch);
            let unescaped = self.scratch.get(from..).unwrap_or_default();
            if std::str::from_utf8(unescaped).is_err() {
                return Err(error(
                    self.layout.name(self.fields.len()),
                    "invalid byte sequence for encoding \"UTF8\"".to_owned(),
                    "22021",
                ));
            }
            Value::Owned(from, self.scratch.len())
        };
        self.fields.push(value);
        Ok(())
    }

    fn split_csv(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        let (delimiter, quote, escape) = (
            self.options.delimiter,
            self.options.quote,
            self.options.escape,
        );
        let mut at = 0;
        loop {
            let start = at;
            while line.get(at).is_some_and(|&b| b != delimiter && b != quote) {
                at += 1;
            }
            if line.get(at) != Some(&quote) {
                let raw = line.get(start..at).unwrap_or_default();
                self.fields.push(if raw == self.options.null.as_slice() {
                    Value::Null
                } else {
                    Value::Plain(start, at)
                });
            } else {
                // Quotes anywhere in the field: its text goes through the scratch buffer. A
                // quoted field is never NULL, so `""` is the empty string.
                let from = self.scratch.len();
                self.scratch
                    .extend_from_slice(line.get(start..at).unwrap_or_default());
                let mut in_quotes = false;
                while let Some(&byte) = line.get(at) {
                    if in_quotes {
                        let next = line.get(at + 1).copied();
                        if byte == escape && (next == Some(escape) || next == Some(quote)) {
                            self.scratch.push(next.unwrap_or(byte));
                            at += 2;
                            continue;
                        }
                        if byte == quote {
                            in_quotes = false;
                        } else {
                            self.scratch.push(byte);
                        }
                    } else if byte == delimiter {
                        break;
                    } else if byte == quote {
                        in_quotes = true;
                    } else {
                        self.scratch.push(byte);
                    }
                    at += 1;
                }
                if in_quotes {
                    return Err(error(
                        self.layout.name(self.fields.len()),
                        "unterminated CSV quoted field".to_owned(),
                        "22P04",
                    ));
                }
                self.fields.push(Value::Owned(from, self.scratch.len()));
            }
            if at >= line.len() {
                return Ok(());
            }
            at += 1;
        }
    }

    fn append(&mut self, text: &str) {
        for (builder, value) in self.builders.iter_mut().zip(&self.fields) {
            match *value {
                Value::Null => builder.append_null(),
                Value::Plain(start, end) => {
                    builder.append_value(text.get(start..end).unwrap_or_default());
                }
                Value::Owned(start, end) => builder.append_value(
                    self.scratch
                        .get(start..end)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .unwrap_or_default(),
                ),
            }
        }
    }
}

impl RowDecoder for TextDecoder {
    fn decode(&mut self, data: &[u8], at_end: bool) -> Result<Step, DecodeError> {
        let mut at = 0;
        loop {
            if self.ended {
                // Postgres ignores what follows the end-of-data marker.
                return Ok(Step {
                    consumed: data.len(),
                    status: Status::Finished,
                });
            }
            if self.rows >= BATCH_ROWS || self.bytes >= BATCH_BYTES {
                return Ok(Step {
                    consumed: at,
                    status: Status::Full,
                });
            }
            let rest = data.get(at..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let length = match self.scan.row_end(rest, &self.options) {
                Some(length) => length,
                None if at_end => {
                    self.scan = Scan::default();
                    rest.len()
                }
                None => break,
            };
            at += length;
            self.bytes += length;
            self.row(rest.get(..length).unwrap_or_default());
            if self.stop_on_bad && !self.bad.is_empty() {
                break;
            }
        }
        Ok(Step {
            consumed: at,
            status: Status::NeedMore,
        })
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn width(&self) -> usize {
        self.layout.width()
    }

    fn has_bad(&self) -> bool {
        !self.bad.is_empty()
    }

    fn is_text(&self) -> bool {
        true
    }

    fn take(&mut self) -> Taken {
        let inputs: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|builder| Arc::new(std::mem::replace(builder, new_builder()).finish()) as ArrayRef)
            .collect();
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        Taken {
            columns: self.layout.assemble(inputs, rows, true),
            rows,
            bad: std::mem::take(&mut self.bad),
            raw: self.raw.as_mut().map(std::mem::take),
        }
    }
}

fn new_builder() -> StringBuilder {
    StringBuilder::with_capacity(4096, 64 * 1024)
}

fn error(column: Option<String>, message: String, sqlstate: &'static str) -> DecodeError {
    DecodeError {
        index: None,
        column,
        message,
        sqlstate,
    }
}

/// Resolves the backslash escapes of the text format: `\b \f \n \r \t \v`, octal `\123`, hex
/// `\x41`; any other escaped character stands for itself.
pub(super) fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut at = 0;
    while let Some(&byte) = raw.get(at) {
        at += 1;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some(&code) = raw.get(at) else {
            out.push(b'\\');
            break;
        };
        at += 1;
        let value = match code {
            b'0'..=b'7' => {
                let mut value = u32::from(code - b'0');
                for _ in 0..2 {
                    match raw.get(at) {
                        Some(&digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            at += 1;
                        }
                        _ => break,
                    }
                }
                (value & 0xff) as u8
            }
            b'x' => match raw.get(at).and_then(|&b| hex(b)) {
                Some(high) => {
                    at += 1;
                    match raw.get(at).and_then(|&b| hex(b)) {
                        Some(low) => {
                            at += 1;
                            high * 16 + low
                        }
                        None => high,
                    }
                }
                None => b'x',
            },
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            other => other,
        };
        out.push(value);
    }
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|d| d as u8)
}
