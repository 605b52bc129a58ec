//! FlightData streams as executors and the coordinator decode them; see
//! `fuzz/harness/flight_data.rs`.
#![no_main]

#[path = "../harness/flight_data.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
