//! The Postgres front end in every connection state; see `fuzz/harness/pgwire_frontend.rs`.
#![no_main]

#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../coordinator/src/pgwire/cork.rs"]
mod cork;
#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../coordinator/src/pgwire/frame_guard.rs"]
mod frame_guard;
#[path = "../harness/pgwire_frontend.rs"]
mod harness;
#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../coordinator/src/pgwire/message_loop.rs"]
mod message_loop;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
