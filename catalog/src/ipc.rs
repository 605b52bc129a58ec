//! Arrow IPC streams as Basin moves single batches and schemas: into log frames and between
//! the coordinator and the executors hosting streaming-table shards.
//!
//! The bytes come from the network (and from log files), so every declared size in them is
//! checked against the bytes that are there before arrow reads the stream. Needs only `arrow`:
//! the fuzz targets `arrow_ipc` and `stream_log` (`fuzz/`) compile this very file with `#[path]`.

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

#[path = "ipc_layout.rs"]
mod layout;

/// `batch` as an IPC stream: its schema, the batch, the end marker.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    // Sized up front: growing a multi-megabyte buffer by doubling copies it several times.
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 4096);
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// The one batch of an IPC stream written by [`encode_batch`]. More or fewer batches are an
/// error, so a framing mistake cannot pass for an empty append.
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch, ArrowError> {
    check_framing(bytes)?;
    let mut reader = StreamReader::try_new(bytes, None)?;
    let batch = reader
        .next()
        .ok_or_else(|| ArrowError::IpcError("the IPC stream holds no batch".to_owned()))??;
    if reader.next().is_some() {
        return Err(ArrowError::IpcError(
            "the IPC stream holds more than one batch".to_owned(),
        ));
    }
    Ok(batch)
}

/// `schema` as an IPC stream with no batches.
pub fn encode_schema(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, schema)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// The schema of an IPC stream.
pub fn decode_schema(bytes: &[u8]) -> Result<SchemaRef, ArrowError> {
    check_framing(bytes)?;
    Ok(StreamReader::try_new(bytes, None)?.schema())
}

/// Checks the framing of an IPC stream held in memory before arrow's `StreamReader` reads it.
/// The reader (arrow-ipc 59) allocates each message's metadata and body at their declared sizes
/// before reading them, so a 4-byte input could make it allocate 2 GiB, and a negative body
/// length aborts the process on a capacity overflow (found by the `arrow_ipc` fuzz target).
/// This walks the messages as the reader does (continuation marker or not, a zero length ends
/// the stream, fewer than four bytes is the end) and refuses any size the bytes cannot hold,
/// and any batch whose buffer layout arrow-ipc would panic on ([`layout`]).
fn check_framing(mut bytes: &[u8]) -> Result<(), ArrowError> {
    fn word(bytes: &[u8]) -> Option<([u8; 4], &[u8])> {
        let (head, rest) = bytes.split_first_chunk::<4>()?;
        Some((*head, rest))
    }
    let truncated =
        |what: &str| ArrowError::IpcError(format!("the IPC stream ends inside a message {what}"));
    let mut messages = MessageCheck::default();
    loop {
        let Some((first, rest)) = word(bytes) else {
            return Ok(());
        };
        let (length, rest) = if first == [0xff; 4] {
            let Some(next) = word(rest) else {
                return Err(truncated("length"));
            };
            next
        } else {
            (first, rest)
        };
        let meta_len = i32::from_le_bytes(length);
        if meta_len == 0 {
            return Ok(());
        }
        let meta_len = usize::try_from(meta_len)
            .map_err(|_| ArrowError::IpcError(format!("invalid IPC metadata length {meta_len}")))?;
        let meta = rest.get(..meta_len).ok_or_else(|| truncated("header"))?;
        let body_len = messages.check(meta)?;
        bytes = rest[meta_len..]
            .get(body_len..)
            .ok_or_else(|| truncated("body"))?;
    }
}

/// The checks of one IPC stream's messages, in order: a schema message's flatbuffer (which
/// arrow-ipc converts with panicking code), then each batch's buffers against the message body
/// and the schema's layout. Also run on `FlightData` before arrow-flight decodes it, where the
/// header and body arrive as two byte strings of one message.
#[derive(Default)]
pub struct MessageCheck {
    schema: Option<Schema>,
    dictionaries: std::collections::HashMap<i64, arrow::datatypes::DataType>,
}

