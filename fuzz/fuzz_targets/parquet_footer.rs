//! Parquet lake files: footer, page index and pages; see `fuzz/harness/parquet_footer.rs`.
#![no_main]

#[path = "../harness/parquet_footer.rs"]
mod harness;
#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../catalog/src/ipc.rs"]
mod ipc;
#[path = "../../catalog/src/parquet_footer_check.rs"]
mod parquet_footer_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
