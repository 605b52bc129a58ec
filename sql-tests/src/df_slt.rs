//! DataFusion's own sqllogictest corpus as a peer corpus for Basin: the `.slt` files shipped in
//! the `datafusion-sqllogictest` crate, read as data from an unpacked copy of the crate (never
//! copied into this repository) and run over Basin's pgwire against `basin standalone`.
//!
//! DataFusion's files expect DataFusion's rendering of Arrow values; Basin sends Postgres text.
//! [`render`] turns each value back into DataFusion's rendering using the column's Postgres
//! type, and states the few places where the comparison is lenient. [`run`] runs the files one
//! after another on one cluster with fresh sessions and an emptied catalog per file; [`corpus`]
//! finds them and reads the reviewed skip list; [`report`] writes `results.md` and the list of
//! passing files that the regression gate runs. The binary is `basin-df-slt`; see
//! `docs/testing.md`.

pub mod corpus;
pub mod db;
pub mod render;
pub mod report;
pub mod run;

pub use run::{FileResult, Options, Status, run};
