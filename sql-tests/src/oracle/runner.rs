//! Runs rounds of checks over pgwire: each round is generated from `(seed, round)` alone, so a
//! round can be replayed (`--round`) whatever `--jobs` was and whichever worker ran it.
//!
//! A round: [`CHECKS_PER_ROUND`] checks are generated; both queries of each run with the server's
//! default settings (an oracle check each); then again under [`VARIANTS_PER_ROUND`]
//! configuration variants (each query compared with its default-settings result: a configuration
//! check; and the pair judged by its oracle again); then, if there is a reference cluster, once more there (a single-node vs
//! distributed check per query).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use super::checks::{self, Check, Query};
use super::compare::{Outcome, Verdict, judge};
use super::known;
use super::report::{Mismatch, Side};
use super::rng::Rng;
use super::schema::Schema;
use super::{Options, Stats};
use crate::{Error, Result};

/// Checks generated per round.
pub(super) const CHECKS_PER_ROUND: usize = 8;
/// Configuration variants each round's queries run under. In a debug build planning costs as
/// much as running these small queries, and each variant turns two queries into three checks
/// (each query against its default-settings answer, and the oracle again).
pub(super) const VARIANTS_PER_ROUND: usize = 3;
/// A query slower than this counts as a hang: a failure.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// A configuration variant: a name and the settings it applies on top of the defaults.
pub(super) struct Variant {
    pub(super) name: &'static str,
    pub(super) settings: &'static [(&'static str, &'static str)],
}

const TARGET_PARTITIONS: &str = "datafusion.execution.target_partitions";
const BATCH_SIZE: &str = "datafusion.execution.batch_size";
const PREFER_HASH_JOIN: &str = "datafusion.optimizer.prefer_hash_join";
const REPARTITION_JOINS: &str = "datafusion.optimizer.repartition_joins";
const REPARTITION_AGGREGATIONS: &str = "datafusion.optimizer.repartition_aggregations";
/// Basin turns it on (DataFusion's default is off): filters evaluated inside the Parquet scan.
pub(super) const PUSHDOWN_FILTERS: &str = "datafusion.execution.parquet.pushdown_filters";
/// Whether join selection may swap a join's inputs by their statistics.
pub(super) const JOIN_REORDERING: &str = "datafusion.optimizer.join_reordering";

/// Every setting a variant may touch; their defaults are read once per connection and written
/// back after each variant.
pub(super) const VARIANT_SETTINGS: [&str; 7] = [
    TARGET_PARTITIONS,
    BATCH_SIZE,
    PREFER_HASH_JOIN,
    REPARTITION_JOINS,
    REPARTITION_AGGREGATIONS,
    PUSHDOWN_FILTERS,
    JOIN_REORDERING,
];

pub(super) const VARIANTS: &[Variant] = &[
    Variant {
        name: "target_partitions=1",
        settings: &[(TARGET_PARTITIONS, "1")],
    },
    Variant {
        name: "target_partitions=2",
        settings: &[(TARGET_PARTITIONS, "2")],
    },
    Variant {
        name: "target_partitions=7",
        settings: &[(TARGET_PARTITIONS, "7")],
    },
    Variant {
        name: "batch_size=1",
        settings: &[(BATCH_SIZE, "1")],
    },
    Variant {
        name: "batch_size=7",
        settings: &[(BATCH_SIZE, "7")],
    },
    Variant {
        name: "batch_size=8192",
        settings: &[(BATCH_SIZE, "8192")],
    },
    Variant {
        name: "prefer_hash_join=false",
        settings: &[(PREFER_HASH_JOIN, "false")],
    },
    Variant {
        name: "prefer_hash_join=true",
        settings: &[(PREFER_HASH_JOIN, "true")],
    },
    Variant {
        name: "repartition=off",
        settings: &[
            (REPARTITION_JOINS, "false"),
            (REPARTITION_AGGREGATIONS, "false"),
        ],
    },
    Variant {
        name: "repartition=on",
        settings: &[
            (REPARTITION_JOINS, "true"),
            (REPARTITION_AGGREGATIONS, "true"),
        ],
    },
    Variant {
        name: "pushdown_filters=true",
        settings: &[(PUSHDOWN_FILTERS, "true")],
    },
    Variant {
        name: "join_reordering=false",
        settings: &[(JOIN_REORDERING, "false")],
    },
    Variant {
        name: "partitions=7,batch=7,sort_merge",
        settings: &[
            (TARGET_PARTITIONS, "7"),
            (BATCH_SIZE, "7"),
            (PREFER_HASH_JOIN, "false"),
        ],
    },
    Variant {
        name: "partitions=7,batch=1,no_repartition",
        settings: &[
            (TARGET_PARTITIONS, "7"),
            (BATCH_SIZE, "1"),
            (REPARTITION_JOINS, "false"),
            (REPARTITION_AGGREGATIONS, "false"),
        ],
    },
];

