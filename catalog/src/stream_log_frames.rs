//! The on-disk frames of a stream log segment, encoded and decoded without touching files, so
//! that the fuzz target `stream_log` (`fuzz/`) compiles this very file with `#[path]` (next to
//! `ipc.rs`) and feeds it arbitrary segment bytes without building the rest of the catalog.
//! Needs only `arrow`, `crc32fast` and [`crate::ipc`].
//!
//! ```text
//! "BSL1" | payload length u32 LE | row count u32 LE | CRC-32 of payload u32 LE | payload
//! ```

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

pub(crate) const MAGIC: &[u8; 4] = b"BSL1";
pub(crate) const HEADER_BYTES: usize = 16;

/// Why a segment's bytes do not decode.
#[derive(Debug)]
pub(crate) enum SegmentError {
    /// Damage at this byte offset of the segment.
    Corrupt { offset: u64, reason: &'static str },
    /// A frame's checksum holds but its payload is no IPC stream of the table's batches.
    Arrow(ArrowError),
}

/// The frame around one batch's IPC payload; `None` for a payload over 4 GiB or a batch over
/// 4 billion rows.
pub(crate) fn encode_frame(payload: &[u8], rows: usize) -> Option<Vec<u8>> {
    let len = u32::try_from(payload.len()).ok()?;
    let rows = u32::try_from(rows).ok()?;
    let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&rows.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    Some(frame)
}

/// The batches of a segment's frames, each with its frame's size, and the length of the valid
/// prefix. In the last segment an incomplete or damaged final frame ends the log (the returned
/// length excludes it); anywhere else damage is corruption.
pub(crate) fn decode_segment(
    bytes: &[u8],
    schema: &SchemaRef,
    is_last: bool,
) -> Result<(Vec<(RecordBatch, usize)>, u64), SegmentError> {
    let mut batches = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let corrupt = |reason: &'static str| SegmentError::Corrupt {
            offset: at as u64,
            reason,
        };
        let frame = bytes.get(at..).and_then(|rest| {
            let header = rest.get(..HEADER_BYTES)?;
            let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let payload = rest.get(HEADER_BYTES..HEADER_BYTES.checked_add(len)?)?;
            Some((header, len, payload))
        });
        let Some((header, len, payload)) = frame else {
            if is_last {
                break; // torn tail
            }
            return Err(corrupt("truncated frame"));
        };
        let rows = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        let end = at + HEADER_BYTES + len;
        let tail = end == bytes.len();
        if &header[..4] != MAGIC || crc32fast::hash(payload) != crc {
            if is_last && tail {
                break; // the last frame was being written when the process died
            }
            return Err(corrupt("bad magic or checksum"));
        }
        // Written by `ipc::encode_batch`: one batch, and its sizes are checked before decoding.
        let batch = crate::ipc::decode_batch(payload).map_err(SegmentError::Arrow)?;
        if batch.schema().fields() != schema.fields() {
            return Err(corrupt("frame schema differs from the table's"));
        }
        if batch.num_rows() != rows as usize {
            return Err(corrupt("row count differs from the frame header"));
        }
        batches.push((batch, HEADER_BYTES + len));
        at = end;
    }
    Ok((batches, at as u64))
}
