//! DataFusion's view of the Basin catalog: a `CatalogProvider` per database whose schemas and
//! tables come from the latest catalog snapshot, so DDL on one connection is visible to every
//! other connection's next statement.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionState;

use crate::session::planning_state;
use crate::store::Catalog;
use crate::tables::open_relation;

/// One database of the Basin catalog. Extra schemas (`pg_catalog`, `information_schema`) can be
/// registered per session by the front end; they live only in this provider instance.
#[derive(Debug)]
pub struct BasinCatalogProvider {
    catalog: Arc<Catalog>,
    database: String,
    extra_schemas: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
}

impl BasinCatalogProvider {
    pub fn new(catalog: Arc<Catalog>, database: impl Into<String>) -> Self {
        Self {
            catalog,
            database: database.into(),
            extra_schemas: RwLock::new(HashMap::new()),
        }
    }
}

impl CatalogProvider for BasinCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        let snapshot = self.catalog.snapshot();
        let mut names: Vec<String> = snapshot
            .schemas
            .iter()
            .filter(|s| s.database == self.database)
            .map(|s| s.name.clone())
            .collect();
        names.extend(
            self.extra_schemas
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned(),
        );
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(extra) = self
            .extra_schemas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Some(Arc::clone(extra));
        }
        self.catalog.snapshot().schema(&self.database, name)?;
        Some(Arc::new(BasinSchemaProvider {
            catalog: Arc::clone(&self.catalog),
            database: self.database.clone(),
            schema: name.to_owned(),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        Ok(self
            .extra_schemas
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), schema))
    }
}

/// One schema's relations, looked up in the latest snapshot on every call.
#[derive(Debug)]
pub struct BasinSchemaProvider {
    catalog: Arc<Catalog>,
    database: String,
    schema: String,
}

#[async_trait]
impl SchemaProvider for BasinSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        self.catalog
            .snapshot()
            .relations_in(&self.database, &self.schema)
            .map(|r| r.name.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let snapshot = self.catalog.snapshot();
        let Some(entry) = snapshot.relation(&self.database, &self.schema, name) else {
            return Ok(None);
        };
        if matches!(entry.kind, crate::model::RelationKind::Stream(_)) {
            let table = self
                .catalog
                .stream_table(entry)
                .await
                .map_err(DataFusionError::from)?;
            return Ok(Some(Arc::new(crate::streams::StreamTableProvider::new(
                table,
            ))));
        }
        if matches!(entry.kind, crate::model::RelationKind::MaterializedView(_)) {
            return Ok(Some(Arc::new(crate::views::MaterializedViewProvider::new(
                entry.oid,
                format!("{}.{}", entry.schema, entry.name),
                entry.arrow_schema(),
                Arc::clone(self.catalog.epochs()),
            ))));
        }
        let external = matches!(entry.kind, crate::model::RelationKind::External { .. });
        if external && let Some(provider) = self.catalog.providers.get(entry) {
            return Ok(Some(provider));
        }
        let state: SessionState = planning_state(Arc::clone(&self.catalog), &self.database);
        let provider = open_relation(entry, self.catalog.lake_root(), &state)
            .await
            .map_err(|e| e.context(format!("open relation \"{}\".\"{name}\"", self.schema)))?;
        if external {
            self.catalog.providers.insert(entry, &provider);
        }
        Ok(Some(provider))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog
            .snapshot()
            .relation(&self.database, &self.schema, name)
            .is_some()
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::NotImplemented(format!(
            "registering table \"{name}\" directly; use CREATE TABLE"
        )))
    }
}