/// A run-ending problem: the server died, hung, or the connection broke.
#[derive(Debug)]
pub(super) struct Fatal(pub String);

/// One pgwire session.
pub(super) struct Connection {
    client: Client,
    task: JoinHandle<()>,
    /// Default values of [`VARIANT_SETTINGS`] on this connection.
    defaults: Vec<(&'static str, String)>,
}

impl Connection {
    pub(super) async fn open(config: &Config) -> Result<Self> {
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|err| Error::context("connect to basin", err))?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut this = Self {
            client,
            task,
            defaults: Vec::new(),
        };
        for name in VARIANT_SETTINGS {
            match this.run(&format!("SHOW {name}")).await {
                Ok(Outcome::Rows(rows)) => {
                    let value = rows
                        .first()
                        .and_then(|row| row.first().cloned().flatten())
                        .ok_or_else(|| Error::new(format!("SHOW {name} returned no value")))?;
                    this.defaults.push((name, value));
                }
                Ok(Outcome::Error { sqlstate, message }) => {
                    return Err(Error::new(format!(
                        "basin refuses SHOW {name}: {sqlstate}: {message}"
                    )));
                }
                Err(Fatal(message)) => return Err(Error::new(message)),
            }
        }
        Ok(this)
    }

    /// Runs one statement with the simple protocol.
    pub(super) async fn run(&self, sql: &str) -> Result<Outcome, Fatal> {
        let messages =
            match tokio::time::timeout(QUERY_TIMEOUT, self.client.simple_query(sql)).await {
                Err(_) => {
                    return Err(Fatal(format!(
                        "no answer within {}s to: {sql}",
                        QUERY_TIMEOUT.as_secs()
                    )));
                }
                Ok(Err(err)) => {
                    return match err.as_db_error() {
                        Some(db) => Ok(Outcome::Error {
                            sqlstate: db.code().code().to_string(),
                            message: db.message().to_string(),
                        }),
                        None => Err(Fatal(format!("connection failed: {err} (running: {sql})"))),
                    };
                }
                Ok(Ok(messages)) => messages,
            };
        let rows = messages
            .into_iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .collect();
        Ok(Outcome::Rows(rows))
    }

    /// Applies `settings`; an error means Basin refused one, which is reported.
    async fn set(&self, settings: &[(&str, &str)]) -> Result<Option<String>, Fatal> {
        for (name, value) in settings {
            // Quoted: Basin refuses an unquoted boolean (`= false` arrives as 'off').
            let statement = format!("SET {name} = '{value}'");
            if let Outcome::Error { sqlstate, message } = self.run(&statement).await? {
                return Ok(Some(format!("{statement}: {sqlstate}: {message}")));
            }
        }
        Ok(None)
    }

    async fn restore(&self) -> Result<Option<String>, Fatal> {
        let defaults: Vec<(&str, &str)> = self
            .defaults
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        self.set(&defaults).await
    }