impl MessageCheck {
    /// Checks the message whose flatbuffer header is `meta`; returns the body length it
    /// declares (the caller checks the body holds it).
    pub fn check(&mut self, meta: &[u8]) -> Result<usize, ArrowError> {
        let message = arrow::ipc::root_as_message(meta)
            .map_err(|e| ArrowError::IpcError(format!("invalid IPC message header: {e}")))?;
        if let Some(schema) = message.header_as_schema() {
            check_schema(schema)?;
            let checked = arrow::ipc::convert::fb_to_schema(schema);
            self.dictionaries = layout::dictionaries(&checked);
            self.schema = Some(checked);
        }
        let body_len = usize::try_from(message.bodyLength()).map_err(|_| {
            ArrowError::IpcError(format!("invalid IPC body length {}", message.bodyLength()))
        })?;
        if let Some(batch) = message.header_as_record_batch() {
            check_buffers(batch, body_len)?;
            if let Some(schema) = &self.schema {
                layout::check_batch(batch, schema.fields().iter().map(|f| f.data_type()))?;
            }
        }
        if let Some(dictionary) = message.header_as_dictionary_batch()
            && let Some(batch) = dictionary.data()
        {
            check_buffers(batch, body_len)?;
            let value_type = self.dictionaries.get(&dictionary.id()).ok_or_else(|| {
                ArrowError::IpcError(format!(
                    "IPC dictionary batch for unknown dictionary id {}",
                    dictionary.id()
                ))
            })?;
            layout::check_batch(batch, [value_type])?;
        }
        Ok(body_len)
    }

    /// Checks one `FlightData` message: `header` is its IPC message flatbuffer (empty for a
    /// message carrying only a descriptor or app metadata), `body` its data body, which must
    /// hold what the header declares (arrow-flight slices it at the declared buffer offsets).
    pub fn check_flight_data(&mut self, header: &[u8], body: &[u8]) -> Result<(), ArrowError> {
        if header.is_empty() {
            return Ok(());
        }
        let body_len = self.check(header)?;
        if body.len() < body_len {
            return Err(ArrowError::IpcError(format!(
                "FlightData declares a body of {body_len} bytes and carries {}",
                body.len()
            )));
        }
        Ok(())
    }
}

/// Every buffer of a batch must lie inside the message body: arrow-ipc 59 slices the body at the
/// declared offsets and panics when one is out of range (found by the `stream_log` fuzz target).
fn check_buffers(batch: arrow::ipc::RecordBatch<'_>, body_len: usize) -> Result<(), ArrowError> {
    let Some(buffers) = batch.buffers() else {
        return Ok(());
    };
    for buffer in buffers {
        let inside = usize::try_from(buffer.offset())
            .ok()
            .zip(usize::try_from(buffer.length()).ok())
            .and_then(|(offset, length)| offset.checked_add(length))
            .is_some_and(|end| end <= body_len);
        if !inside {
            return Err(ArrowError::IpcError(format!(
                "IPC buffer at offset {} of length {} lies outside the message body of {body_len} \
                 bytes",
                buffer.offset(),
                buffer.length()
            )));
        }
    }
    Ok(())
}

/// Refuses a schema message that arrow-ipc 59 would panic on while converting it (its
/// `fb_to_schema` and `get_data_type` are infallible and unwrap or `panic!` on a missing field
/// list, a missing type table, a bad bit width or unit, a wrong child count, a big-endian
/// decimal, an unknown type: found by the `arrow_ipc` fuzz target). Union types are refused as
/// well: Basin never writes them, and arrow panics on inconsistent type ids.
fn check_schema(schema: arrow::ipc::Schema<'_>) -> Result<(), ArrowError> {
    if schema.endianness() != arrow::ipc::Endianness::Little {
        return Err(unsupported("a big-endian IPC schema"));
    }
    let fields = schema
        .fields()
        .ok_or_else(|| unsupported("an IPC schema without a field list"))?;
    fields.iter().try_for_each(check_field)
}

fn unsupported(what: &str) -> ArrowError {
    ArrowError::IpcError(format!("unsupported or invalid IPC schema: {what}"))
}

