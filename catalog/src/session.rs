//! The one session builder. Every role (coordinator planning, executors running fragments, view
//! expansion) builds its DataFusion `SessionState` here, so table kinds, functions and settings
//! are the same wherever a plan runs.

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;

use crate::model::DEFAULT_SCHEMA;
use crate::provider::BasinCatalogProvider;
use crate::store::Catalog;

/// DataFusion settings Basin runs with. `target_partitions == 0` means one per core.
pub fn session_config(database: &str, target_partitions: usize) -> SessionConfig {
    let mut config = SessionConfig::new()
        // Basin provides a Postgres-typed information_schema of its own.
        .with_information_schema(false)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema(database, DEFAULT_SCHEMA);
    if target_partitions > 0 {
        config = config.with_target_partitions(target_partitions);
    }
    let options = config.options_mut();
    options.sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    // Postgres semantics: `'1' + 1` style coercions and NULL ordering follow the planner defaults;
    // reading many small lake files in parallel matters more than file-order stability.
    options.execution.parquet.pushdown_filters = true;
    // now() and timestamptz arithmetic in UTC, the TimeZone Basin reports to clients.
    options.execution.time_zone = Some("+00:00".to_owned());
    options.execution.parquet.reorder_filters = true;
    config
}

/// A session over `database` of `catalog`, with Basin's catalog as the default catalog.
pub fn new_session_state(
    catalog: Arc<Catalog>,
    database: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> SessionState {
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    state.catalog_list().register_catalog(
        database.to_owned(),
        Arc::new(BasinCatalogProvider::new(catalog, database)),
    );
    state
}

/// A session for planning view bodies inside table lookups.
pub(crate) fn planning_state(catalog: Arc<Catalog>, database: &str) -> SessionState {
    new_session_state(
        catalog,
        database,
        session_config(database, 0),
        Arc::new(RuntimeEnv::default()),
    )
}
