//! Single-node DataFusion as a peer engine, in the runner's own process: a `SessionContext`
//! with `target_partitions` = the thread count, the same Parquet files registered as tables,
//! DataFusion's default settings otherwise. Built on the workspace's `datafusion`, so it is the
//! very version Basin plans and executes with.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::compare::Rows;
use crate::duckdb_peer::PeerRun;

pub struct DataFusionPeer {
    context: SessionContext,
}

impl DataFusionPeer {
    /// A session with `threads` partitions and one table per `(name, parquet path)`.
    pub async fn new(threads: usize, tables: &[(String, PathBuf)]) -> anyhow::Result<Self> {
        let config = SessionConfig::new().with_target_partitions(threads.max(1));
        let context = SessionContext::new_with_config(config);
        for (name, path) in tables {
            context
                .register_parquet(
                    name.as_str(),
                    path.display().to_string(),
                    ParquetReadOptions::default(),
                )
                .await
                .with_context(|| format!("register {name} in DataFusion"))?;
        }
        Ok(Self { context })
    }

    /// Runs a statement, untimed.
    pub async fn exec(&self, sql: &str) -> anyhow::Result<()> {
        self.context.sql(sql).await?.collect().await?;
        Ok(())
    }

    /// Plans and runs a query to its last batch; `keep` returns its rows as text.
    pub async fn query(&self, sql: &str, keep: bool) -> anyhow::Result<PeerRun> {
        let started = Instant::now();
        let batches = self.context.sql(sql).await?.collect().await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let row_count = batches.iter().map(RecordBatch::num_rows).sum();
        let rows = if keep { Some(to_text(&batches)?) } else { None };
        Ok(PeerRun {
            ms,
            row_count,
            rows,
        })
    }
}

fn to_text(batches: &[RecordBatch]) -> anyhow::Result<Rows> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .context("format DataFusion results")?;
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(column, formatter)| {
                        (!column.is_null(row)).then(|| formatter.value(row).to_string())
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}
