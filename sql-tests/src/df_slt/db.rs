//! [`DfDb`]: the `sqllogictest::AsyncDB` for DataFusion's files. It runs each record over the
//! simple query protocol through [`PgDb`] and renders the answer as DataFusion's runner would
//! (see [`super::render`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput};
use tokio::sync::watch;
use tokio_postgres::types::Type;
use tokio_postgres::{Config, SimpleQueryMessage};

use super::render::{self, DfColumnType};
use crate::db::{DbError, PgDb};

/// The text of the last error any connection of a file saw, so the runner can check an error
/// record's message after it accepted the error itself (see `super::run`).
pub type LastError = Arc<Mutex<Option<String>>>;

/// Session settings DataFusion's runner gives every file (`TestContext::try_new_for_test_file`
/// fixes the partition count "so plans are deterministic").
const SESSION_SETUP: &str = "SET datafusion.execution.target_partitions = 4";

pub struct DfDb {
    db: PgDb,
    last_error: LastError,
    /// `'<corpus>/test_files/`: what `COPY ... TO 'test_files/...'` is rewritten to.
    files_literal: String,
}

impl DfDb {
    pub async fn connect(
        endpoint: watch::Receiver<Config>,
        statement_timeout: Duration,
        last_error: LastError,
        corpus_dir: std::path::PathBuf,
    ) -> Result<Self, DbError> {
        let mut db = PgDb::connect(endpoint, "Datafusion", statement_timeout).await?;
        db.simple_query(SESSION_SETUP).await?;
        let files_literal = format!("'{}/test_files/", corpus_dir.display());
        Ok(Self {
            db,
            last_error,
            files_literal,
        })
    }

    /// DataFusion's files write with `COPY ... TO 'test_files/scratch/...'`, relative to the
    /// runner's directory (which is the server's); Basin refuses relative `COPY` targets as
    /// Postgres does, so the runner makes them absolute. Other statements resolve relative
    /// locations against the server's directory themselves.
    fn absolute_copy_targets<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        let is_copy = sql
            .trim_start()
            .get(..4)
            .is_some_and(|word| word.eq_ignore_ascii_case("copy"));
        if is_copy && sql.contains("'test_files/") {
            sql.replace("'test_files/", &self.files_literal).into()
        } else {
            sql.into()
        }
    }

    async fn output(&mut self, sql: &str) -> Result<DBOutput<DfColumnType>, DbError> {
        let messages = self.db.simple_query(sql).await?;
        let mut columns = None;
        let mut rows = Vec::new();
        let mut count = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    columns = Some(description.len());
                }
                SimpleQueryMessage::Row(row) => {
                    columns.get_or_insert(row.len());
                    rows.push(row);
                }
                SimpleQueryMessage::CommandComplete(affected) => count = affected,
                _ => {}
            }
        }
        let Some(width) = columns else {
            if is_dml(sql) {
                // DataFusion answers DML with a one-row `count` column; Postgres with a command tag.
                return Ok(DBOutput::Rows {
                    types: vec![DfColumnType::Integer],
                    rows: vec![vec![count.to_string()]],
                });
            }
            return Ok(DBOutput::StatementComplete(count));
        };
        // The simple protocol carries no column types: ask for them with a Describe.
        let described = self
            .db
            .describe(sql)
            .await
            .ok()
            .filter(|columns| columns.len() == width);
        let columns = described.unwrap_or_else(|| vec![(Type::TEXT, -1); width]);
        let types = columns
            .iter()
            .map(|(ty, typmod)| render::column_type(ty, *typmod))
            .collect();
        let rows = rows
            .iter()
            .flat_map(|row| {
                render::expand_row(
                    columns
                        .iter()
                        .enumerate()
                        .map(|(index, (ty, typmod))| render::render(ty, *typmod, row.get(index)))
                        .collect(),
                )
            })
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }
}

/// Statements DataFusion answers with a row count.
fn is_dml(sql: &str) -> bool {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(first.as_str(), "INSERT" | "UPDATE" | "DELETE" | "COPY")
}

#[async_trait]
impl AsyncDB for DfDb {
    type Error = DbError;
    type ColumnType = DfColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let sql = self.absolute_copy_targets(sql).into_owned();
        let result = self.output(&sql).await;
        if let Err(err) = &result
            && let Ok(mut last) = self.last_error.lock()
        {
            *last = Some(err.to_string());
        }
        result
    }

    async fn shutdown(&mut self) {
        self.db.close().await;
    }

    fn engine_name(&self) -> &str {
        "Datafusion"
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.sqlstate().map(str::to_owned)
    }
}
