//! Runs DataFusion's files one after another on one Basin cluster, each in fresh sessions and an
//! emptied catalog, and records per-file and per-record outcomes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;
use sqllogictest::{
    ExpectedError, QueryExpect, Record, RecordOutput, Runner, StatementExpect, TestErrorKind,
};
use tokio_postgres::{Config, NoTls};

use super::corpus::{self, SkipList};
use super::db::{DfDb, LastError};
use super::render::{self, DfColumnType};
use crate::{BasinCluster, Error, Result};

/// What to run and how.
#[derive(Debug)]
pub struct Options {
    /// The `basin` binary.
    pub binary: PathBuf,
    /// The unpacked `datafusion-sqllogictest` crate (holds `test_files/`); the server's working
    /// directory, as DataFusion's runner works from there too.
    pub corpus_dir: PathBuf,
    /// Executor processes next to the coordinator; 0 is single-node.
    pub executors: u32,
    /// Files to consider, relative to `test_files/`.
    pub files: Vec<(String, PathBuf)>,
    pub skip: SkipList,
    /// Longest a whole file may take.
    pub file_timeout: Duration,
    /// Longest one record may take.
    pub statement_timeout: Duration,
}

/// How a file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// At least one record failed (the file still ran to its end).
    Failed,
    /// On the skip list, with its reason.
    Skipped(String),
    /// Did not finish within the file timeout.
    TimedOut,
    /// The server died or stopped answering during the file.
    Crashed,
    /// sqllogictest could not parse it.
    Unparsed(String),
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Passed => "pass",
            Self::Failed => "fail",
            Self::Skipped(_) => "skip",
            Self::TimedOut => "timeout",
            Self::Crashed => "crash",
            Self::Unparsed(_) => "unparsed",
        }
    }

    pub fn ran(&self) -> bool {
        !matches!(self, Self::Skipped(_))
    }
}

/// Records of one file, by outcome. Only `statement` and `query` records count.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    /// Excluded by `onlyif` / `skipif`, or not reached (timeout, crash).
    pub skipped: u64,
    /// Error records that passed whose message also matched DataFusion's (prefixes aside).
    pub error_text_matched: u64,
    /// Error records that passed (Basin refused too) with a different message.
    pub error_text_differs: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.error_text_matched += other.error_text_matched;
        self.error_text_differs += other.error_text_differs;
    }
}

/// One failed record.
#[derive(Clone, Debug)]
pub struct Failure {
    /// `file:line`.
    pub location: String,
    /// A short class used to group failures across files.
    pub category: String,
    /// The runner's full message (SQL, diff or error).
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct FileResult {
    pub name: String,
    pub status: Status,
    pub counts: Counts,
    pub failures: Vec<Failure>,
    pub elapsed: Duration,
}

/// Runs every file of `options`, calling `progress` after each.
pub async fn run(
    options: &Options,
    mut progress: impl FnMut(&FileResult),
) -> Result<Vec<FileResult>> {
    let mut cluster: Option<Cluster> = None;
    let mut results = Vec::new();
    for (name, path) in &options.files {
        if let Some(reason) = options.skip.reason(name) {
            let result = FileResult {
                name: name.clone(),
                status: Status::Skipped(reason.to_string()),
                counts: Counts::default(),
                failures: Vec::new(),
                elapsed: Duration::ZERO,
            };
            progress(&result);
            results.push(result);
            continue;
        }
        let running = match cluster.as_mut() {
            Some(running) => running,
            None => cluster.insert(Cluster::start(options).await?),
        };
        corpus::setup_scratch_dir(&options.corpus_dir, name)?;
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            options.file_timeout,
            run_file(
                path,
                &running.cluster,
                options.statement_timeout,
                &options.corpus_dir,
            ),
        )
        .await;
        let (mut status, counts, failures) = match outcome {
            Ok(Ok((counts, failures))) => {
                let status = if counts.failed == 0 {
                    Status::Passed
                } else {
                    Status::Failed
                };
                (status, counts, failures)
            }
            Ok(Err(FileError::Unparsed(message))) => {
                (Status::Unparsed(message), Counts::default(), Vec::new())
            }
            Err(_) => (Status::TimedOut, Counts::default(), Vec::new()),
        };
        // A file leaves tables behind; a dead or stuck server is replaced.
        if let Err(err) = running.reset().await {
            if status != Status::TimedOut {
                status = Status::Crashed;
            }
            eprintln!(
                "basin-df-slt: {name}: server unusable after the file, restarting it: {err}\n{}",
                running.cluster.log_tail()
            );
            cluster = None;
        } else if status == Status::TimedOut {
            // Whatever the file left running would slow the next ones.
            cluster = None;
        }
        let result = FileResult {
            name: name.clone(),
            status,
            counts,
            failures,
            elapsed: started.elapsed(),
        };
        progress(&result);
        results.push(result);
    }
    Ok(results)
}

enum FileError {
    Unparsed(String),
}

