//! The HTTP change feed of materialized views for dashboards: `GET /v1/views/{name}/changes`
//! answers with Server-Sent Events, first the view's rows (unless `?snapshot=false`), then
//! each epoch's deletes and inserts. Every event is named after its operation (`insert`,
//! `delete`), carries the epoch as its id and `{"epoch": E, "op": "...", "rows": [...]}` as
//! data; a feed that ends abnormally sends an `error` event first.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use basin_catalog::Catalog;
use basin_catalog::model::RelationKind;
use futures::StreamExt;

use crate::continuous::Manager;
use crate::continuous::feed::FeedBatch;
use crate::error::Error;
use crate::http_tables::error_response;
use crate::ingest::parse_name;

#[derive(Debug, Clone)]
pub(crate) struct ViewsState {
    catalog: Arc<Catalog>,
    manager: Arc<Manager>,
}

impl ViewsState {
    pub(crate) fn new(catalog: Arc<Catalog>, manager: Arc<Manager>) -> Self {
        Self { catalog, manager }
    }
}

pub(crate) fn routes(state: ViewsState) -> Router {
    Router::new()
        .route("/v1/views/{name}/changes", get(changes))
        .with_state(state)
}

fn event(batch: &FeedBatch) -> Result<Event, String> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer
        .write_batches(&[&batch.rows])
        .and_then(|()| writer.finish())
        .map_err(|e| e.to_string())?;
    let rows = String::from_utf8(writer.into_inner()).map_err(|e| e.to_string())?;
    let rows = if rows.is_empty() {
        "[]".to_owned()
    } else {
        rows
    };
    Ok(Event::default()
        .event(batch.op)
        .id(batch.epoch.to_string())
        .data(format!(
            "{{\"epoch\":{},\"op\":\"{}\",\"rows\":{rows}}}",
            batch.epoch, batch.op
        )))
}

async fn changes(
    State(state): State<ViewsState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let target = match parse_name(&name) {
        Ok(target) => target,
        Err(error) => return error_response(&error),
    };
    let snapshot = state.catalog.snapshot();
    let Some(entry) = snapshot.relation(&target.database, &target.schema, &target.name) else {
        return error_response(&Error::user(
            "42P01",
            format!("materialized view \"{}\" does not exist", target.name),
        ));
    };
    if !matches!(entry.kind, RelationKind::MaterializedView(_)) {
        return error_response(&Error::user(
            "42809",
            format!("\"{}\" is not a materialized view", target.name),
        ));
    }
    let with_snapshot = params
        .get("snapshot")
        .is_none_or(|v| !matches!(v.as_str(), "false" | "0" | "off"));
    let qualified = format!("{}.{}", entry.schema, entry.name);
    let feed =
        match crate::continuous::feed::open(&state.manager, entry.oid, &qualified, with_snapshot)
            .await
        {
            Ok(feed) => feed,
            Err(message) => return error_response(&Error::user("55000", message)),
        };
    let events = feed.map(|item| {
        Ok::<_, Infallible>(match item.and_then(|batch| event(&batch)) {
            Ok(event) => event,
            Err(message) => Event::default().event("error").data(message),
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
