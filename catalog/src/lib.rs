//! Basin's catalog: databases, schemas, lake tables, Basin-managed Delta tables, streaming tables
//! (their logs, compaction and lake), views and materialized views (their epochs, read path and
//! checkpoints; the coordinator maintains them); their
//! durable storage (`catalog.json` under the data directory, replaced atomically); the DataFusion
//! `CatalogProvider`s that expose them; and the one session builder every role uses.
//!
//! Entry points: [`Catalog::open`], [`session::new_session_state`]. Depends on `proto` only;
//! never on the coordinator or executor.

pub mod bounded_functions;
pub mod cancellation;
mod data_url;
mod ddl;
mod delta_dml;
mod delta_files;
mod delta_stats;
mod delta_types;
mod durability;
mod error;
pub mod filter_pushdown_guard;
mod head_cache;
pub mod ipc;
pub mod model;
pub mod object_stores;
pub mod parquet_cache;
pub mod parquet_footer_check;
pub mod parquet_reader;
mod provider;
mod provider_cache;
pub mod session;
mod store;
pub mod stream_log;
pub mod streams;
mod tables;
pub mod value_range;
pub mod views;

pub use ddl::{DropKind, RelationName};
pub use error::{Error, Result};
pub use provider::{BasinCatalogProvider, BasinSchemaProvider};
pub use store::Catalog;
