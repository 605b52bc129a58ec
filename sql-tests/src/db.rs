//! [`PgDb`]: the `sqllogictest::AsyncDB` that sends each record to the server over the simple
//! query protocol, so results arrive as the server's own text rendering of every value.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

/// One client session. It reconnects when the endpoint changes (the cluster restarted), so a
/// file can go on after `harness restart` with fresh sessions.
pub struct PgDb {
    session: Option<Session>,
    endpoint: watch::Receiver<Config>,
    engine: &'static str,
    statement_timeout: Duration,
}

struct Session {
    client: Client,
    connection: JoinHandle<()>,
}

impl Session {
    async fn open(config: &Config) -> Result<Self, DbError> {
        let (client, connection) = config.connect(NoTls).await.map_err(DbError::from)?;
        let connection = tokio::spawn(async move {
            // Errors of the connection reach the client as failed queries.
            let _ = connection.await;
        });
        Ok(Self { client, connection })
    }

    /// Sends Terminate (by dropping the client) and waits briefly for the connection to end.
    async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.connection).await;
    }
}

impl PgDb {
    /// Connects to the current endpoint. `engine` names the server kind for `onlyif`/`skipif`.
    pub async fn connect(
        mut endpoint: watch::Receiver<Config>,
        engine: &'static str,
        statement_timeout: Duration,
    ) -> Result<Self, DbError> {
        let config = endpoint.borrow_and_update().clone();
        let session = Session::open(&config).await?;
        Ok(Self {
            session: Some(session),
            endpoint,
            engine,
            statement_timeout,
        })
    }

    /// Ends the session (Terminate), if one is open.
    pub async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            session.close().await;
        }
    }

    /// Runs `sql` over the simple query protocol with the statement timeout, returning the
    /// server's messages (every value in the server's text rendering).
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, DbError> {
        let timeout = self.statement_timeout;
        let session = self.session().await?;
        tokio::time::timeout(timeout, session.client.simple_query(sql))
            .await
            .map_err(|_| DbError::Timeout(timeout))?
            .map_err(DbError::from)
    }

    /// The result columns of `sql` (type and type modifier), from Parse and Describe without
    /// executing it: the simple protocol does not tell a client its columns' types.
    pub async fn describe(&mut self, sql: &str) -> Result<Vec<(Type, i32)>, DbError> {
        let timeout = self.statement_timeout;
        let session = self.session().await?;
        let statement = tokio::time::timeout(timeout, session.client.prepare(sql))
            .await
            .map_err(|_| DbError::Timeout(timeout))?
            .map_err(DbError::from)?;
        Ok(statement
            .columns()
            .iter()
            .map(|column| (column.type_().clone(), column.type_modifier()))
            .collect())
    }

    /// The open session, reconnecting first if the server restarted since it was opened.
    async fn session(&mut self) -> Result<&Session, DbError> {
        if self.endpoint.has_changed().unwrap_or(false)
            && let Some(old) = self.session.take()
        {
            // It belonged to a server that is gone.
            old.connection.abort();
        }
        match &mut self.session {
            Some(session) => Ok(session),
            slot @ None => {
                let config = self.endpoint.borrow_and_update().clone();
                Ok(slot.insert(Session::open(&config).await?))
            }
        }
    }
}

#[async_trait]
impl AsyncDB for PgDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let messages = self.simple_query(sql).await?;
        Ok(to_output(messages))
    }

    async fn shutdown(&mut self) {
        self.close().await;
    }

    fn engine_name(&self) -> &str {
        self.engine
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.sqlstate().map(str::to_owned)
    }
}

/// Turns the server's messages into what the file compares against: every value as the server
/// rendered it in text, NULL as `NULL`, the empty string as `(empty)`. Column types are not sent
/// in the simple protocol, so they are reported as `?` and not checked.
fn to_output(messages: Vec<SimpleQueryMessage>) -> DBOutput<DefaultColumnType> {
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
                rows.push((0..row.len()).map(|i| render(row.get(i))).collect());
            }
            SimpleQueryMessage::CommandComplete(rows_affected) => count = rows_affected,
            _ => {}
        }
    }
    match columns {
        Some(columns) => DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns],
            rows,
        },
        None => DBOutput::StatementComplete(count),
    }
}

fn render(value: Option<&str>) -> String {
    match value {
        None => "NULL".to_string(),
        Some("") => "(empty)".to_string(),
        Some(text) => text.to_string(),
    }
}

/// Why a record failed on the client side. Server errors keep their SQLSTATE, which `statement
/// error (42P01)` matches and which the Display shows, so regex expectations can match it too.
#[derive(Debug)]
pub enum DbError {
    /// The server answered with an ErrorResponse.
    Server(Box<tokio_postgres::error::DbError>),
    /// Connecting failed, the connection broke, or the client rejected what the server sent.
    Client(tokio_postgres::Error),
    /// The server did not answer within the statement timeout.
    Timeout(Duration),
}

impl DbError {
    /// The SQLSTATE of a server error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Server(err) => Some(err.code().code()),
            Self::Client(_) | Self::Timeout(_) => None,
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db_error) => Self::Server(Box::new(db_error.clone())),
            None => Self::Client(err),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server(err) => write!(
                f,
                "db error: {}: {}: {}",
                err.severity(),
                err.code().code(),
                err.message()
            ),
            Self::Client(err) => {
                write!(f, "client error: {err}")?;
                let mut source = std::error::Error::source(err);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            Self::Timeout(after) => write!(
                f,
                "client error: no answer within {}s (statement timeout)",
                after.as_secs()
            ),
        }
    }
}

impl std::error::Error for DbError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_like_sqllogictest_expects() {
        assert_eq!(render(None), "NULL");
        assert_eq!(render(Some("")), "(empty)");
        assert_eq!(render(Some("NULL")), "NULL");
        assert_eq!(render(Some(" a b ")), " a b ");
    }

    #[test]
    fn timeouts_have_no_sqlstate() {
        let timeout = DbError::Timeout(Duration::from_secs(3));
        assert_eq!(timeout.sqlstate(), None);
        assert_eq!(
            timeout.to_string(),
            "client error: no answer within 3s (statement timeout)"
        );
    }
}
