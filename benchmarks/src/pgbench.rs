//! The protocol benchmark: `pgbench` with custom scripts (`SELECT 1`, a point lookup, a small
//! aggregate over TPC-H's `nation`) in simple and prepared mode at several client counts,
//! against Basin and against a throwaway local PostgreSQL the runner starts (as the `postgres`
//! user, on its own loopback port, data under /tmp), each configuration run on both servers
//! back to back. Writes `pgbench.json` and `pgbench.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use tokio_postgres::NoTls;

use crate::cluster::{BasinServer, ProcessMemory, pg_error};
use crate::machine::Machine;
use crate::runner::{RunContext, basin_binary, tpch_data};

/// The scripts, by name: what each transaction sends.
pub const SCRIPTS: [(&str, &str); 3] = [
    ("select1", "SELECT 1;\n"),
    (
        "point",
        "\\set id random(0, 24)\nSELECT n_name, n_regionkey FROM nation WHERE n_nationkey = :id;\n",
    ),
    (
        "aggregate",
        "SELECT n_regionkey, count(*) FROM nation GROUP BY n_regionkey ORDER BY n_regionkey;\n",
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub script: String,
    pub mode: String,
    pub clients: usize,
    pub server: String,
    pub tps: Option<f64>,
    pub latency_ms: Option<f64>,
    pub transactions: Option<u64>,
    pub failed_transactions: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct PgbenchReport<'a> {
    started_at: String,
    seconds: u64,
    machine: &'a Machine,
    postgres_version: String,
    pgbench_version: String,
    basin_memory: Vec<ProcessMemory>,
    measurements: Vec<Measurement>,
}

pub async fn run(context: &RunContext) -> anyhow::Result<()> {
    let started_at = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let (tables, _) = tpch_data(context)?;
    let nation = tables
        .iter()
        .find(|(name, _)| name == "nation")
        .map(|(_, path)| path.clone())
        .context("TPC-H data has no nation table")?;
    let mut basin = match &context.args.connect {
        Some(address) => BasinServer::connect(address)?,
        None => {
            BasinServer::start(
                &basin_binary(context)?,
                context.args.executors,
                context.args.port,
            )
            .await?
        }
    };
    let mut postgres = Postgres::start(context)?;
    let outcome = measure_all(context, &basin, &postgres, &nation).await;
    let basin_memory = basin.peak_memory();
    basin.stop().await;
    let postgres_version = postgres.version();
    postgres.stop();
    let measurements = outcome?;
    let pgbench_version = Command::new("pgbench")
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let report = PgbenchReport {
        started_at,
        seconds: context.args.pgbench_secs,
        machine: &context.machine,
        postgres_version,
        pgbench_version,
        basin_memory,
        measurements,
    };
    let json = serde_json::to_string_pretty(&report).context("serialise the pgbench report")?;
    for (name, text) in [("pgbench.json", json), ("pgbench.md", markdown(&report))] {
        let path = context.output.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        eprintln!("[bench] wrote {}", path.display());
    }
    Ok(())
}

async fn measure_all(
    context: &RunContext,
    basin: &BasinServer,
    postgres: &Postgres,
    nation: &Path,
) -> anyhow::Result<Vec<Measurement>> {
    let client = basin.client().await?;
    client
        .exec(&format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS nation STORED AS PARQUET LOCATION '{}'",
            nation.display()
        ))
        .await
        .context("register nation in basin")?;
    let rows = client
        .rows("SELECT n_nationkey, n_name, n_regionkey, n_comment FROM nation")
        .await?;
    postgres.load_nation(&rows).await?;

    let scripts = tempfile::Builder::new()
        .prefix("basin-pgbench-")
        .tempdir()
        .context("create a directory for pgbench scripts")?;
    let mut measurements = Vec::new();
    let selected: Vec<(&str, &str)> = SCRIPTS
        .iter()
        .copied()
        .filter(|(name, _)| context.args.pgbench_scripts.iter().any(|s| s == name))
        .collect();
    let total = selected.len() * 2 * context.args.pgbench_clients.len() * 2;
    let mut progress = crate::progress::Progress::new("pgbench", total);
    for (name, text) in selected {
        let script = scripts.path().join(format!("{name}.sql"));
        std::fs::write(&script, text).context("write a pgbench script")?;
        for mode in ["simple", "prepared"] {
            for &clients in &context.args.pgbench_clients {
                for server in ["basin", "postgres"] {
                    progress.step(&format!("{name} {mode} {clients} clients on {server}"));
                    let target = match server {
                        "basin" => Target {
                            host: basin.host.clone(),
                            port: basin.port,
                            user: "basin",
                            database: "basin",
                        },
                        _ => Target {
                            host: "127.0.0.1".into(),
                            port: postgres.port,
                            user: "postgres",
                            database: "postgres",
                        },
                    };
                    let measurement =
                        pgbench(&target, &script, mode, clients, context.args.pgbench_secs);
                    let measurement = Measurement {
                        script: name.to_owned(),
                        server: server.to_owned(),
                        ..measurement
                    };
                    progress.advance();
                    progress.note(&format!(
                        "{name} {mode} c={clients} {server}: {}",
                        match (&measurement.error, measurement.tps) {
                            (Some(err), _) => format!("error: {err}"),
                            (None, Some(tps)) => format!("{tps:.0} tps"),
                            (None, None) => "no tps".into(),
                        }
                    ));
                    measurements.push(measurement);
                }
            }
        }
    }
    progress.finish();
    Ok(measurements)
}

