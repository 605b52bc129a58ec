//! `SHOW TABLES`: the relations of the current database, one row each.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use basin_catalog::model::RelationKind;
use datafusion::physical_plan::memory::MemoryStream;

use super::Output;
use crate::error::{Error, Result};
use crate::session::Session;

pub(super) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("table_type", DataType::Utf8, false),
    ]))
}

pub(super) fn execute(session: &Session) -> Result<Output> {
    let snapshot = session.server.catalog.snapshot();
    let mut rows: Vec<(&str, &str, &str)> = snapshot
        .relations
        .iter()
        .filter(|r| r.database == session.vars.database)
        .map(|r| {
            let kind = match r.kind {
                RelationKind::External { .. } => "external table",
                RelationKind::Managed { .. } => "table",
                RelationKind::View { .. } => "view",
                RelationKind::MaterializedView(_) => "materialized view",
                RelationKind::Stream(_) => "streaming table",
            };
            (r.schema.as_str(), r.name.as_str(), kind)
        })
        .collect();
    rows.sort();
    let schema = schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| Error::Internal(format!("build SHOW TABLES result: {e}")))?;
    let stream = MemoryStream::try_new(vec![batch], Arc::clone(&schema), None)?;
    Ok(Output::Rows {
        schema,
        stream: Box::pin(stream),
    })
}
