//! Arrow IPC streams as Basin decodes them; see `fuzz/harness/arrow_ipc.rs`.
#![no_main]

#[path = "../harness/arrow_ipc.rs"]
mod harness;
#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../catalog/src/ipc.rs"]
mod ipc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