fn check_field(field: arrow::ipc::Field<'_>) -> Result<(), ArrowError> {
    use arrow::ipc::{DateUnit, IntervalUnit, Precision, TimeUnit as Unit, Type};
    let bad = |what: &str| unsupported(&format!("{what} in field {:?}", field.name()));
    let time_units = [
        Unit::SECOND,
        Unit::MILLISECOND,
        Unit::MICROSECOND,
        Unit::NANOSECOND,
    ];
    let int_width = |width: i32| matches!(width, 8 | 16 | 32 | 64);
    if let Some(dictionary) = field.dictionary() {
        let index = dictionary
            .indexType()
            .ok_or_else(|| bad("a dictionary without an index type"))?;
        if !int_width(index.bitWidth()) {
            return Err(bad("a dictionary index of an unsupported width"));
        }
    }
    let children = || field.children().map_or(0, |c| c.len());
    let ok = match field.type_type() {
        Type::Null
        | Type::Bool
        | Type::Binary
        | Type::LargeBinary
        | Type::BinaryView
        | Type::Utf8
        | Type::LargeUtf8
        | Type::Utf8View
        | Type::Struct_ => true,
        Type::Int => field.type_as_int().is_some_and(|t| int_width(t.bitWidth())),
        // A negative width panics in arrow-data's layout (`try_into().unwrap()`).
        Type::FixedSizeBinary => field
            .type_as_fixed_size_binary()
            .is_some_and(|t| t.byteWidth() >= 0),
        Type::FloatingPoint => field.type_as_floating_point().is_some_and(|t| {
            [Precision::HALF, Precision::SINGLE, Precision::DOUBLE].contains(&t.precision())
        }),
        Type::Date => field
            .type_as_date()
            .is_some_and(|t| [DateUnit::DAY, DateUnit::MILLISECOND].contains(&t.unit())),
        Type::Time => field.type_as_time().is_some_and(|t| {
            matches!(
                (t.bitWidth(), t.unit()),
                (32, Unit::SECOND | Unit::MILLISECOND) | (64, Unit::MICROSECOND | Unit::NANOSECOND)
            )
        }),
        Type::Timestamp => field
            .type_as_timestamp()
            .is_some_and(|t| time_units.contains(&t.unit())),
        Type::Duration => field
            .type_as_duration()
            .is_some_and(|t| time_units.contains(&t.unit())),
        Type::Interval => field.type_as_interval().is_some_and(|t| {
            [
                IntervalUnit::YEAR_MONTH,
                IntervalUnit::DAY_TIME,
                IntervalUnit::MONTH_DAY_NANO,
            ]
            .contains(&t.unit())
        }),
        Type::List | Type::LargeList | Type::ListView | Type::LargeListView => children() == 1,
        Type::FixedSizeList => field.type_as_fixed_size_list().is_some() && children() == 1,
        Type::Map => field.type_as_map().is_some() && children() == 1,
        Type::RunEndEncoded => children() == 2,
        Type::Decimal => field.type_as_decimal().is_some_and(|t| {
            matches!(t.bitWidth(), 32 | 64 | 128 | 256)
                && u8::try_from(t.precision()).is_ok()
                && i8::try_from(t.scale()).is_ok()
        }),
        _ => false,
    };
    if !ok {
        return Err(bad(&format!("type {:?}", field.type_type())));
    }
    field
        .children()
        .map_or(Ok(()), |children| children.iter().try_for_each(check_field))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field};

    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .expect("batch");
        let bytes = encode_batch(&batch).expect("encode");
        assert_eq!(decode_batch(&bytes).expect("decode"), batch);
        let schema_bytes = encode_schema(&schema).expect("schema");
        assert_eq!(decode_schema(&schema_bytes).expect("decode schema"), schema);
        assert!(decode_batch(&schema_bytes).is_err(), "no batch");
        assert!(decode_batch(&bytes[..bytes.len() / 2]).is_err(), "torn");
        assert!(decode_batch(b"not arrow").is_err());
        // Found by the fuzzer: four bytes declaring a 1 GiB message header.
        assert!(decode_batch(b"\xff\xff\xff\x3f").is_err());
        assert!(decode_schema(b"\xff\xff\xff\x3f").is_err());
    }
}