/// At most this many failures are kept per file (all are counted).
const FAILURES_KEPT: usize = 50;

async fn run_file(
    path: &Path,
    cluster: &BasinCluster,
    statement_timeout: Duration,
    corpus_dir: &Path,
) -> Result<(Counts, Vec<Failure>), FileError> {
    let records = sqllogictest::parse_file::<DfColumnType>(path)
        .map_err(|err| FileError::Unparsed(err.to_string()))?;
    let endpoint = cluster.endpoint();
    let last_error = LastError::default();
    let connection_error = LastError::clone(&last_error);
    let corpus_dir = std::path::absolute(corpus_dir).unwrap_or_else(|_| corpus_dir.to_owned());
    let mut runner = Runner::new(move || {
        DfDb::connect(
            endpoint.clone(),
            statement_timeout,
            LastError::clone(&connection_error),
            corpus_dir.clone(),
        )
    });
    // The records DataFusion's own runner runs: it labels itself `Datafusion`, so `onlyif
    // postgres` records are skipped and `skipif postgres` records run.
    runner.add_label("Datafusion");
    runner.with_validator(render::value_validator);
    runner.with_column_validator(render::column_validator);
    runner.with_normalizer(render::value_normalizer);

    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let file = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    for record in records {
        if matches!(record, Record::Halt { .. }) {
            break;
        }
        let counted = matches!(record, Record::Statement { .. } | Record::Query { .. });
        let location = record_location(&record, &file);
        let (record, wanted) = relax_error(record);
        if let Ok(mut last) = last_error.lock() {
            *last = None;
        }
        match runner.run_async(record).await {
            Ok(RecordOutput::Nothing) => {
                if counted {
                    counts.skipped += 1;
                }
            }
            Ok(_) => {
                if !counted {
                    continue;
                }
                counts.passed += 1;
                if let Some(wanted) = wanted {
                    let actual = last_error
                        .lock()
                        .ok()
                        .and_then(|last| last.clone())
                        .unwrap_or_default();
                    if message_matches(&wanted, &actual) {
                        counts.error_text_matched += 1;
                    } else {
                        counts.error_text_differs += 1;
                    }
                }
            }
            Err(err) => {
                counts.failed += 1;
                if failures.len() < FAILURES_KEPT {
                    failures.push(Failure {
                        location,
                        category: category(&err.kind()),
                        detail: err.display(false).to_string(),
                    });
                }
            }
        }
    }
    runner.shutdown_async().await;
    Ok((counts, failures))
}

fn record_location(record: &Record<DfColumnType>, file: &str) -> String {
    let loc = match record {
        Record::Statement { loc, .. } | Record::Query { loc, .. } => loc,
        _ => return file.to_string(),
    };
    format!("{}:{}", loc.file(), loc.line())
}

/// Basin reports errors in Postgres style, without DataFusion's class prefixes and reworded
/// where Postgres has its own words: an error record passes when Basin refuses the statement
/// too, and its expected message is returned for a separate, informative check.
fn relax_error(record: Record<DfColumnType>) -> (Record<DfColumnType>, Option<ExpectedError>) {
    match record {
        Record::Statement {
            loc,
            conditions,
            connection,
            sql,
            expected: StatementExpect::Error(expected),
            retry,
        } if message_expected(&expected) => (
            Record::Statement {
                loc,
                conditions,
                connection,
                sql,
                expected: StatementExpect::Error(ExpectedError::Empty),
                retry,
            },
            Some(expected),
        ),
        Record::Query {
            loc,
            conditions,
            connection,
            sql,
            expected: QueryExpect::Error(expected),
            retry,
        } if message_expected(&expected) => (
            Record::Query {
                loc,
                conditions,
                connection,
                sql,
                expected: QueryExpect::Error(ExpectedError::Empty),
                retry,
            },
            Some(expected),
        ),
        other => (other, None),
    }
}

fn message_expected(expected: &ExpectedError) -> bool {
    matches!(
        expected,
        ExpectedError::Inline(_) | ExpectedError::Multiline(_)
    )
}

/// DataFusion's error class prefixes, which Basin leaves out (the class is in the SQLSTATE).
static DATAFUSION_PREFIXES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:DataFusion error: |Error during planning: |Execution error: |This feature is not implemented: |Arrow error: |Schema error: |Internal error: |SQL error: |External error: |Invalid or Unsupported Configuration: |Optimizer rule '[^']*' failed(?:\\n|\n)caused by(?:\\n|\n)|Context\([^)]*\)(?:, )?)+",
    )
    .expect("valid regex")
});

/// Whether Basin's message says what DataFusion's expected message says, class prefixes and
/// the case of the first letter aside.
fn message_matches(expected: &ExpectedError, actual: &str) -> bool {
    let pattern = match expected {
        ExpectedError::Inline(regex) => regex.as_str().to_string(),
        ExpectedError::Multiline(text) => regex::escape(text.trim()),
        _ => return true,
    };
    let stripped = DATAFUSION_PREFIXES.replace_all(&pattern, "");
    let stripped = stripped.trim_end_matches(['.', ' ']);
    Regex::new(&format!("(?is){stripped}")).is_ok_and(|regex| regex.is_match(actual))
}

