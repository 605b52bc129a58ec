//! Fuzz entry for Basin's streaming-table log: segment bytes through `decode_segment`
//! (`catalog/src/stream_log_frames.rs`), exactly as recovery reads a segment file. Byte 0 of
//! the input: bit 0 whether this is the last segment (where a torn tail is allowed), bit 1
//! whether to fix up each frame's CRC first so the fuzzer gets past the checksum into the Arrow
//! IPC payload. The table has the columns Basin's streaming tests use.
//!
//! Used by `fuzz/fuzz_targets/stream_log.rs` and by `catalog/tests/fuzz_regressions.rs`; the
//! including crate declares `frames` (the Basin file) next to this module.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::frames;

pub(crate) fn run(input: &[u8]) {
    let [flags, rest @ ..] = input else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & 2 != 0 {
        fix_checksums(&mut bytes);
    }
    let _ = frames::decode_segment(&bytes, schema(), flags & 1 != 0);
}

pub(crate) fn schema() -> &'static SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]))
    })
}

/// Rewrites each frame's CRC to match its payload, as far as the frames are whole.
fn fix_checksums(bytes: &mut [u8]) {
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + frames::HEADER_BYTES) {
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let start = at + frames::HEADER_BYTES;
        let Some(payload) = bytes.get(start..start + len) else {
            return;
        };
        let crc = crc32fast::hash(payload).to_le_bytes();
        bytes[at + 12..at + 16].copy_from_slice(&crc);
        at = start + len;
    }
}
