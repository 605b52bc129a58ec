//! Runs one `.slt` file against a fresh server, or rewrites its expected output (`--complete`).
//!
//! Besides the sqllogictest-rs syntax, files may restart the server mid-file to test durability:
//!
//! ```text
//! system ok
//! harness restart
//!
//! system ok
//! harness kill9_restart
//! ```
//!
//! `restart` stops Basin with SIGTERM and waits for it to exit; `kill9_restart` SIGKILLs its
//! process group. Both start it again on the same data directory and wait until it answers; every
//! connection of the file then reconnects (new sessions). These are `system` records so the files
//! stay valid sqllogictest, but the harness runs them itself instead of a shell: outside this
//! harness the `harness` command does not exist and the record fails loudly.
//!
//! Labels: every record sees the label `basin`, or `postgres` when the target is a PostgreSQL
//! server, for `onlyif` / `skipif`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqllogictest::{
    Condition, DefaultColumnType, ExpectedError, Injected, QueryExpect, Record, RecordOutput,
    Runner, StatementExpect, default_column_validator, default_normalizer, default_validator,
    update_record_with_output,
};
use tokio::sync::watch;
use tokio_postgres::Config;

use crate::cluster::{BasinCluster, Stop};
use crate::db::{DbError, PgDb};
use crate::{Error, Result};

/// What a file runs against.
#[derive(Clone, Debug)]
pub enum Target {
    /// A fresh Basin cluster per file, started from this binary with this many executor
    /// processes (0: the coordinator runs queries itself).
    Basin { binary: PathBuf, executors: u32 },
    /// An existing PostgreSQL server, to check that expected output is what PostgreSQL says.
    /// Its `public` schema is emptied before each file (so use a scratch database), and `harness
    /// restart` only reconnects there.
    Postgres { config: Box<Config> },
}

impl Target {
    /// The label and engine name records can test with `onlyif` / `skipif`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Basin { .. } => "basin",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// How to run a file.
#[derive(Clone, Debug)]
pub struct FileOptions {
    /// Rewrite the file's expected output with what the server returns instead of comparing.
    pub complete: bool,
    /// Variables for `control substitution on` (`${NAME}`), such as `TPCH_DIR`.
    pub variables: BTreeMap<String, String>,
    /// Longest a single record may run before it fails.
    pub statement_timeout: Duration,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            complete: false,
            variables: BTreeMap::new(),
            statement_timeout: Duration::from_secs(300),
        }
    }
}

/// Runs `path` against a fresh server of `target` (see the module docs).
pub async fn run_file(path: &Path, target: &Target, options: &FileOptions) -> Result<()> {
    let records = sqllogictest::parse_file::<DefaultColumnType>(path)
        .map_err(|err| Error::context(format_args!("parse {}", path.display()), err))?;

    let mut server = Server::start(target).await?;
    let endpoint = server.endpoint();
    let engine = target.label();
    let timeout = options.statement_timeout;
    let mut runner = Runner::new(move || PgDb::connect(endpoint.clone(), engine, timeout));
    runner.add_label(engine);
    for (name, value) in &options.variables {
        runner.set_var(name.clone(), value.clone());
    }

    let outcome = if options.complete {
        complete(path, records, &mut runner, &mut server, engine).await
    } else {
        run(records, &mut runner, &mut server, engine).await
    };
    runner.shutdown_async().await;
    outcome
}

type FileRunner<M> = Runner<PgDb, M>;

async fn run<M>(
    records: Vec<Record<DefaultColumnType>>,
    runner: &mut FileRunner<M>,
    server: &mut Server,
    label: &str,
) -> Result<()>
where
    M: sqllogictest::MakeConnection<Conn = PgDb>,
{
    for record in records {
        if matches!(record, Record::Halt { .. }) {
            break;
        }
        if let Some(hook) = harness_hook(&record, label)? {
            server.apply(hook).await?;
            continue;
        }
        if let Err(err) = runner.run_async(record).await {
            return Err(
                Error::new(err.display(false).to_string()).with_appendix(&server.log_tail())
            );
        }
    }
    Ok(())
}

/// Like sqllogictest's `update_test_file`, plus: harness records run and stay as they are,
/// SQLSTATE expectations (`statement error (42P01)`) that still hold stay as they are, and
/// included files are executed but not rewritten.
async fn complete<M>(
    path: &Path,
    records: Vec<Record<DefaultColumnType>>,
    runner: &mut FileRunner<M>,
    server: &mut Server,
    label: &str,
) -> Result<()>
where
    M: sqllogictest::MakeConnection<Conn = PgDb>,
{
    let mut out = String::new();
    let mut include_depth = 0usize;
    let mut halted = false;
    for record in records {
        match &record {
            Record::Injected(Injected::BeginInclude(_)) => {
                include_depth += 1;
                continue;
            }
            Record::Injected(Injected::EndInclude(_)) => {
                include_depth = include_depth.saturating_sub(1);
                continue;
            }
            _ => {}
        }
        let own = include_depth == 0;
        if halted || matches!(record, Record::Halt { .. }) {
            halted = true;
            if own {
                let _ = writeln!(out, "{record}");
            }
            continue;
        }
        let updated = if let Some(hook) = harness_hook(&record, label)? {
            server.apply(hook).await?;
            None
        } else {
            let output = runner.apply_record(record.clone()).await;
            if sqlstate_still_matches(&record, &output) {
                None
            } else {
                update_record_with_output(
                    &record,
                    &output,
                    " ",
                    default_validator,
                    default_normalizer,
                    default_column_validator,
                )
            }
        };
        if own {
            let _ = writeln!(out, "{}", updated.as_ref().unwrap_or(&record));
        }
    }
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out.push('\n');
    fs::write(path, out)
        .map_err(|err| Error::context(format_args!("write {}", path.display()), err))
}