    pub(super) async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// What all workers share.
pub(super) struct Shared {
    pub(super) options: Options,
    pub(super) schemas: Vec<Schema>,
    pub(super) stats: Mutex<Stats>,
    pub(super) next_round: AtomicU64,
    pub(super) checks_done: AtomicU64,
    pub(super) stop: AtomicBool,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        // A worker that panicked while holding the lock left counts that are still usable.
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One worker: a session on the cluster under test and, optionally, one on the reference.
pub(super) async fn worker(
    shared: Arc<Shared>,
    main: Config,
    reference: Option<Config>,
) -> Result<(), Fatal> {
    let conn = Connection::open(&main)
        .await
        .map_err(|err| Fatal(err.to_string()))?;
    let reference = match reference {
        Some(config) => Some(
            Connection::open(&config)
                .await
                .map_err(|err| Fatal(err.to_string()))?,
        ),
        None => None,
    };
    let result = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let round = match shared.options.round {
            Some(round) => {
                // Replaying one round: the first worker to get here takes it.
                if shared.next_round.fetch_add(1, Ordering::Relaxed) > 0 {
                    break Ok(());
                }
                round
            }
            None => shared.next_round.fetch_add(1, Ordering::Relaxed),
        };
        if let Err(fatal) = run_round(&shared, &conn, reference.as_ref(), round).await {
            shared.stop.store(true, Ordering::Relaxed);
            break Err(fatal);
        }
        if shared.checks_done.load(Ordering::Relaxed) >= shared.options.checks {
            break Ok(());
        }
    };
    conn.close().await;
    if let Some(reference) = reference {
        reference.close().await;
    }
    result
}

/// The generator of round `round` of `seed`: which schema, which checks, which variants.
pub(super) fn round_plan(
    seed: u64,
    round: u64,
    schemas: &[Schema],
) -> (usize, Vec<Check>, Vec<usize>) {
    let mut rng = Rng::fork(seed, round.wrapping_add(1));
    let schema = (round % schemas.len() as u64) as usize;
    let checks = (0..CHECKS_PER_ROUND)
        .map(|_| checks::generate(&mut rng, &schemas[schema]))
        .collect();
    let mut variants = Vec::new();
    while variants.len() < VARIANTS_PER_ROUND.min(VARIANTS.len()) {
        let variant = rng.below(VARIANTS.len());
        if !variants.contains(&variant) {
            variants.push(variant);
        }
    }
    (schema, checks, variants)
}

async fn run_pair(conn: &Connection, check: &Check) -> Result<(Outcome, Outcome), Fatal> {
    let left = conn.run(&check.left.sql).await?;
    let right = conn.run(&check.right.sql).await?;
    Ok((left, right))
}

async fn run_round(
    shared: &Shared,
    conn: &Connection,
    reference: Option<&Connection>,
    round: u64,
) -> Result<(), Fatal> {
    let options = &shared.options;
    let (schema, checks, variants) = round_plan(options.seed, round, &shared.schemas);
    let mut local = Stats::default();
    let mut mismatches = Vec::new();
    let checks: Vec<(usize, Check)> = checks.into_iter().enumerate().collect();

    // Default settings: the oracle itself.
    let mut baseline = Vec::new();
    for (index, check) in &checks {
        let (left, right) = run_pair(conn, check).await?;
        local.observe(&left, &check.left.sql, options.skip_known);
        local.observe(&right, &check.right.sql, options.skip_known);
        if judged(&mut local, check.oracle, &left, &right, &check.left) {
            mismatches.push(Mismatch::oracle(
                options, round, *index, check, &left, &right, None,
            ));
        }
        baseline.push((left, right));
    }

    // The same queries under a few configuration variants.
    for variant in variants.iter().map(|&index| &VARIANTS[index]) {
        let config_name = format!("config {}", variant.name);
        if let Some(refused) = conn.set(variant.settings).await? {
            local.refused_settings.insert(refused);
            conn.restore().await?;
            continue;
        }
        for ((index, check), (base_left, base_right)) in checks.iter().zip(&baseline) {
            let (left, right) = run_pair(conn, check).await?;
            local.observe(&left, &check.left.sql, options.skip_known);
            local.observe(&right, &check.right.sql, options.skip_known);
            // The oracle again under this variant, unless it already failed with the defaults.
            if judge(base_left, base_right, &check.left.classes) != Verdict::Mismatch
                && judged(&mut local, check.oracle, &left, &right, &check.left)
            {
                mismatches.push(Mismatch::oracle(
                    options,
                    round,
                    *index,
                    check,
                    &left,
                    &right,
                    Some(variant),
                ));
            }
            for (query, base, varied) in [
                (&check.left, base_left, &left),
                (&check.right, base_right, &right),
            ] {
                if judged(&mut local, &config_name, base, varied, query) {
                    mismatches.push(Mismatch::differential(
                        options,
                        round,
                        *index,
                        &config_name,
                        query,
                        Side::defaults(base),
                        Side::variant(variant, varied),
                    ));
                }
            }
        }
        if let Some(refused) = conn.restore().await? {
            local.refused_settings.insert(refused);
        }
    }

    // The reference cluster (single node when the cluster under test is distributed).
    if let Some(reference) = reference {
        let name = format!(
            "{} executors vs {}",
            options.executors,
            options.reference_executors.unwrap_or(0)
        );
        for ((index, check), (base_left, base_right)) in checks.iter().zip(&baseline) {
            for (query, base) in [(&check.left, base_left), (&check.right, base_right)] {
                let other = reference.run(&query.sql).await?;
                local.observe(&other, &query.sql, options.skip_known);
                if judged(&mut local, &name, base, &other, query) {
                    mismatches.push(Mismatch::differential(
                        options,
                        round,
                        *index,
                        &name,
                        query,
                        Side::cluster(options.executors, base, false),
                        Side::cluster(options.reference_executors.unwrap_or(0), &other, true),
                    ));
                }
            }
        }
    }

    for mismatch in &mut mismatches {
        mismatch.known = classify(mismatch, conn, reference).await?;
        if let (true, Some(name)) = (options.skip_known, mismatch.known) {
            let entry = local
                .per_oracle
                .entry(mismatch.stats_key.clone())
                .or_default();
            entry.mismatches = entry.mismatches.saturating_sub(1);
            entry.known += 1;
            *local.known.entry(name.to_string()).or_default() += 1;
        }
    }
    if options.skip_known {
        mismatches.retain(|mismatch| mismatch.known.is_none());
    }

    let checked = local.total_checks();
    let mut reported = Vec::new();
    {
        let mut stats = shared.stats();
        stats.merge(&local);
        stats.rounds += 1;
        for mismatch in mismatches {
            if stats.reported < options.max_reports {
                stats.reported += 1;
                reported.push(mismatch);
            }
        }
    }
    for mismatch in reported {
        let written = mismatch.write(&shared.schemas[schema], options);
        shared.stats().reports.push(written);
    }
    shared.checks_done.fetch_add(checked, Ordering::Relaxed);
    Ok(())
}

/// The known bug a mismatch looks like: its signature matches and, if the bug has a recheck, the
/// comparison agrees when both sides run again with the recheck's settings added.
async fn classify(
    mismatch: &Mismatch,
    conn: &Connection,
    reference: Option<&Connection>,
) -> Result<Option<&'static str>, Fatal> {
    for known in known::KNOWN {
        if !(known.signature)(
            &mismatch.left_sql,
            &mismatch.left.outcome,
            &mismatch.right_sql,
            &mismatch.right.outcome,
        ) {
            continue;
        }
        let Some(extra) = known.recheck else {
            return Ok(Some(known.name));
        };
        let mut outcomes = Vec::new();
        for (side, sql) in [
            (&mismatch.left, &mismatch.left_sql),
            (&mismatch.right, &mismatch.right_sql),
        ] {
            let target = match (side.reference, reference) {
                (true, Some(reference)) => reference,
                _ => conn,
            };
            for set in &side.settings {
                target.run(set).await?;
            }
            target.set(extra).await?;
            outcomes.push(target.run(sql).await?);
            target.restore().await?;
        }
        if let [left, right] = outcomes.as_slice()
            && judge(left, right, &mismatch.classes) == Verdict::Same
        {
            return Ok(Some(known.name));
        }
    }
    Ok(None)
}

/// Judges a pair and counts it under `oracle`; true on a mismatch.
fn judged(stats: &mut Stats, oracle: &str, left: &Outcome, right: &Outcome, query: &Query) -> bool {
    let entry = stats.per_oracle.entry(oracle.to_string()).or_default();
    match judge(left, right, &query.classes) {
        Verdict::Same => {
            entry.checks += 1;
            false
        }
        Verdict::BothFailed(..) => {
            entry.both_failed += 1;
            false
        }
        Verdict::Mismatch => {
            entry.checks += 1;
            entry.mismatches += 1;
            true
        }
    }
}
