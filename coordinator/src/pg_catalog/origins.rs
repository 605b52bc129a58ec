//! Where a result column comes from, as Postgres's RowDescription tells clients: the OID of the
//! table or view it reads and the column's number there (0 for computed columns). pgjdbc
//! (`ResultSetMetaData.isNullable`, `getTableName`) and psqlODBC (`SQLDescribeCol`'s
//! nullability) look the column up in `pg_attribute` by these.
//!
//! Like Postgres, a column keeps its origin through filters, sorts, joins and grouping and
//! loses it in any expression; unlike Postgres, a renamed column (`id AS key`) loses it too,
//! because DataFusion does not qualify aliases. Catalog tables report no origin.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use basin_catalog::model::CatalogState;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;

/// Field metadata key holding a result column's source relation OID.
pub(crate) const TABLE_OID_METADATA: &str = "basin.table_oid";
/// Field metadata key holding a result column's number within its source relation.
pub(crate) const ATTNUM_METADATA: &str = "basin.attnum";

/// The (relation OID, column number) of each output column of `plan`, `None` where Postgres
/// would send 0. Unqualified relation names resolve in `database`.`default_schema`.
pub(crate) fn column_origins(
    plan: &LogicalPlan,
    state: &CatalogState,
    database: &str,
    default_schema: &str,
) -> Vec<Option<(u32, i16)>> {
    // The relations the plan scans, by the qualifier their columns carry: the table's own name,
    // or an alias given directly to it. Aliases over anything else hide whatever they name.
    let mut sources: HashMap<TableReference, TableReference> = HashMap::new();
    let mut hidden: HashSet<TableReference> = HashSet::new();
    // The closure never fails.
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                sources
                    .entry(scan.table_name.clone())
                    .or_insert_with(|| scan.table_name.clone());
            }
            LogicalPlan::SubqueryAlias(alias) => match alias.input.as_ref() {
                LogicalPlan::TableScan(scan) => {
                    sources.insert(alias.alias.clone(), scan.table_name.clone());
                }
                _ => {
                    hidden.insert(alias.alias.clone());
                }
            },
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    plan.schema()
        .iter()
        .map(|(qualifier, field)| {
            let qualifier = qualifier?;
            if hidden.contains(qualifier) {
                return None;
            }
            let table = sources.get(qualifier)?;
            let database = table.catalog().unwrap_or(database);
            let schema = table.schema().unwrap_or(default_schema);
            let entry = state.relation(database, schema, table.table())?;
            let index = entry.columns.iter().position(|c| c.name == *field.name())?;
            Some((entry.oid, i16::try_from(index + 1).ok()?))
        })
        .collect()
}

/// `schema` with each field's origin in its metadata; unchanged if the counts differ.
pub(crate) fn with_origins(schema: SchemaRef, origins: &[Option<(u32, i16)>]) -> SchemaRef {
    if origins.len() != schema.fields().len() || origins.iter().all(Option::is_none) {
        return schema;
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .zip(origins)
        .map(|(field, origin)| match origin {
            Some((oid, attnum)) => {
                let mut metadata = field.metadata().clone();
                metadata.insert(TABLE_OID_METADATA.to_owned(), oid.to_string());
                metadata.insert(ATTNUM_METADATA.to_owned(), attnum.to_string());
                Arc::new(field.as_ref().clone().with_metadata(metadata))
            }
            None => Arc::clone(field),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}
