//! `basin-benchmarks`: data generators, and the benchmark runner behind `basin bench` (and
//! `cargo run -p basin-benchmarks --release -- <suite>`): TPC-H and TPC-DS over Basin's
//! Postgres wire, timed side by side with DuckDB and single-node DataFusion on the same
//! Parquet files with every answer checked, and pgbench against Basin and PostgreSQL.
//!
//! Entry points: [`runner::run`] (options in [`cli::BenchArgs`]) and [`tpch::generate`] (behind
//! `basin datagen tpch`). A benchmark harness may depend on every Basin crate; no Basin crate
//! may depend on this one except the `basin` binary.
//!
//! Modules: `runner` orchestrates; `cluster` starts Basin and reads its memory; `duckdb_peer`
//! and `datafusion_peer` are the other engines; `queries` holds the query texts; `compare`
//! checks answers; `report` and `chart` write the results; `pgbench` measures the protocol.

pub mod chart;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod datafusion_peer;
pub mod duckdb_peer;
pub mod machine;
pub mod pgbench;
pub mod progress;
pub mod queries;
pub mod report;
pub mod runner;
pub mod tpch;
