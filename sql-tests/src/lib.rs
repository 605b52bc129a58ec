//! Basin's SQL test harness: the `.slt` corpus in `slt/` runs over Basin's own pgwire against a
//! real cluster started as separate processes, so every file tests the protocol as well as the SQL.
//!
//! Entry points:
//! - [`run_file`] runs (or, with `complete`, rewrites) one `.slt` file against a [`Target`];
//! - [`BasinCluster`] starts `basin standalone` on free ports with a temporary data directory and
//!   restarts it gracefully or with `kill -9` (the `harness restart` / `harness kill9_restart`
//!   records, see [`runner`]);
//! - [`PgDb`] is the `sqllogictest::AsyncDB` over `tokio-postgres` (simple query protocol);
//! - [`tpch::ensure_data`] generates the TPC-H SF 0.01 Parquet files once;
//! - [`df_slt`] runs DataFusion's own `.slt` corpus over pgwire (`basin-df-slt`).
//!
//! The runner binary is `tests/sqllogictests.rs`. This crate depends on no workspace crate: it
//! reaches the engine only through the `basin` binary's CLI and the Postgres protocol, which is
//! exactly how users reach it.

pub mod cluster;
pub mod db;
pub mod df_slt;
mod error;
pub mod oracle;
pub mod paths;
pub mod runner;
pub mod tpch;

pub use cluster::BasinCluster;
pub use db::PgDb;
pub use error::{Error, Result};
pub use runner::{FileOptions, Target, run_file};