/// A short class of a failure, to group failures across files.
fn category(kind: &TestErrorKind) -> String {
    match kind {
        TestErrorKind::Fail { err, .. } => format!("error: {}", shape(&err.to_string())),
        TestErrorKind::Ok { .. } => "no error where DataFusion errors".to_string(),
        TestErrorKind::QueryResultMismatch { .. } => "different result".to_string(),
        TestErrorKind::QueryResultColumnsMismatch { .. } => "different column types".to_string(),
        TestErrorKind::StatementResultMismatch { .. } => "different row count".to_string(),
        TestErrorKind::ErrorMismatch { .. } => "different error".to_string(),
        other => shape(&other.to_string()),
    }
}

static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""[^"]*"|'[^']*'|\b\d+\b"#).expect("valid regex"));

/// The first line of an error without its quoted names and numbers, so similar errors group.
fn shape(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let first = first.strip_prefix("db error: ERROR: ").unwrap_or(first);
    let shaped = QUOTED.replace_all(first, "_");
    shaped.chars().take(110).collect()
}

/// The shared cluster plus what a fresh one holds, so each file starts from the same catalog.
struct Cluster {
    cluster: BasinCluster,
    baseline_tables: BTreeSet<(String, String)>,
    baseline_schemas: BTreeSet<String>,
}

const TABLES_SQL: &str = "SELECT table_schema, table_name, table_type FROM information_schema.tables \
     WHERE table_catalog = current_database()";
const SCHEMAS_SQL: &str =
    "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = current_database()";

impl Cluster {
    async fn start(options: &Options) -> Result<Self> {
        let cluster = BasinCluster::start_in(
            options.binary.clone(),
            options.executors,
            Some(options.corpus_dir.clone()),
        )
        .await?;
        let config = cluster.endpoint().borrow().clone();
        let client = Admin::connect(&config).await?;
        let baseline_tables = client
            .rows(TABLES_SQL)
            .await?
            .into_iter()
            .map(|row| (row[0].clone(), row[1].clone()))
            .collect();
        let baseline_schemas = client
            .rows(SCHEMAS_SQL)
            .await?
            .into_iter()
            .map(|row| row[0].clone())
            .collect();
        client.close().await;
        Ok(Self {
            cluster,
            baseline_tables,
            baseline_schemas,
        })
    }

    /// Drops every table, view and schema a file created. Fails if the server does not answer.
    async fn reset(&mut self) -> Result<()> {
        let config = self.cluster.endpoint().borrow().clone();
        let client = tokio::time::timeout(Duration::from_secs(30), Admin::connect(&config))
            .await
            .map_err(|_| Error::new("connect for cleanup timed out"))??;
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            for row in client.rows(TABLES_SQL).await? {
                if self
                    .baseline_tables
                    .contains(&(row[0].clone(), row[1].clone()))
                {
                    continue;
                }
                let kind = if row[2].contains("VIEW") {
                    "VIEW"
                } else {
                    "TABLE"
                };
                let sql = format!(
                    "DROP {kind} IF EXISTS {}.{}",
                    quote(&row[0]),
                    quote(&row[1])
                );
                client.execute(&sql).await?;
            }
            for row in client.rows(SCHEMAS_SQL).await? {
                if !self.baseline_schemas.contains(&row[0]) {
                    client
                        .execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&row[0])))
                        .await?;
                }
            }
            Ok::<_, Error>(())
        })
        .await
        .map_err(|_| Error::new("cleanup timed out"))
        .and_then(|outcome| outcome);
        client.close().await;
        outcome
    }
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A plain session for the harness's own statements.
struct Admin {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Admin {
    async fn connect(config: &Config) -> Result<Self> {
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|err| Error::context("connect to basin", err))?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { client, connection })
    }

    async fn rows(&self, sql: &str) -> Result<Vec<Vec<String>>> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|err| Error::context(sql, err))?;
        Ok(messages
            .into_iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|index| row.get(index).unwrap_or_default().to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|err| Error::context(sql, err))
    }

    async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.connection).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(pattern: &str) -> ExpectedError {
        ExpectedError::Inline(Regex::new(pattern).expect("valid regex"))
    }

    #[test]
    fn error_messages_match_without_datafusion_prefixes() {
        let expected = inline("DataFusion error: Error during planning: Invalid function 'foo'");
        assert!(message_matches(
            &expected,
            "db error: ERROR: 42883: invalid function 'foo'"
        ));
        assert!(!message_matches(
            &expected,
            "db error: ERROR: 42601: syntax error"
        ));
    }

    #[test]
    fn failures_group_by_shape() {
        assert_eq!(
            shape("db error: ERROR: 42P01: relation \"t1\" does not exist\nmore"),
            "42P01: relation _ does not exist"
        );
    }
}