fn sqlstate_still_matches(
    record: &Record<DefaultColumnType>,
    output: &RecordOutput<DefaultColumnType>,
) -> bool {
    let expected = match record {
        Record::Statement {
            expected: StatementExpect::Error(ExpectedError::SqlState(code)),
            ..
        }
        | Record::Query {
            expected: QueryExpect::Error(ExpectedError::SqlState(code)),
            ..
        } => code,
        _ => return false,
    };
    let error = match output {
        RecordOutput::Statement {
            error: Some(error), ..
        }
        | RecordOutput::Query {
            error: Some(error), ..
        } => error,
        _ => return false,
    };
    error
        .downcast_ref::<DbError>()
        .and_then(DbError::sqlstate)
        .is_some_and(|actual| actual == expected)
}

/// What a `harness ...` system record asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Restart(Stop),
    /// The record's conditions exclude it for this target.
    Skip,
}

fn harness_hook(record: &Record<DefaultColumnType>, label: &str) -> Result<Option<Hook>> {
    let Record::System {
        command,
        conditions,
        loc,
        ..
    } = record
    else {
        return Ok(None);
    };
    let mut words = command.split_whitespace();
    if words.next() != Some("harness") {
        return Ok(None);
    }
    let skip = conditions.iter().any(|condition| match condition {
        Condition::OnlyIf { label: wanted } => wanted != label,
        Condition::SkipIf { label: unwanted } => unwanted == label,
    });
    if skip {
        return Ok(Some(Hook::Skip));
    }
    match (words.next(), words.next()) {
        (Some("restart"), None) => Ok(Some(Hook::Restart(Stop::Graceful))),
        (Some("kill9_restart"), None) => Ok(Some(Hook::Restart(Stop::Kill9))),
        _ => Err(Error::new(format!(
            "unknown harness command `{}` at {loc}: expected `harness restart` or `harness \
             kill9_restart`",
            command.trim()
        ))),
    }
}

/// Gives a file on an external PostgreSQL server the empty `public` schema a fresh Basin cluster
/// has. Destroys everything in that schema: point `--postgres` at a scratch database only.
async fn reset_public_schema(config: &Config) -> Result<()> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|err| Error::context("connect to PostgreSQL", err))?;
    let connection = tokio::spawn(connection);
    let reset = client
        .batch_execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        .await
        .map_err(|err| Error::context("reset schema public on PostgreSQL", err));
    drop(client);
    let _ = connection.await;
    reset
}

/// The server a file runs against.
enum Server {
    Basin(BasinCluster),
    /// An external server; sending the same settings again makes every connection reconnect.
    External(watch::Sender<Config>),
}

impl Server {
    async fn start(target: &Target) -> Result<Self> {
        match target {
            Target::Basin { binary, executors } => Ok(Self::Basin(
                BasinCluster::start(binary.clone(), *executors).await?,
            )),
            Target::Postgres { config } => {
                reset_public_schema(config).await?;
                Ok(Self::External(watch::channel(Config::clone(config)).0))
            }
        }
    }

    fn endpoint(&self) -> watch::Receiver<Config> {
        match self {
            Self::Basin(cluster) => cluster.endpoint(),
            Self::External(sender) => sender.subscribe(),
        }
    }

    async fn apply(&mut self, hook: Hook) -> Result<()> {
        match (self, hook) {
            (_, Hook::Skip) => Ok(()),
            (Self::Basin(cluster), Hook::Restart(how)) => cluster.restart(how).await,
            (Self::External(sender), Hook::Restart(_)) => {
                sender.send_modify(|_| {});
                Ok(())
            }
        }
    }

    fn log_tail(&self) -> String {
        match self {
            Self::Basin(cluster) => cluster.log_tail(),
            Self::External(_) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_record(script: &str) -> Record<DefaultColumnType> {
        sqllogictest::parse::<DefaultColumnType>(script)
            .expect("the test script parses")
            .into_iter()
            .find(|record| matches!(record, Record::System { .. }))
            .expect("the test script has a system record")
    }

    #[test]
    fn harness_records_become_hooks() {
        let restart = system_record("system ok\nharness restart\n");
        let kill9 = system_record("system ok\nharness  kill9_restart \n");
        assert_eq!(
            harness_hook(&restart, "basin").expect("known command"),
            Some(Hook::Restart(Stop::Graceful))
        );
        assert_eq!(
            harness_hook(&kill9, "basin").expect("known command"),
            Some(Hook::Restart(Stop::Kill9))
        );
    }

    #[test]
    fn conditions_skip_harness_records() {
        let only_postgres = system_record("onlyif postgres\nsystem ok\nharness restart\n");
        let skip_basin = system_record("skipif basin\nsystem ok\nharness restart\n");
        assert_eq!(
            harness_hook(&only_postgres, "basin").expect("known command"),
            Some(Hook::Skip)
        );
        assert_eq!(
            harness_hook(&skip_basin, "basin").expect("known command"),
            Some(Hook::Skip)
        );
        assert_eq!(
            harness_hook(&only_postgres, "postgres").expect("known command"),
            Some(Hook::Restart(Stop::Graceful))
        );
    }

    #[test]
    fn other_system_records_are_left_to_the_shell_and_typos_fail() {
        let shell = system_record("system ok\necho harness restart\n");
        assert_eq!(harness_hook(&shell, "basin").expect("not ours"), None);
        let typo = system_record("system ok\nharness reboot\n");
        let err = harness_hook(&typo, "basin").expect_err("unknown harness command");
        assert!(err.to_string().contains("harness reboot"), "{err}");
    }
}
