//! Basin's streaming-table log segments; see `fuzz/harness/stream_log.rs`.
#![no_main]

#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../catalog/src/stream_log_frames.rs"]
mod frames;
#[path = "../harness/stream_log.rs"]
mod harness;
#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../catalog/src/ipc.rs"]
mod ipc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
