//! FlightData streams as executors and the coordinator decode them; see
//! `fuzz/harness/flight_data.rs`.
#![no_main]

#[path = "../harness/flight_data.rs"]
mod harness;
#[allow(
    dead_code,
    unreachable_pub,
    reason = "a Basin source file; the target uses part of it"
)]
#[path = "../../catalog/src/ipc.rs"]
mod ipc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
