//! SQL text to a logical plan; see `fuzz/harness/sql_to_plan.rs`. Long tier only.
#![no_main]

#[path = "../harness/sql_to_plan.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
