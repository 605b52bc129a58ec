//! `basin-benchmarks`: data generators and (later) runners and reports for TPC-H, TPC-DS and
//! streaming benchmarks.
//!
//! Entry point today: [`tpch::generate`], behind `basin datagen tpch`. A benchmark harness may
//! depend on every Basin crate; no Basin crate may depend on this one except the `basin` binary.

pub mod tpch;
