//! Parquet lake files: footer, page index and pages; see `fuzz/harness/parquet_footer.rs`.
#![no_main]

#[path = "../harness/parquet_footer.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
