//! Table providers of external tables, reused across queries while their catalog entry is
//! unchanged.
//!
//! Building a `ListingTable` (`ListingTableFactory::create`: URL parsing, format options, the
//! table's schema, a planning session) cost about a tenth of a point lookup's time on the
//! coordinator (`perf` under pgbench, docs/benchmarks.md). The provider holds no file list: a
//! scan lists the location when it runs (through DataFusion's listing cache), so reusing it
//! never hides new files. Managed (Delta) tables are opened at their latest version per query
//! and views resolve the providers of what they read at creation, so neither is kept here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::datasource::TableProvider;

use crate::model::{Oid, RelationEntry};

/// Entries kept at most; the table is emptied when it would grow past this.
const MAX_ENTRIES: usize = 1024;

/// A provider and the entry it was built from.
type Cached = (RelationEntry, Arc<dyn TableProvider>);

#[derive(Default)]
pub(crate) struct ProviderCache {
    entries: Mutex<HashMap<Oid, Cached>>,
}

impl std::fmt::Debug for ProviderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCache").finish_non_exhaustive()
    }
}

impl ProviderCache {
    /// The provider built for exactly this `entry` (same oid, same definition), if any.
    pub(crate) fn get(&self, entry: &RelationEntry) -> Option<Arc<dyn TableProvider>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (cached, provider) = entries.get(&entry.oid)?;
        (cached == entry).then(|| Arc::clone(provider))
    }

    pub(crate) fn insert(&self, entry: &RelationEntry, provider: &Arc<dyn TableProvider>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&entry.oid) {
            entries.clear();
        }
        entries.insert(entry.oid, (entry.clone(), Arc::clone(provider)));
    }
}
