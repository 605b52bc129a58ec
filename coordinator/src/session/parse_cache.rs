//! Parsed statements kept per session by their text, so a statement sent again (a pool's
//! health check, a dashboard's refresh, pgbench) skips the parser.
//!
//! Parsing is a pure function of the text ([`crate::statements::parse`]: sqlparser, Basin's
//! rewrites, the statement printed back), yet it was a fifth of the coordinator's time for
//! `SELECT 1` at 8 clients (`perf`, docs/benchmarks.md). Only short texts that parsed without
//! error are kept.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::statements::ParsedStatement;

/// Texts longer than this are parsed every time.
const MAX_TEXT_BYTES: usize = 4096;
/// Texts kept per session; the table is emptied when it would grow past this.
const MAX_ENTRIES: usize = 128;

#[derive(Default)]
pub(crate) struct ParseCache {
    entries: Mutex<HashMap<String, Vec<ParsedStatement>>>,
}

impl ParseCache {
    /// The statements `sql` parsed into before, if kept.
    pub(crate) fn get(&self, sql: &str) -> Option<Vec<ParsedStatement>> {
        if sql.len() > MAX_TEXT_BYTES {
            return None;
        }
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
            .cloned()
    }

    pub(crate) fn insert(&self, sql: &str, parsed: &[ParsedStatement]) {
        if sql.len() > MAX_TEXT_BYTES {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(sql) {
            entries.clear();
        }
        entries.insert(sql.to_owned(), parsed.to_vec());
    }
}
