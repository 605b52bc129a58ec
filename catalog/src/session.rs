//! The one session builder. Every role (coordinator planning, executors running fragments, view
//! expansion) builds its DataFusion `SessionState` here, so table kinds, functions and settings
//! are the same wherever a plan runs.

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
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
    apply_execution_options(&mut config);
    config
}

/// The DataFusion options every role executes with, planner or executor: the Postgres dialect,
/// UTC as the session time zone (the TimeZone Basin reports to clients) and Parquet row
/// filters off, as in DataFusion: the coordinator's planner turns them on per query, for
/// lookups by key (`basin_coordinator`'s `dist/row_filters.rs` says why). When on, the
/// cheapest predicate runs first. Executors apply them to the sessions their fragments run in.
pub fn apply_execution_options(config: &mut SessionConfig) {
    let options = config.options_mut();
    options.sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    options.execution.parquet.pushdown_filters = false;
    options.execution.parquet.reorder_filters = true;
    options.execution.time_zone = Some("+00:00".to_owned());
}

/// The session an executor runs one plan fragment in: `builder` comes from the distributed
/// worker with the fragment's runtime and task context already set.
pub fn fragment_session_state(mut builder: SessionStateBuilder) -> SessionState {
    if let Some(config) = builder.config().as_mut() {
        apply_execution_options(config);
    }
    if let Some(functions) = builder.scalar_functions().as_mut() {
        crate::bounded_functions::bound(functions);
    }
    builder.build()
}

/// A session over `database` of `catalog`, with Basin's catalog as the default catalog.
pub fn new_session_state(
    catalog: Arc<Catalog>,
    database: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> SessionState {
    let state = session_builder(config, runtime).build();
    register_catalog(&state, catalog, database);
    state
}

/// The builder behind [`new_session_state`], for roles that add to it (the coordinator adds
/// the distributed planner) before calling [`register_catalog`]. Its physical optimizer is
/// DataFusion's, with filter pushdown guarded against duplicate column names
/// ([`crate::filter_pushdown_guard`]); every optimizer rule stops a cancelled statement
/// ([`crate::cancellation`]).
pub fn session_builder(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionStateBuilder {
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_optimizer_rules(crate::cancellation::cancellable_optimizer_rules())
        .with_physical_optimizer_rules(crate::cancellation::cancellable_physical_rules(
            crate::filter_pushdown_guard::default_rules(),
        ));
    if let Some(functions) = builder.scalar_functions().as_mut() {
        crate::bounded_functions::bound(functions);
    }
    builder
}

/// Makes `database` of `catalog` visible in `state` under its name.
pub fn register_catalog(state: &SessionState, catalog: Arc<Catalog>, database: &str) {
    state.catalog_list().register_catalog(
        database.to_owned(),
        Arc::new(BasinCatalogProvider::new(catalog, database)),
    );
}

/// A session for planning view bodies inside table lookups.
pub(crate) fn planning_state(catalog: Arc<Catalog>, database: &str) -> SessionState {
    let registry: Arc<dyn ObjectStoreRegistry> = Arc::clone(catalog.object_stores()) as _;
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(registry)
        .with_cache_manager(crate::parquet_cache::cache_config())
        .build_arc()
        .unwrap_or_else(|_| Arc::new(RuntimeEnv::default()));
    new_session_state(catalog, database, session_config(database, 0), runtime)
}
