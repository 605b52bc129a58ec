//! DDL: tables (lake, managed, CTAS), views, schemas, drops. DataFusion plans the statement;
//! Basin's catalog, not DataFusion's in-memory one, executes it.

use std::sync::Arc;

use basin_catalog::{DropKind, RelationName};
use datafusion::common::TableReference;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use super::Output;
use crate::error::{Error, Result};
use crate::session::Session;

/// Executes `plan` if it is DDL; `None` means it is not.
pub(super) async fn execute(
    session: &Arc<Session>,
    statement: &DfStatement,
    plan: &LogicalPlan,
) -> Result<Option<Output>> {
    let LogicalPlan::Ddl(ddl) = plan else {
        return Ok(None);
    };
    let catalog = &session.server.catalog;
    let state = session.ctx.state();
    let output = match ddl {
        DdlStatement::CreateExternalTable(cmd) => {
            reject_temporary(cmd.temporary)?;
            let target = resolve(session, &cmd.name);
            catalog.create_external_table(&state, &target, cmd).await?;
            Output::Command("CREATE TABLE".to_owned())
        }
        DdlStatement::CreateMemoryTable(cmd) => {
            reject_temporary(cmd.temporary)?;
            if cmd.or_replace {
                return Err(Error::unsupported(
                    "CREATE OR REPLACE TABLE is not supported",
                ));
            }
            let target = resolve(session, &cmd.name);
            let rows = catalog
                .create_managed_table(
                    &state,
                    &target,
                    cmd.input.as_ref().clone(),
                    cmd.if_not_exists,
                )
                .await?;
            if is_create_table_as(statement) {
                Output::Command(format!("SELECT {rows}"))
            } else {
                Output::Command("CREATE TABLE".to_owned())
            }
        }
        DdlStatement::CreateView(cmd) => {
            reject_temporary(cmd.temporary)?;
            let sql = view_query_text(statement)?;
            let target = resolve(session, &cmd.name);
            catalog
                .create_view(&state, &target, &sql, cmd.or_replace)
                .await?;
            Output::Command("CREATE VIEW".to_owned())
        }
        DdlStatement::DropTable(cmd) => {
            let target = resolve(session, &cmd.name);
            catalog
                .drop_relation(&target, DropKind::Table, cmd.if_exists)
                .await?;
            Output::Command("DROP TABLE".to_owned())
        }
        DdlStatement::DropView(cmd) => {
            let target = resolve(session, &cmd.name);
            catalog
                .drop_relation(&target, DropKind::View, cmd.if_exists)
                .await?;
            Output::Command("DROP VIEW".to_owned())
        }
        DdlStatement::CreateCatalogSchema(cmd) => {
            let name = cmd
                .schema_name
                .rsplit('.')
                .next()
                .unwrap_or(&cmd.schema_name);
            catalog
                .create_schema(&session.vars.database, name, cmd.if_not_exists)
                .await?;
            Output::Command("CREATE SCHEMA".to_owned())
        }
        DdlStatement::DropCatalogSchema(cmd) => {
            catalog
                .drop_schema(
                    &session.vars.database,
                    cmd.name.schema_name(),
                    cmd.if_exists,
                    cmd.cascade,
                )
                .await?;
            Output::Command("DROP SCHEMA".to_owned())
        }
        DdlStatement::CreateCatalog(_) => {
            return Err(Error::unsupported(
                "CREATE DATABASE is not supported; Basin has one database per cluster",
            ));
        }
        other => {
            return Err(Error::unsupported(format!(
                "{} is not supported",
                other.name()
            )));
        }
    };
    Ok(Some(output))
}

fn reject_temporary(temporary: bool) -> Result<()> {
    if temporary {
        return Err(Error::unsupported(
            "temporary tables and views are not supported",
        ));
    }
    Ok(())
}

/// Catalog, schema and name for a new or dropped relation, defaulting like the session does.
pub(crate) fn resolve(session: &Session, name: &TableReference) -> RelationName {
    RelationName {
        database: name
            .catalog()
            .map(str::to_owned)
            .unwrap_or_else(|| session.vars.database.clone()),
        schema: name
            .schema()
            .map(str::to_owned)
            .unwrap_or_else(|| default_schema(session)),
        name: name.table().to_owned(),
    }
}

/// The schema unqualified names go to: the first schema on `search_path` that exists.
pub(super) fn default_schema(session: &Session) -> String {
    session
        .vars
        .search_path()
        .into_iter()
        .find(|schema| {
            session
                .server
                .catalog
                .snapshot()
                .schema(&session.vars.database, schema)
                .is_some()
        })
        .unwrap_or_else(|| basin_catalog::model::DEFAULT_SCHEMA.to_owned())
}

fn is_create_table_as(statement: &DfStatement) -> bool {
    matches!(statement, DfStatement::Statement(s) if matches!(s.as_ref(), SqlStatement::CreateTable(t) if t.query.is_some()))
}

/// The SELECT a view stands for, with `CREATE VIEW v (a, b)` column names applied.
fn view_query_text(statement: &DfStatement) -> Result<String> {
    let DfStatement::Statement(inner) = statement else {
        return Err(Error::Internal(
            "CREATE VIEW without a SQL statement".to_owned(),
        ));
    };
    let SqlStatement::CreateView(view) = inner.as_ref() else {
        return Err(Error::Internal(
            "CREATE VIEW plan from another statement".to_owned(),
        ));
    };
    if view.materialized {
        return Err(Error::Internal(
            "CREATE MATERIALIZED VIEW reached the plain view path".to_owned(),
        ));
    }
    Ok(with_column_names(view.query.to_string(), &view.columns))
}

/// `query` with `CREATE [MATERIALIZED] VIEW v (a, b)` column names applied.
pub(super) fn with_column_names(
    query: String,
    columns: &[datafusion::sql::sqlparser::ast::ViewColumnDef],
) -> String {
    if columns.is_empty() {
        return query;
    }
    let columns = columns
        .iter()
        .map(|c| c.name.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT * FROM ({query}) AS basin_view({columns})")
}
