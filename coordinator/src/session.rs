//! One client connection's session: its own DataFusion `SessionContext` (so `SET` never leaks
//! across connections), its settings, and the cancellation handle of the statement it runs.

pub(crate) mod constants;
pub(crate) mod parse_cache;
pub(crate) mod vars;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use basin_catalog::session::{register_catalog, session_builder, session_config};
use datafusion::prelude::SessionContext;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::server::ServerState;
use vars::SessionVars;

pub(crate) struct Session {
    pub(crate) vars: Arc<SessionVars>,
    pub(crate) ctx: SessionContext,
    pub(crate) server: Arc<ServerState>,
    secret: Vec<u8>,
    running: Mutex<CancellationToken>,
    /// The epoch this session's latest acknowledged write belongs to (0: none).
    last_write_epoch: std::sync::atomic::AtomicU64,
    /// Open SQL cursors (`DECLARE ... CURSOR`).
    pub(crate) cursors: crate::statements::Cursors,
    /// SQL prepared statements (`PREPARE name AS ...`).
    pub(crate) prepared: crate::statements::SqlPrepared,
    /// The DataFusion options the session started with, which `RESET` restores.
    pub(crate) initial_options: datafusion::config::ConfigOptions,
    /// Results of constant statements (`SELECT 1`), answered without planning again.
    pub(crate) constants: Arc<constants::ConstantResults>,
    /// Statements parsed before, by their text.
    pub(crate) parsed: parse_cache::ParseCache,
    /// The settings generation the DataFusion session was last checked against
    /// (`u64::MAX`: never).
    pub(crate) engine_generation: std::sync::atomic::AtomicU64,
    /// The `timezone` and `search_path` values last applied to the DataFusion session.
    pub(crate) engine_applied: Mutex<Option<(String, String)>>,
}

impl Session {
    pub(crate) fn try_new(
        server: Arc<ServerState>,
        user: String,
        database: String,
        backend_pid: i32,
        secret: Vec<u8>,
    ) -> Result<Arc<Self>> {
        if server
            .catalog
            .snapshot()
            .databases
            .iter()
            .all(|d| d.name != database)
        {
            return Err(Error::user(
                "3D000",
                format!("database \"{database}\" does not exist"),
            ));
        }
        let builder = session_builder(
            session_config(&database, server.config.target_partitions),
            Arc::clone(&server.runtime),
        );
        let state = server.dist.install(builder)?.build();
        register_catalog(&state, Arc::clone(&server.catalog), &database);
        let initial_options = state.config().options().as_ref().clone();
        let ctx = SessionContext::new_with_state(state);
        let vars = Arc::new(SessionVars::new(user, database, backend_pid));
        let catalog = Arc::clone(&server.catalog);
        crate::pg_catalog::install(
            &ctx,
            Arc::new(move || catalog.snapshot()),
            Arc::clone(&vars),
        )?;
        crate::system_tables::install(
            &ctx,
            Arc::clone(server.dist.membership()),
            Arc::clone(&server.queries),
            Arc::clone(&server.catalog),
            Arc::clone(&server.views),
        )?;
        let session = Arc::new(Self {
            vars,
            ctx,
            server: Arc::clone(&server),
            secret,
            running: Mutex::new(CancellationToken::new()),
            last_write_epoch: std::sync::atomic::AtomicU64::new(0),
            cursors: crate::statements::Cursors::default(),
            prepared: crate::statements::SqlPrepared::default(),
            initial_options,
            constants: Arc::default(),
            parsed: parse_cache::ParseCache::default(),
            engine_generation: std::sync::atomic::AtomicU64::new(u64::MAX),
            engine_applied: Mutex::new(None),
        });
        server.register_session(&session);
        Ok(session)
    }

    pub(crate) fn secret_matches(&self, secret: &[u8]) -> bool {
        self.secret == secret
    }

    /// A fresh token for the statement about to run; a cancel request fires it.
    pub(crate) fn begin_statement(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
        token
    }

    pub(crate) fn cancel_running(&self) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancel();
    }

    /// Records that a write of this session was acknowledged: strict reads wait for the
    /// epoch it belongs to.
    pub(crate) fn note_write(&self) {
        let epoch = self.server.catalog.epochs().open_epoch();
        self.last_write_epoch
            .fetch_max(epoch, std::sync::atomic::Ordering::SeqCst);
    }

    /// What a constant result computed now depends on: settings and catalog.
    pub(crate) fn constant_validity(&self) -> constants::Validity {
        constants::Validity {
            catalog: self.server.catalog.snapshot(),
            generation: self.vars.generation(),
        }
    }

    pub(crate) fn last_write_epoch(&self) -> u64 {
        self.last_write_epoch
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `basin.read_consistency = 'strict'`: reads of materialized views wait for this
    /// session's own writes.
    pub(crate) fn strict_reads(&self) -> bool {
        self.vars
            .get("basin.read_consistency")
            .is_some_and(|v| v.trim_matches('\'').eq_ignore_ascii_case("strict"))
    }

    /// `statement_timeout` in effect (`None` = no limit). Accepts Postgres units: ms (default),
    /// s, min, h.
    pub(crate) fn statement_timeout(&self) -> Option<Duration> {
        let text = self.vars.get("statement_timeout")?;
        parse_duration_setting(&text).filter(|d| !d.is_zero())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.vars.user)
            .field("database", &self.vars.database)
            .field("backend_pid", &self.vars.backend_pid)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.unregister_session(self.vars.backend_pid);
    }
}

/// Parses a Postgres time setting such as `500`, `'2s'`, `1min`.
pub(crate) fn parse_duration_setting(text: &str) -> Option<Duration> {
    let text = text.trim().trim_matches('\'').trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let millis = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => value,
        "s" => value * 1_000.0,
        "min" => value * 60_000.0,
        "h" => value * 3_600_000.0,
        "d" => value * 86_400_000.0,
        "us" => value / 1_000.0,
        _ => return None,
    };
    (millis.is_finite() && millis >= 0.0).then(|| Duration::from_micros((millis * 1000.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeout_units() {
        assert_eq!(
            parse_duration_setting("250"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration_setting("'2s'"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_duration_setting("1min"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_duration_setting("soon"), None);
    }
}
