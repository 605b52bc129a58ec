//! The Postgres front end in every connection state; see `fuzz/harness/pgwire_frontend.rs`.
#![no_main]

#[path = "../../coordinator/src/pgwire/frame_guard.rs"]
mod frame_guard;
#[path = "../harness/pgwire_frontend.rs"]
mod harness;
#[path = "../../coordinator/src/pgwire/message_loop.rs"]
mod message_loop;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
