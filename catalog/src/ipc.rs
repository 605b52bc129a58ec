//! Arrow IPC streams as Basin moves single batches and schemas: into log frames and between
//! the coordinator and the executors hosting streaming-table shards.

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

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
    Ok(StreamReader::try_new(bytes, None)?.schema())
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
    }
}
