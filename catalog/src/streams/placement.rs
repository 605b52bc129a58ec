//! Where a streaming table's shards live and keeping remote ones open: shards are placed on the
//! executor nodes live when the table is created (round-robin); a keeper task per table opens
//! each remote shard on its node, and reopens it from the node's log whenever the node comes
//! back as a new executor incarnation or a call to it failed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::StreamTable;
use super::shard::{RemoteShard, ShardHosts};
use crate::store::Catalog;

/// How often the keeper looks for shards to (re)open.
const KEEPER_TICK: Duration = Duration::from_millis(200);
/// Wait before retrying an open that failed.
const REOPEN_BACKOFF: Duration = Duration::from_secs(2);
/// Longest a shard's open (reading its whole tail back) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);

impl Catalog {
    /// Lets streaming tables place shards on executors and reach them. Set once, by the
    /// coordinator, before tables are opened.
    pub fn set_shard_hosts(&self, hosts: Arc<dyn ShardHosts>) {
        let _ = self.streams().hosts.set(hosts);
    }

    /// The executor nodes a new streaming table would place its shards on now.
    pub(super) fn shard_nodes(&self) -> Vec<String> {
        self.streams()
            .hosts
            .get()
            .map(|hosts| hosts.nodes())
            .unwrap_or_default()
    }
}

/// Per shard, the node that holds it: round-robin over `nodes`, or all local without nodes.
pub(super) fn place(shards: u32, nodes: &[String]) -> Vec<String> {
    if nodes.is_empty() {
        return Vec::new();
    }
    (0..shards as usize)
        .map(|shard| nodes[shard % nodes.len()].clone())
        .collect()
}

/// Opens every remote shard of `table` whose executor is connected now; the others (and any
/// that fail) are left to the keeper.
pub(super) async fn open_remote(table: &StreamTable) {
    let Some(hosts) = table.hosts.clone() else {
        return;
    };
    for (index, shard) in table.shards.iter().enumerate() {
        let Some(remote) = shard.as_remote() else {
            continue;
        };
        if let Some(incarnation) = remote.needs_open(hosts.as_ref())
            && let Err(error) = reopen(table, index, remote, hosts.as_ref(), incarnation).await
        {
            remote.open_failed(error);
        }
    }
}

/// Starts the task that keeps `table`'s remote shards open; returns at once for a table whose
/// shards are all local.
pub(super) fn spawn_keeper(table: Weak<StreamTable>) {
    let has_remote = table
        .upgrade()
        .is_some_and(|t| t.shards.iter().any(|s| s.as_remote().is_some()));
    if !has_remote {
        return;
    }
    tokio::spawn(async move {
        let mut retry_at: HashMap<usize, Instant> = HashMap::new();
        loop {
            let Some(table) = table.upgrade() else { return };
            if table.dropped.load(Ordering::Acquire) {
                return;
            }
            if let Some(hosts) = table.hosts.clone() {
                for (index, shard) in table.shards.iter().enumerate() {
                    let Some(remote) = shard.as_remote() else {
                        continue;
                    };
                    if retry_at.get(&index).is_some_and(|at| Instant::now() < *at) {
                        continue;
                    }
                    let Some(incarnation) = remote.needs_open(hosts.as_ref()) else {
                        continue;
                    };
                    match reopen(&table, index, remote, hosts.as_ref(), incarnation).await {
                        Ok(()) => {
                            retry_at.remove(&index);
                        }
                        Err(error) => {
                            tracing::warn!(table = %table.name, shard = index, node = %remote.node, %error, "could not open shard on its executor; will retry");
                            remote.open_failed(error);
                            retry_at.insert(index, Instant::now() + REOPEN_BACKOFF);
                        }
                    }
                }
            }
            drop(table);
            tokio::time::sleep(KEEPER_TICK).await;
        }
    });
}

/// Loads shard `index`'s rows from its node, from the lake's offset on, with no append in
/// flight. Compaction may move the offset meanwhile; scans and compaction read the mirror from
/// the published offset on, so rows loaded below it are never seen twice.
async fn reopen(
    table: &StreamTable,
    index: usize,
    remote: &RemoteShard,
    hosts: &dyn ShardHosts,
    incarnation: String,
) -> Result<(), String> {
    let _gate = remote.gate.write().await;
    if table.dropped.load(Ordering::Acquire) {
        return Ok(());
    }
    let keep_from = table
        .published
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .compacted
        .get(index)
        .copied()
        .unwrap_or(0);
    let batches = tokio::time::timeout(
        OPEN_TIMEOUT,
        hosts.open(&remote.node, &remote.shard, &table.schema, keep_from),
    )
    .await
    .map_err(|_| format!("no answer within {}s", OPEN_TIMEOUT.as_secs()))?
    .map_err(|e| e.to_string())?;
    let rows: usize = batches.iter().map(|b| b.batch.num_rows()).sum();
    {
        // Under the publication lock: a compaction that published meanwhile has forgotten
        // rows this load would bring back.
        let published = table.published.read().unwrap_or_else(|e| e.into_inner());
        let now = published.compacted.get(index).copied().unwrap_or(0);
        remote.loaded_from(incarnation, batches, now)?;
    }
    tracing::info!(table = %table.name, shard = index, node = %remote.node, keep_from, rows, "opened shard on its executor");
    table.room.notify_waiters();
    Ok(())
}

/// Deletes a dropped table's shards on their nodes. A node that is down keeps its files (they
/// are named for the table's unique path and never read again).
pub(super) async fn drop_remote(table: &StreamTable) {
    let Some(hosts) = table.hosts.as_deref() else {
        return;
    };
    let nodes: BTreeSet<&str> = table
        .shards
        .iter()
        .filter_map(|s| s.as_remote())
        .map(|r| r.node.as_str())
        .collect();
    for node in nodes {
        if let Err(error) = hosts.drop_table(node, &table.spec.path).await {
            tracing::warn!(table = %table.name, node, %error, "could not delete the dropped table's shards on its executor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_round_robin_or_locally() {
        assert!(place(3, &[]).is_empty());
        let nodes = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(place(3, &nodes), vec!["a", "b", "a"]);
    }
}
