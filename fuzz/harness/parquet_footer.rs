//! Fuzz entry for Parquet lake files: the footer (metadata, and the page index, which Basin's
//! reader asks for with the footer: `PageIndexPolicy::Optional` in
//! `catalog/src/parquet_reader.rs`), then every row group's pages decoded into Arrow batches, as
//! a scan does, after Basin's check of the footer's embedded Arrow schema
//! (`catalog/src/parquet_footer_check.rs`, run by `catalog/src/parquet_reader.rs`). Lake files
//! are untrusted: anyone with write access to the bucket can put one
//! there. Basin's reader wraps DataFusion's, which calls exactly these parquet APIs; including it
//! would build DataFusion, so this drives parquet with the same options.
//!
//! Used by `fuzz/fuzz_targets/parquet_footer.rs` and by `catalog/tests/fuzz_regressions.rs`.

use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};

use super::parquet_footer_check;

/// Batches decoded per input at most, so one input cannot run for long.
const MAX_BATCHES: usize = 64;

pub(crate) fn run(input: &[u8]) {
    let file = Bytes::copy_from_slice(input);
    let Ok(metadata) = ParquetMetaDataReader::new()
        .with_page_index_policy(PageIndexPolicy::Optional)
        .parse_and_finish(&file)
    else {
        return;
    };
    // What Basin's reader runs on every footer before DataFusion builds the Arrow schema.
    if parquet_footer_check::check_footer(&metadata).is_err() {
        return;
    }
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options) else {
        return;
    };
    let Ok(reader) = builder.with_batch_size(1024).build() else {
        return;
    };
    for batch in reader.take(MAX_BATCHES) {
        if batch.is_err() {
            break;
        }
    }
}
