//! Postgres' system catalogs for clients that introspect: psql's `\d` family, JDBC/ODBC
//! metadata, asyncpg/psycopg type discovery, BI tools.
//!
//! * [`install`] registers `pg_catalog` and `information_schema` into a session's default
//!   catalog, plus the Postgres functions those queries call. Catalog tables are
//!   [`table::SystemTable`]s: a PostgreSQL 16-shaped schema and a row function run on every scan
//!   against the latest catalog snapshot, so they never show a stale copy.
//! * [`rewrite`] turns the Postgres-only syntax those queries use into SQL DataFusion plans.
//!   Rewrites that only make syntax plannable apply to every statement; those that change
//!   subquery semantics (lateral joins, `first_value`, giving up with an empty value) apply only
//!   to subqueries over catalog tables, so user queries keep DataFusion's behaviour.
//! * [`pg_type_for`] is the one Arrow → Postgres type mapping; the wire encoder uses it too.
//! * [`column_origins`] gives result columns the table OID and column number RowDescription
//!   carries (see [`origins`]).
//!
//! What is emulated rather than real: Basin has one role (the session user, a superuser), no
//! indexes, constraints, defaults, comments, sequences, triggers, policies or domains, so those
//! catalogs are empty and their functions return NULL; sizes are 0; built-in functions appear in
//! `pg_proc` only where Basin implements them, plus the built-in types' I/O functions (drivers
//! recognise types by them).
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
mod origins;
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
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::common::{Result, plan_datafusion_err};
use datafusion::datasource::TableProvider;
use datafusion::prelude::SessionContext;

pub(crate) use origins::{ATTNUM_METADATA, TABLE_OID_METADATA, column_origins, with_origins};
pub(crate) use rewrite::{duplicate_column_name, output_names, rewrite};
pub(crate) use types::{innermost_element, pg_type_for};

use snapshot::CatalogSource;
use table::SystemTable;

use crate::session::vars::SessionVars;

/// How a value of an Arrow type presents itself to Postgres clients; see [`pg_type_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PgTypeInfo {
    /// `pg_type.oid`.
    pub(crate) oid: u32,
    /// `pg_type.typname`, e.g. `int8`, `_text`.
    pub(crate) name: &'static str,
    /// `pg_type.typlen`: bytes for fixed-size types, -1 for varlena.
    pub(crate) len: i16,
    /// The type modifier (`atttypmod`), -1 when none: `numeric(p,s)` and timestamp precision.
    pub(crate) typmod: i32,
}

/// Field metadata key that names a result column's Postgres type where its Arrow type does not
/// tell: `regproc` columns are UInt32 like `oid` but show as function names.
pub(crate) const PG_TYPE_METADATA: &str = "basin.pg_type";
/// [`PG_TYPE_METADATA`] value of `regproc` columns.
pub(crate) const REGPROC: &str = "regproc";

/// `regproc` text output: the function's name, `-` for none (0), the number if unknown.
pub(crate) fn regproc_text(oid: u32) -> String {
    if oid == 0 {
        return "-".to_owned();
    }
    system::builtin_proc(oid).map_or_else(|| oid.to_string(), |p| p.name.to_owned())
}

/// Registers schemas `pg_catalog` and `information_schema` into the session's default catalog
/// (DataFusion catalog named after the database, e.g. "basin"), plus Postgres functions
/// (session-bound ones capture `vars`). `snapshot` returns the current catalog snapshot so
/// tables always reflect the latest DDL.
pub(crate) fn install(
    ctx: &SessionContext,
    snapshot: Arc<dyn Fn() -> Arc<CatalogState> + Send + Sync>,
    vars: Arc<SessionVars>,
) -> Result<()> {
    let catalog = default_catalog(ctx)?;
    let source = Arc::new(CatalogSource::try_new(snapshot, vars)?);
    for schema in ["pg_catalog", "information_schema"] {
        catalog.register_schema(schema, Arc::new(SystemSchema::new(schema, &source)))?;
    }
    functions::register(ctx, &source);
    Ok(())
}

/// The session's default catalog (the DataFusion catalog named after the database), where Basin's
/// system schemas are registered.
pub(crate) fn default_catalog(ctx: &SessionContext) -> Result<Arc<dyn CatalogProvider>> {
    let catalog_name = ctx
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    ctx.catalog(&catalog_name)
        .ok_or_else(|| plan_datafusion_err!("catalog \"{catalog_name}\" does not exist"))
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
            .filter_map(|(index, relation)| {
                let table = SystemTable::new(index, source)?;
                Some((relation.spec.name, Arc::new(table)))
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
