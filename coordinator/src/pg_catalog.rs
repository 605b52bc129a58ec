//! Postgres' system catalogs for clients that introspect: psql's `\d` family, JDBC/ODBC
//! metadata, asyncpg/psycopg type discovery, BI tools.
//!
//! * [`install`] registers `pg_catalog` and `information_schema` into a session's default
//!   catalog, plus the Postgres functions those queries call. Catalog tables are
//!   [`table::SystemTable`]s: a PostgreSQL 16-shaped schema and a row function run on every scan
//!   against the latest catalog snapshot, so they never show a stale copy.
//! * [`rewrite`] turns the Postgres-only syntax those queries use into SQL DataFusion plans.
//! * [`pg_type_for`] is the one Arrow → Postgres type mapping; the wire encoder uses it too.
//!
//! OIDs: user objects carry the catalog's stable OIDs (16384 and up); built-in types,
//! functions and catalog tables carry PostgreSQL's own, so clients that hard-code them work.
//! The session's role is the bootstrap superuser, OID 10.
//!
//! To add a catalog table: add a [`table::TableSpec`] with PostgreSQL's column list to
//! `system::TABLES` or `information_schema::TABLES`; give it a row function if it should not be
//! empty. To add a function: add a `PgFunction` in `functions/` and a `pg_proc` row in
//! `system/procs.rs`.

mod functions;
mod information_schema;
mod rewrite;
mod snapshot;
mod system;
mod table;
mod types;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use basin_catalog::model::CatalogState;
use datafusion::catalog::SchemaProvider;
use datafusion::common::{Result, plan_datafusion_err};
use datafusion::datasource::TableProvider;
use datafusion::prelude::SessionContext;

pub(crate) use rewrite::rewrite;
pub(crate) use types::{PgTypeInfo, pg_type_for};

use snapshot::CatalogSource;
use table::SystemTable;

use crate::session::vars::SessionVars;

/// Registers schemas `pg_catalog` and `information_schema` into the session's default catalog
/// (DataFusion catalog named after the database, e.g. "basin"), plus Postgres functions
/// (session-bound ones capture `vars`). `snapshot` returns the current catalog snapshot so
/// tables always reflect the latest DDL.
pub(crate) fn install(
    ctx: &SessionContext,
    snapshot: Arc<dyn Fn() -> Arc<CatalogState> + Send + Sync>,
    vars: Arc<SessionVars>,
) -> Result<()> {
    let catalog_name = ctx
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    let catalog = ctx
        .catalog(&catalog_name)
        .ok_or_else(|| plan_datafusion_err!("catalog \"{catalog_name}\" does not exist"))?;
    let source = Arc::new(CatalogSource::try_new(snapshot, vars)?);
    for schema in ["pg_catalog", "information_schema"] {
        catalog.register_schema(schema, Arc::new(SystemSchema::new(schema, &source)))?;
    }
    functions::register(ctx, &source);
    Ok(())
}

/// `pg_catalog` or `information_schema`: the catalog tables of one schema.
#[derive(Debug)]
struct SystemSchema {
    tables: HashMap<&'static str, Arc<SystemTable>>,
}

impl SystemSchema {
    fn new(schema: &str, source: &Arc<CatalogSource>) -> Self {
        let tables = source
            .registry()
            .iter()
            .enumerate()
            .filter(|(_, relation)| relation.schema == schema)
            .map(|(index, relation)| {
                (
                    relation.spec.name,
                    Arc::new(SystemTable::new(index, Arc::clone(source))),
                )
            })
            .collect();
        Self { tables }
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().map(|name| (*name).to_owned()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .tables
            .get(name)
            .map(|table| Arc::clone(table) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}