struct Target {
    host: String,
    port: u16,
    user: &'static str,
    database: &'static str,
}

fn pgbench(target: &Target, script: &Path, mode: &str, clients: usize, secs: u64) -> Measurement {
    let output = Command::new("pgbench")
        .args(["-n", "-M", mode, "-f"])
        .arg(script)
        .arg("-c")
        .arg(clients.to_string())
        .arg("-j")
        .arg(clients.clamp(1, 2).to_string())
        .arg("-T")
        .arg(secs.to_string())
        .arg("-h")
        .arg(&target.host)
        .arg("-p")
        .arg(target.port.to_string())
        .arg("-U")
        .arg(target.user)
        .arg(target.database)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output();
    let mut measurement = Measurement {
        script: String::new(),
        mode: mode.to_owned(),
        clients,
        server: String::new(),
        tps: None,
        latency_ms: None,
        transactions: None,
        failed_transactions: None,
        error: None,
    };
    let output = match output {
        Ok(output) => output,
        Err(err) => {
            measurement.error = Some(format!("run pgbench: {err}"));
            return measurement;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_into(&stdout, &mut measurement);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || measurement.tps.is_none() {
        let reason = stderr
            .lines()
            .find(|line| line.contains("ERROR") || line.contains("error") || line.contains("FATAL"))
            .or_else(|| stderr.lines().last())
            .unwrap_or("pgbench failed")
            .trim()
            .to_owned();
        measurement.error = Some(reason);
    }
    measurement
}

/// Reads tps, average latency and the transaction counts from pgbench's summary.
fn parse_into(stdout: &str, measurement: &mut Measurement) {
    for line in stdout.lines() {
        let number = |rest: &str| {
            rest.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        };
        if let Some(rest) = line.strip_prefix("tps = ") {
            measurement.tps = number(rest);
        } else if let Some(rest) = line.strip_prefix("latency average = ") {
            measurement.latency_ms = number(rest);
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed: ")
        {
            measurement.transactions = rest.split('/').next().and_then(|n| n.trim().parse().ok());
        } else if let Some(rest) = line.strip_prefix("number of failed transactions: ") {
            measurement.failed_transactions = number(rest).map(|n| n as u64);
        }
    }
}

/// A throwaway PostgreSQL cluster under /tmp, run as the `postgres` user.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    running: bool,
}

impl Postgres {
    fn start(context: &RunContext) -> anyhow::Result<Self> {
        let bin = match &context.args.postgres_bin {
            Some(bin) => bin.clone(),
            None => newest_postgres_bin()?,
        };
        let dir = std::env::temp_dir().join(format!("basin-bench-pg-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        run_checked(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
        let data = dir.join("data");
        as_postgres(&bin.join("initdb"), |c| {
            c.args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data)
        })?;
        let mut postgres = Self {
            bin,
            dir,
            port: context.args.postgres_port,
            running: false,
        };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            postgres.port,
            postgres.dir.display()
        );
        let log = postgres.dir.join("postgres.log");
        as_postgres(&postgres.bin.join("pg_ctl"), |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(&options)
                .args(["-w", "start"])
        })?;
        postgres.running = true;
        Ok(postgres)
    }

    async fn load_nation(&self, rows: &crate::compare::Rows) -> anyhow::Result<()> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10));
        let (client, connection) = config.connect(NoTls).await.context("connect to postgres")?;
        let connection = tokio::spawn(connection);
        let quote = |v: &Option<String>| match v {
            Some(text) => format!("'{}'", text.replace('\'', "''")),
            None => "NULL".into(),
        };
        let values: Vec<String> = rows
            .iter()
            .map(|row| format!("({})", row.iter().map(quote).collect::<Vec<_>>().join(", ")))
            .collect();
        if values.is_empty() {
            bail!("basin returned no nation rows");
        }
        let sql = format!(
            "CREATE TABLE nation (n_nationkey integer PRIMARY KEY, n_name text,
                                  n_regionkey integer, n_comment text);
             INSERT INTO nation VALUES {};
             ANALYZE nation;",
            values.join(", ")
        );
        client.batch_execute(&sql).await.map_err(pg_error)?;
        drop(client);
        let _ = connection.await;
        Ok(())
    }

    fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    fn stop(&mut self) {
        if self.running {
            let data = self.dir.join("data");
            let _ = as_postgres(&self.bin.join("pg_ctl"), |c| {
                c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"])
            });
            self.running = false;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn newest_postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("find PostgreSQL under /usr/lib/postgresql (or pass --postgres-bin)")?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no PostgreSQL server under /usr/lib/postgresql (or pass --postgres-bin)")
}

/// Runs `program` as the `postgres` user (initdb and postgres refuse to run as root).
fn as_postgres(
    program: &Path,
    args: impl FnOnce(&mut Command) -> &mut Command,
) -> anyhow::Result<()> {
    let mut command = Command::new("runuser");
    command
        .args(["-u", "postgres", "--"])
        .arg(program)
        .current_dir("/tmp");
    args(&mut command);
    run_checked(&mut command)
}

fn run_checked(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn markdown(report: &PgbenchReport<'_>) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# pgbench: Basin and PostgreSQL over the Postgres wire\n"
    );
    let _ = writeln!(
        md,
        "Run {} on {}. `pgbench -n -M <mode> -f <script> -c <clients> -j min(clients, 2) -T {}` \
         against Basin (`basin standalone`) and {} (fsync off, on its own loopback port), each \
         configuration on both servers back to back; pgbench runs on the same machine. {}.\n",
        report.started_at,
        report.machine.summary(),
        report.seconds,
        report.postgres_version,
        report.pgbench_version
    );
    let _ = writeln!(md, "Scripts:\n");
    for (name, text) in SCRIPTS {
        let _ = writeln!(md, "- `{name}`: `{}`", text.trim().replace('\n', " ⏎ "));
    }
    let _ = writeln!(
        md,
        "\n| script | mode | clients | Basin tps | PostgreSQL tps | Basin ÷ PostgreSQL | Basin latency ms | PostgreSQL latency ms |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    let find = |m: &Measurement, server: &str| {
        report.measurements.iter().find(|o| {
            o.server == server && o.script == m.script && o.mode == m.mode && o.clients == m.clients
        })
    };
    let mut errors = Vec::new();
    for m in report.measurements.iter().filter(|m| m.server == "basin") {
        let pg = find(m, "postgres");
        let tps = |m: Option<&Measurement>| match m {
            Some(Measurement { error: Some(_), .. }) => "error".to_owned(),
            Some(Measurement { tps: Some(t), .. }) => format!("{t:.0}"),
            _ => "–".into(),
        };
        let latency = |m: Option<&Measurement>| {
            m.and_then(|m| m.latency_ms)
                .map_or_else(|| "–".into(), |l| format!("{l:.3}"))
        };
        let ratio = match (m.tps, pg.and_then(|p| p.tps)) {
            (Some(b), Some(p)) if p > 0.0 && m.error.is_none() => format!("{:.2}×", b / p),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            m.script,
            m.mode,
            m.clients,
            tps(Some(m)),
            tps(pg),
            ratio,
            latency(Some(m)),
            latency(pg)
        );
        for side in [Some(m), pg].into_iter().flatten() {
            if let Some(err) = &side.error {
                errors.push(format!(
                    "- {} {} {} clients on {}: {err}",
                    side.script, side.mode, side.clients, side.server
                ));
            }
        }
    }
    if !errors.is_empty() {
        let _ = writeln!(md, "\n## Errors\n\n{}", errors.join("\n"));
    }
    if !report.basin_memory.is_empty() {
        let _ = writeln!(
            md,
            "\n## Basin peak memory (VmHWM)\n\n| process | peak RSS |\n|---|---:|"
        );
        for process in &report.basin_memory {
            let _ = writeln!(
                md,
                "| {} | {:.0} MiB |",
                process.role,
                process.peak_rss_kib as f64 / 1024.0
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgbench_summary() {
        let out = "transaction type: select1.sql\nnumber of transactions actually processed: 279000\n\
                   number of failed transactions: 0 (0.000%)\nlatency average = 0.036 ms\n\
                   initial connection time = 2.1 ms\ntps = 27899.123456 (without initial connection time)\n";
        let mut m = pgbench_empty();
        parse_into(out, &mut m);
        assert_eq!(m.transactions, Some(279_000));
        assert_eq!(m.failed_transactions, Some(0));
        assert_eq!(m.latency_ms, Some(0.036));
        assert_eq!(m.tps, Some(27_899.123_456));
    }

    fn pgbench_empty() -> Measurement {
        Measurement {
            script: String::new(),
            mode: String::new(),
            clients: 1,
            server: String::new(),
            tps: None,
            latency_ms: None,
            transactions: None,
            failed_transactions: None,
            error: None,
        }
    }
}
