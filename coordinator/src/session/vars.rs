//! Per-connection settings (Postgres GUCs): what `SET`, `SHOW`, `RESET`, `current_setting()` and
//! `set_config()` read and write. One `SessionVars` per connection, never shared, so a `SET` on one
//! connection cannot leak into another.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The Postgres version Basin reports. Clients parse `server_version` and `version()`.
pub(crate) const SERVER_VERSION: &str = "16.6";
/// `server_version_num` matching [`SERVER_VERSION`].
pub(crate) const SERVER_VERSION_NUM: &str = "160006";

/// Settings every session starts with, as PostgreSQL reports them.
pub(crate) fn default_settings() -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = &[
        ("application_name", ""),
        // 0: half of the coordinator's memory pool (see query_memory.rs).
        ("basin.query_memory_limit", "0"),
        ("basin.read_consistency", "default"),
        // auto: Parquet row filters for lookups by key (see dist/row_filters.rs).
        ("basin.row_filters", "auto"),
        ("client_encoding", "UTF8"),
        ("client_min_messages", "notice"),
        ("datestyle", "ISO, MDY"),
        // SQLAlchemy's table reflection asks; Basin's tables are not heap tables, but it is the
        // only access method `pg_am` lists for tables.
        ("default_table_access_method", "heap"),
        ("default_transaction_isolation", "read committed"),
        ("default_transaction_read_only", "off"),
        ("extra_float_digits", "1"),
        ("in_hot_standby", "off"),
        ("integer_datetimes", "on"),
        ("intervalstyle", "postgres"),
        ("is_superuser", "on"),
        ("jit", "off"),
        ("lc_messages", "C.UTF-8"),
        ("lc_monetary", "C.UTF-8"),
        ("lc_numeric", "C.UTF-8"),
        ("lc_time", "C.UTF-8"),
        ("lock_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("max_connections", "100"),
        ("work_mem", "4MB"),
        ("maintenance_work_mem", "64MB"),
        ("shared_buffers", "128MB"),
        ("default_text_search_config", "pg_catalog.english"),
        ("block_size", "8192"),
        ("lc_collate", "C.UTF-8"),
        ("lc_ctype", "C.UTF-8"),
        ("max_identifier_length", "63"),
        ("search_path", "\"$user\", public"),
        ("server_encoding", "UTF8"),
        ("server_version", SERVER_VERSION),
        ("server_version_num", SERVER_VERSION_NUM),
        ("standard_conforming_strings", "on"),
        ("statement_timeout", "0"),
        ("timezone", "UTC"),
        ("transaction_isolation", "read committed"),
        ("transaction_read_only", "off"),
    ];
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Names reported to the client in ParameterStatus, with the capitalisation Postgres uses.
pub(crate) const REPORTED_SETTINGS: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
];

/// One connection's identity and settings.
#[derive(Debug)]
pub(crate) struct SessionVars {
    pub(crate) user: String,
    pub(crate) database: String,
    pub(crate) backend_pid: i32,
    settings: RwLock<BTreeMap<String, String>>,
    /// What `RESET` returns to: the built-in defaults plus settings the client sent at start-up.
    defaults: RwLock<BTreeMap<String, String>>,
    /// Bumped by every change of a setting: results cached under one generation (see
    /// [`super::constants`]) are stale under the next.
    generation: AtomicU64,
}

impl SessionVars {
    pub(crate) fn new(user: String, database: String, backend_pid: i32) -> Self {
        let mut settings = default_settings();
        settings.insert("session_authorization".to_owned(), user.clone());
        Self {
            user,
            database,
            backend_pid,
            defaults: RwLock::new(settings.clone()),
            settings: RwLock::new(settings),
            generation: AtomicU64::new(0),
        }
    }

    /// Changes with every `SET`, `RESET` and `set_config()`.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks a change the settings map does not show (a `SET datafusion.*`, which lives in the
    /// DataFusion session): results recorded under the old generation are stale.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Current value of a setting; names are case-insensitive as in Postgres.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let settings = self.settings.read().unwrap_or_else(|e| e.into_inner());
        let name = name.to_ascii_lowercase();
        let name = match name.as_str() {
            "time zone" | "time_zone" => "timezone",
            other => other,
        };
        settings.get(name).cloned()
    }

    pub(crate) fn set(&self, name: &str, value: String) {
        let mut settings = self.settings.write().unwrap_or_else(|e| e.into_inner());
        settings.insert(name.to_ascii_lowercase(), value);
        self.changed();
    }

    /// A setting the client chose at connection start-up: current value and `RESET` target.
    pub(crate) fn set_session_default(&self, name: &str, value: String) {
        let name = name.to_ascii_lowercase();
        self.defaults
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), value.clone());
        self.settings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, value);
        self.changed();
    }

    /// `RESET name`: back to the session default (unknown custom settings are removed).
    pub(crate) fn reset(&self, name: &str) {
        let name = name.to_ascii_lowercase();
        let default = self
            .defaults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned();
        let mut settings = self.settings.write().unwrap_or_else(|e| e.into_inner());
        match default {
            Some(default) => {
                settings.insert(name, default);
            }
            None => {
                settings.remove(&name);
            }
        }
        self.changed();
    }

    /// `RESET ALL` / `DISCARD ALL`.
    pub(crate) fn reset_all(&self) {
        let defaults = self
            .defaults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = defaults;
        self.changed();
    }

    /// All settings, for `SHOW ALL` and `pg_settings`.
    pub(crate) fn all(&self) -> BTreeMap<String, String> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The schemas in `search_path`, with `"$user"` dropped, as `current_schemas(false)` sees them.
    pub(crate) fn search_path(&self) -> Vec<String> {
        self.get("search_path")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_owned())
            .filter(|s| !s.is_empty() && s != "$user")
            .collect()
    }
}
