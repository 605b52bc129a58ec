//! Parts of a Parquet footer that parquet 59 panics on, checked before it reads further (found
//! by the `parquet_footer` fuzz target). Lake files are untrusted: anyone who can write to the
//! bucket can put one there.
//!
//! * The Arrow schema a file may carry (`ARROW:schema`, base64 of an IPC schema message):
//!   parquet converts it with arrow-ipc's `fb_to_schema`, which panics on malformed schemas.
//!   The check is the one Basin runs on IPC streams ([`super::ipc::MessageCheck`]).
//! * Column chunk byte ranges: `ColumnChunkMetaData::byte_range` asserts that the first page's
//!   offset and the compressed size are not negative.
//!
//! Needs only parquet, base64 and arrow: the fuzz target `parquet_footer` compiles this file.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;

use super::ipc::MessageCheck;

/// Refuses a footer parquet could panic on while reading the file it describes.
pub fn check_footer(metadata: &ParquetMetaData) -> Result<(), ParquetError> {
    check_column_ranges(metadata)?;
    check_embedded_arrow_schema(metadata)
}

fn check_column_ranges(metadata: &ParquetMetaData) -> Result<(), ParquetError> {
    for (group, row_group) in metadata.row_groups().iter().enumerate() {
        for (index, column) in row_group.columns().iter().enumerate() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            if start < 0 || column.compressed_size() < 0 {
                return Err(ParquetError::General(format!(
                    "invalid Parquet footer: column chunk {index} of row group {group} starts at \
                     {start} with {} bytes",
                    column.compressed_size()
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a footer whose embedded Arrow schema arrow-ipc could panic on. Text that is not
/// base64 or not a flatbuffer message is left to parquet, which reports it as an error.
fn check_embedded_arrow_schema(metadata: &ParquetMetaData) -> Result<(), ParquetError> {
    let Some(entries) = metadata.file_metadata().key_value_metadata() else {
        return Ok(());
    };
    for entry in entries {
        if entry.key != parquet::arrow::ARROW_SCHEMA_META_KEY {
            continue;
        }
        let Some(value) = &entry.value else { continue };
        let Ok(bytes) = STANDARD.decode(value) else {
            continue;
        };
        // As parquet reads it: an encapsulated message (continuation marker, length) or a
        // bare flatbuffer.
        let message = match bytes.get(..4) {
            Some([255, 255, 255, 255]) if bytes.len() > 8 => &bytes[8..],
            _ => bytes.as_slice(),
        };
        if arrow::ipc::root_as_message(message).is_err() {
            continue;
        }
        MessageCheck::default().check(message).map_err(|e| {
            ParquetError::General(format!("invalid Arrow schema in the Parquet footer: {e}"))
        })?;
    }
    Ok(())
}
