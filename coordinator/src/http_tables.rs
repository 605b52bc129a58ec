//! The HTTP table API: `POST /v1/tables/{name}/rows` appends NDJSON, CSV or an Arrow IPC stream
//! to a streaming table and answers once the rows are durable; `GET /v1/tables` lists tables
//! with their ingest statistics; `POST /v1/tables/{name}/compact` runs a compaction round now.
//!
//! Back-pressure: 503 with `Retry-After` while the table's log is over its memory budget
//! (compaction is behind), 429 with `Retry-After` while too many ingest requests are in flight.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use basin_catalog::Catalog;
use basin_catalog::model::RelationKind;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::ingest;

/// Largest request body accepted, in bytes.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// Ingest requests decoded at once; more get 429.
const MAX_INFLIGHT_REQUESTS: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct TablesState {
    catalog: Arc<Catalog>,
    inflight: Arc<Semaphore>,
}

impl TablesState {
    pub(crate) fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            inflight: Arc::new(Semaphore::new(MAX_INFLIGHT_REQUESTS)),
        }
    }
}

pub(crate) fn routes(state: TablesState) -> Router {
    Router::new()
        .route("/v1/tables", get(list_tables))
        .route(
            "/v1/tables/{name}/rows",
            post(append_rows).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/v1/tables/{name}/compact", post(compact))
        .with_state(state)
}

/// An error answer: `{"error": ..., "sqlstate": ...}` with a fitting status.
pub(crate) fn error_response(error: &Error) -> Response {
    let sqlstate = error.sqlstate();
    let status = match sqlstate {
        "42P01" => StatusCode::NOT_FOUND,
        "42809" => StatusCode::CONFLICT,
        "58030" | "XX000" => StatusCode::INTERNAL_SERVER_ERROR,
        // Over budget, no shard reachable, or an executor failed mid-append: retry later.
        "53000" | "57P03" | "08007" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = (
        status,
        Json(serde_json::json!({ "error": error.message(), "sqlstate": sqlstate })),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    response
}

fn retry_later(status: StatusCode, message: &str, after_secs: u64) -> Response {
    let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(after_secs));
    response
}

#[derive(Serialize)]
struct Appended {
    table: String,
    rows: u64,
    dead_lettered: u64,
}

async fn append_rows(
    State(state): State<TablesState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(_permit) = state.inflight.try_acquire() else {
        return retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "too many ingest requests in flight",
            1,
        );
    };
    let table = match ingest::parse_name(&name) {
        Ok(target) => match ingest::stream_table(&state.catalog, &target).await {
            Ok(table) => table,
            Err(error) => return error_response(&error),
        },
        Err(error) => return error_response(&error),
    };
    if let Some(after) = table.pressure() {
        return retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "the table's log is full while compaction catches up",
            after.as_secs().max(1),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-ndjson")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let decoded = match content_type.as_str() {
        "application/x-ndjson"
        | "application/jsonl"
        | "application/json"
        | "application/ndjson" => ingest::from_ndjson(table.as_ref(), &body).map(|d| vec![d]),
        "text/csv" => {
            let header = params.get("header").is_none_or(|v| v != "false");
            ingest::from_csv(table.as_ref(), &body, header).map(|d| vec![d])
        }
        "application/vnd.apache.arrow.stream" => ingest::from_arrow_ipc(table.as_ref(), &body),
        other => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(serde_json::json!({
                    "error": format!(
                        "unsupported content type \"{other}\"; send application/x-ndjson, \
                         text/csv or application/vnd.apache.arrow.stream"
                    )
                })),
            )
                .into_response();
        }
    };
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(error) => return error_response(&error),
    };
    // An Arrow stream of several batches is appended as one, so the request is atomic.
    let merged = match merge(&table, decoded) {
        Ok(merged) => merged,
        Err(error) => return error_response(&error),
    };
    match ingest::deliver(&state.catalog, &table, merged, "http").await {
        Ok(delivered) => Json(Appended {
            table: table.name().to_owned(),
            rows: delivered.rows,
            dead_lettered: delivered.dead_lettered,
        })
        .into_response(),
        Err(error) => error_response(&error),
    }
}

fn merge(
    table: &basin_catalog::streams::StreamTable,
    mut parts: Vec<ingest::Decoded>,
) -> Result<ingest::Decoded, Error> {
    if parts.len() == 1
        && let Some(only) = parts.pop()
    {
        return Ok(only);
    }
    let schema = table.schema();
    let batches: Vec<_> = parts.iter().map(|p| p.batch.clone()).collect();
    let batch = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| Error::Internal(format!("merge batches: {e}")))?;
    Ok(ingest::Decoded {
        batch,
        bad: parts.into_iter().flat_map(|p| p.bad).collect(),
    })
}

#[derive(Serialize)]
struct TableView {
    schema: String,
    name: String,
    kind: &'static str,
    columns: Vec<ColumnView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    watermark: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest: Option<basin_catalog::streams::IngestStats>,
}

#[derive(Serialize)]
struct ColumnView {
    name: String,
    data_type: String,
    nullable: bool,
}

async fn list_tables(State(state): State<TablesState>) -> Response {
    let snapshot = state.catalog.snapshot();
    let mut tables = Vec::new();
    for entry in &snapshot.relations {
        let (event_time, watermark, ingest) = match &entry.kind {
            RelationKind::Stream(spec) => {
                let stats = match state.catalog.stream_table(entry).await {
                    Ok(table) => Some(table.stats()),
                    Err(error) => return error_response(&Error::from(error)),
                };
                (spec.event_time.clone(), spec.watermark.clone(), stats)
            }
            _ => (None, None, None),
        };
        tables.push(TableView {
            schema: entry.schema.clone(),
            name: entry.name.clone(),
            kind: entry.kind_name(),
            columns: entry
                .columns
                .iter()
                .map(|c| ColumnView {
                    name: c.name.clone(),
                    data_type: crate::pgwire::types::pg_type(&c.data_type)
                        .name()
                        .to_owned(),
                    nullable: c.nullable,
                })
                .collect(),
            event_time,
            watermark,
            ingest,
        });
    }
    Json(serde_json::json!({ "tables": tables })).into_response()
}

/// How long `POST /compact` waits for the epoch of the rows acknowledged before it.
const COMPACT_EPOCH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn compact(State(state): State<TablesState>, Path(name): Path<String>) -> Response {
    let table = match ingest::parse_name(&name) {
        Ok(target) => match ingest::stream_table(&state.catalog, &target).await {
            Ok(table) => table,
            Err(error) => return error_response(&error),
        },
        Err(error) => return error_response(&error),
    };
    // Compaction leaves in the log the rows after the last committed epoch (a reader pinned
    // to it must not find them in the lake), so rows acknowledged just before this call would
    // wait for the next round: let the epoch they belong to commit first (one epoch, 100 ms by
    // default; past the wait, the round takes what it may).
    let epochs = state.catalog.epochs();
    epochs
        .wait_committed(epochs.open_epoch(), COMPACT_EPOCH_WAIT)
        .await;
    match state.catalog.compact_stream(&table).await {
        Ok(rows) => Json(serde_json::json!({ "table": table.name(), "compacted_rows": rows }))
            .into_response(),
        Err(error) => error_response(&Error::from(error)),
    }
}
