//! Continuous queries: the manager that keeps materialized views current.
//!
//! Every epoch (`epoch_ms`, default 100 ms) it closes the open epoch, captures per streaming
//! table the offsets its shards durably reached, advances every view in creation order (so a
//! view over a view sees its input at the same epoch), and commits one snapshot of tables and
//! views together (`basin_catalog::views`). Each view is maintained incrementally when its
//! query allows ([`compile`]) and by full refresh otherwise. Every `checkpoint_interval_ms` the
//! state of all views is checkpointed at one epoch; after a crash views resume from it and
//! replay the tables' logs from its offsets.

mod aggregate;
mod changes;
mod compile;
pub(crate) mod feed;
mod freshness;
mod join_bounds;
mod panes;
mod view;
mod window_close;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use basin_catalog::Catalog;
use basin_catalog::model::{MaterializedViewSpec, Oid, RelationEntry, RelationKind};
use basin_catalog::session::{register_catalog, session_builder, session_config};
use basin_catalog::views::checkpoint::{self, Manifest};
use basin_catalog::views::{Committed, ViewContents};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

pub(crate) use self::changes::Changes;
use self::compile::{Compiled, compile};
pub(crate) use self::compile::{Input, Mode};
pub(crate) use self::freshness::Percentiles;
use self::view::{EpochInputs, View};

/// A view's state as `basin.materialized_views` and `EXPLAIN MATERIALIZED VIEW` show it.
#[derive(Debug, Clone)]
pub(crate) struct ViewStatus {
    pub(crate) name: String,
    pub(crate) mode: Mode,
    /// `building`, `running` or `failed`.
    pub(crate) state: &'static str,
    pub(crate) error: Option<String>,
    pub(crate) rows: u64,
    pub(crate) groups: Option<u64>,
    pub(crate) state_bytes: u64,
    pub(crate) input_rows: u64,
    pub(crate) epoch: u64,
    pub(crate) freshness: Option<Percentiles>,
    pub(crate) checkpoint_epoch: Option<u64>,
    /// Rows only ever added (views over it can be maintained from its new rows).
    pub(crate) append_only: bool,
    /// `EMIT ON WINDOW CLOSE` views: the watermark (microseconds) and the late rows dropped.
    pub(crate) watermark: Option<i64>,
    pub(crate) late_rows: u64,
}

/// Options `CREATE MATERIALIZED VIEW ... WITH (...)` accepts.
pub(crate) const OPTIONS: &[&str] = &["refresh", "refresh_interval_ms", "emit"];

#[derive(Debug)]
pub(crate) struct Manager {
    catalog: Arc<Catalog>,
    runtime: Arc<RuntimeEnv>,
    epoch: Duration,
    checkpoint_every: Duration,
    status: RwLock<BTreeMap<Oid, ViewStatus>>,
    wake: tokio::sync::Notify,
    last_checkpoint: RwLock<Option<u64>>,
    /// Change feeds (`SUBSCRIBE`, the HTTP event stream) per view.
    feeds: RwLock<HashMap<Oid, tokio::sync::broadcast::Sender<Arc<Changes>>>>,
}

/// Change batches a feed buffers for a slow subscriber before it is cut off.
const FEED_CAPACITY: usize = 4096;

impl Manager {
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        runtime: Arc<RuntimeEnv>,
        epoch_ms: u64,
        checkpoint_ms: u64,
    ) -> Self {
        Self {
            catalog,
            runtime,
            epoch: Duration::from_millis(epoch_ms.max(1)),
            checkpoint_every: Duration::from_millis(checkpoint_ms.max(1)),
            status: RwLock::new(BTreeMap::new()),
            wake: tokio::sync::Notify::new(),
            last_checkpoint: RwLock::new(None),
            feeds: RwLock::new(HashMap::new()),
        }
    }

    /// Subscribes to view `oid`'s changes and returns them with the committed snapshot they
    /// follow: every change batch with a later epoch than the snapshot's is delivered.
    pub(crate) async fn subscribe(
        &self,
        oid: Oid,
    ) -> (
        tokio::sync::broadcast::Receiver<Arc<Changes>>,
        Arc<Committed>,
    ) {
        let receiver = self
            .feeds
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(oid)
            .or_insert_with(|| tokio::sync::broadcast::channel(FEED_CAPACITY).0)
            .subscribe();
        // Epochs closed from now on see the subscriber and compute changes; the snapshot
        // must cover every epoch closed before.
        let epochs = self.catalog.epochs();
        let open = epochs.open_epoch();
        epochs
            .wait_committed(open.saturating_sub(1), self.epoch * 50)
            .await;
        (receiver, epochs.committed())
    }

    fn wants_changes(&self, oid: Oid) -> bool {
        self.feeds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&oid)
            .is_some_and(|feed| feed.receiver_count() > 0)
    }

    pub(crate) fn status(&self) -> BTreeMap<Oid, ViewStatus> {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn epoch_length(&self) -> Duration {
        self.epoch
    }

    /// Sessions for planning a view: one with the whole optimizer, one without physical
    /// optimizer rules (and without the rewrite of a single DISTINCT aggregate into two
    /// aggregations), so partial and final aggregation stay separate steps.
    fn sessions(
        &self,
        database: &str,
        default_schema: Option<&str>,
    ) -> (SessionState, SessionState) {
        let mut config = session_config(database, 0);
        if let Some(schema) = default_schema {
            config.options_mut().catalog.default_schema = schema.to_owned();
        }
        // Partial aggregation must aggregate: its output is merged into stored states.
        config
            .options_mut()
            .execution
            .skip_partial_aggregation_probe_rows_threshold = usize::MAX;
        let planning = basin_catalog::session::new_session_state(
            Arc::clone(&self.catalog),
            database,
            config.clone(),
            Arc::clone(&self.runtime),
        );
        let rules = datafusion::optimizer::Optimizer::new()
            .rules
            .into_iter()
            .filter(|rule| rule.name() != "single_distinct_aggregation_to_group_by")
            .collect();
        let raw = session_builder(config.with_target_partitions(1), Arc::clone(&self.runtime))
            .with_optimizer_rules(rules)
            .with_physical_optimizer_rules(Vec::new())
            .build();
        register_catalog(&raw, Arc::clone(&self.catalog), database);
        (planning, raw)
    }

    /// Plans and classifies a view's query (views inlined).
    pub(crate) async fn compile(
        &self,
        database: &str,
        default_schema: Option<&str>,
        sql: &str,
    ) -> DfResult<(Compiled, SchemaRef)> {
        let (planning, _) = self.sessions(database, default_schema);
        let plan = logical_plan(&planning, sql).await?;
        let schema = Arc::new(Schema::new(
            plan.schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect::<Vec<_>>(),
        ));
        let status = self.status();
        let append_only = |oid: Oid| status.get(&oid).is_some_and(|s| s.append_only);
        Ok((compile(plan, &append_only), schema))
    }

    /// Refuses `EMIT ON WINDOW CLOSE` on a view that cannot close windows.
    pub(crate) fn check_window_close(
        &self,
        compiled: &Compiled,
        database: &str,
        default_schema: Option<&str>,
    ) -> Result<(), String> {
        let (planning, _) = self.sessions(database, default_schema);
        window_close_for(compiled, &planning).map(|_| ())
    }

    /// Waits until view `oid` has been built (or failed building); `Err` carries why it failed.
    pub(crate) async fn wait_built(&self, oid: Oid, timeout: Duration) -> Result<(), String> {
        self.wake.notify_one();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status().get(&oid) {
                match status.state {
                    "running" => return Ok(()),
                    "failed" => return Err(status.error.clone().unwrap_or_default()),
                    _ => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("not built within {}s", timeout.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The epoch loop; runs until `shutdown`.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut views: BTreeMap<Oid, View> = BTreeMap::new();
        let location = self.catalog.view_checkpoints();
        let read = match &location {
            Ok(location) => checkpoint::read_manifest(location).await,
            Err(error) => Err(basin_catalog::Error::Unsupported(error.to_string())),
        };
        let mut manifest = match read {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::error!(%error, "cannot read the materialized-view checkpoint; views are rebuilt");
                None
            }
        };
        let mut broken: HashMap<Oid, String> = HashMap::new();
        // Whether the last checkpoint holds view state (and so log offsets compaction keeps).
        let mut holding = manifest
            .as_ref()
            .is_some_and(|m| !m.views.is_empty() || !m.tables.is_empty());
        let mut last_capture = Instant::now();
        // The checkpoint being written, and whether one is due that could not start because
        // the previous one was still being written.
        let mut writing: Option<tokio::task::JoinHandle<()>> = None;
        let mut owed = false;
        let mut ticker = tokio::time::interval(self.epoch);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    // A graceful stop resumes from exactly here. A write in flight that does
                    // not finish in time (a stalled object store) is left: the previous
                    // checkpoint stays the resume point and the logs keep its rows.
                    if let Some(writing) = writing.take() {
                        match tokio::time::timeout(SHUTDOWN_WRITE_WAIT, writing).await {
                            Ok(result) => report_panic(result),
                            Err(_elapsed) => {
                                tracing::error!(
                                    "materialized-view checkpoint still writing at shutdown; \
                                     resuming from the previous one"
                                );
                                return;
                            }
                        }
                    }
                    let (epoch, data) = self.capture(&views);
                    // Not over the checkpoint just written at the same epoch: rewriting its
                    // files in place could leave the durable manifest pointing at torn ones.
                    let written = *self.last_checkpoint.read().unwrap_or_else(|e| e.into_inner());
                    if !views.is_empty() && written != Some(epoch) {
                        self.persist(epoch, data).await;
                    }
                    return;
                }
                _ = ticker.tick() => {}
                () = self.wake.notified() => {}
            }
            let restored = self.sync(&mut views, manifest.take(), &mut broken).await;
            let rebuilt = self.tick(&mut views, restored).await;
            self.publish_status(&views, &broken);
            self.catalog.epochs().announce();
            let pressure = views
                .values()
                .flat_map(View::stream_inputs)
                .any(|t| t.log_memory_share() > 0.25);
            // A view just built is checkpointed at once, so a restart does not build it again.
            // Once the last view is dropped, one empty checkpoint releases the log offsets and
            // state files the previous one kept.
            let due = if views.is_empty() {
                holding && broken.is_empty()
            } else {
                rebuilt
                    || last_capture.elapsed() >= self.checkpoint_every
                    || pressure && last_capture.elapsed() >= Duration::from_secs(1)
            };
            owed |= due;
            // The state is taken here, at the committed epoch; encoding and writing it (all of
            // a view's rows, fsynced) run beside the next epochs, which would otherwise wait
            // for it. One checkpoint is written at a time; the previous one stays the one to
            // resume from (and keeps its log offsets) until the next is durable.
            if owed
                && writing
                    .as_ref()
                    .is_none_or(tokio::task::JoinHandle::is_finished)
            {
                if let Some(Some(result)) = writing.take().map(FutureExt::now_or_never) {
                    report_panic(result);
                }
                owed = false;
                holding = !views.is_empty();
                let (epoch, data) = self.capture(&views);
                let manager = Arc::clone(&self);
                writing = Some(tokio::spawn(async move {
                    manager.persist(epoch, data).await;
                }));
                last_capture = Instant::now();
            }
        }
    }

    /// Starts views the catalog gained (resuming from `manifest` at start-up), forgets dropped
    /// ones. Returns the rows of views resumed from the checkpoint.
    async fn sync(
        &self,
        views: &mut BTreeMap<Oid, View>,
        manifest: Option<Manifest>,
        broken: &mut HashMap<Oid, String>,
    ) -> HashMap<Oid, ViewContents> {
        let snapshot = self.catalog.snapshot();
        let entries: BTreeMap<Oid, (&RelationEntry, &MaterializedViewSpec)> = snapshot
            .relations
            .iter()
            .filter_map(|entry| match &entry.kind {
                RelationKind::MaterializedView(spec) => Some((entry.oid, (entry, spec))),
                _ => None,
            })
            .collect();
        views.retain(|oid, view| {
            entries
                .get(oid)
                .is_some_and(|(_, spec)| spec.sql == view.spec.sql)
        });
        broken.retain(|oid, _| entries.contains_key(oid));
        // A dropped view's subscribers see their feed end.
        self.feeds
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|oid, _| {
                views.contains_key(oid) || !snapshot.relations.iter().all(|r| r.oid != *oid)
            });
        let mut restored = HashMap::new();
        for (oid, (entry, spec)) in entries {
            if views.contains_key(&oid) || broken.contains_key(&oid) {
                continue;
            }
            let mut view = match self.start(entry, spec, views).await {
                Ok(view) => view,
                Err(error) => {
                    tracing::error!(view = %entry.name, %error, "cannot start materialized view");
                    broken.insert(oid, error.to_string());
                    continue;
                }
            };
            if let Some(manifest) = &manifest
                && let Some(state) = manifest.views.get(&oid).filter(|s| s.sql == spec.sql)
            {
                let saved = self.read_saved(manifest, state).await;
                let resumed = match saved {
                    Ok((batches, closed)) => view
                        .restore(batches, state, closed)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                match resumed {
                    Ok(contents) => {
                        tracing::info!(view = %view.name, epoch = manifest.epoch, "resumed materialized view from its checkpoint");
                        restored.insert(oid, contents);
                    }
                    Err(error) => {
                        tracing::warn!(view = %view.name, %error, "cannot resume materialized view; rebuilding it");
                        view = match self.start(entry, spec, views).await {
                            Ok(view) => view,
                            Err(error) => {
                                broken.insert(oid, error.to_string());
                                continue;
                            }
                        };
                    }
                }
            }
            views.insert(oid, view);
        }
        restored
    }

    /// Plans and classifies a view; `started` are the views started before it (the ones it may
    /// read).
    async fn start(
        &self,
        entry: &RelationEntry,
        spec: &MaterializedViewSpec,
        started: &BTreeMap<Oid, View>,
    ) -> DfResult<View> {
        let (planning, raw) = self.sessions(&entry.database, spec.default_schema.as_deref());
        let plan = logical_plan(&planning, &spec.sql).await?;
        let append_only = |oid: Oid| started.get(&oid).is_some_and(View::append_only);
        let mut compiled = compile(plan, &append_only);
        if spec
            .options
            .get("refresh")
            .is_some_and(|r| r.eq_ignore_ascii_case("full"))
        {
            compiled.mode = Mode::Full {
                reason: "refresh = 'full' was asked for in WITH (...)".to_owned(),
            };
        }
        let window_close = if spec
            .options
            .get("emit")
            .is_some_and(|e| e.eq_ignore_ascii_case("on_window_close"))
        {
            Some(window_close_for(&compiled, &planning).map_err(DataFusionError::Plan)?)
        } else {
            None
        };
        let refresh_every = spec
            .options
            .get("refresh_interval_ms")
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        let mut view = View::new(entry, spec.clone(), compiled, planning, raw, refresh_every);
        view.window_close = window_close;
        Ok(view)
    }

    /// One epoch: capture, advance every view, commit. True if a view was (re)built.
    async fn tick(
        &self,
        views: &mut BTreeMap<Oid, View>,
        restored: HashMap<Oid, ViewContents>,
    ) -> bool {
        let epochs = self.catalog.epochs();
        let last = epochs.committed();
        let tables = self.catalog.open_stream_tables();
        let mut first_acks = HashMap::new();
        for table in &tables {
            if let Some(at) = table.take_first_ack() {
                first_acks.insert(table.oid(), at);
            }
        }
        let epoch = epochs.close_open_epoch();
        let mut working = Committed {
            epoch,
            tables: HashMap::new(),
            views: last.views.clone(),
            unreadable: HashSet::new(),
            behind: HashSet::new(),
        };
        for table in &tables {
            let previous = last.tables.get(&table.oid()).map(|o| &o[..]);
            let (offsets, readable) = table.capture(previous);
            working.tables.insert(table.oid(), offsets);
            if !readable {
                working.unreadable.insert(table.oid());
            }
        }
        working.views.retain(|oid, _| views.contains_key(oid));
        working.views.extend(restored);
        let mut appended = HashMap::new();
        let mut rebuilt = HashSet::new();
        let mut changed = HashSet::new();
        let mut feeds = Vec::new();
        // Per view, when the oldest row it took in this epoch was acknowledged.
        let mut oldest: HashMap<Oid, Instant> = HashMap::new();
        let mut advanced = Vec::new();
        for view in views.values_mut() {
            // Views are kept in OID order, so a view's input views come before it.
            if view
                .stream_inputs()
                .any(|t| working.unreadable.contains(&t.oid()))
                || view
                    .view_inputs()
                    .any(|input| working.behind.contains(&input))
            {
                working.behind.insert(view.oid);
            }
            if view.failed.is_some() {
                continue;
            }
            // A view over a view waits until that one is built.
            if view
                .view_inputs()
                .any(|input| !working.views.contains_key(&input))
            {
                continue;
            }
            let from_tables = view
                .stream_inputs()
                .filter_map(|t| first_acks.get(&t.oid()).copied());
            let from_views = view.view_inputs().filter_map(|v| oldest.get(&v).copied());
            if let Some(at) = from_tables.chain(from_views).min() {
                view.pending_since = Some(view.pending_since.map_or(at, |p| p.min(at)));
            }
            view.want_changes = self.wants_changes(view.oid);
            let inputs = EpochInputs {
                working: &working,
                appended: &appended,
                rebuilt: &rebuilt,
                changed: &changed,
                previous: &last,
            };
            match view.advance(&inputs).await {
                Ok(Some(advance)) => {
                    changed.insert(view.oid);
                    if let Some((deletes, inserts)) = advance.changes {
                        feeds.push((
                            view.oid,
                            Changes {
                                epoch,
                                deletes,
                                inserts,
                            },
                        ));
                    }
                    working.views.insert(view.oid, advance.contents);
                    if !advance.appended.is_empty() {
                        appended.insert(view.oid, advance.appended);
                    }
                    if advance.rebuilt {
                        rebuilt.insert(view.oid);
                    }
                    if let Some(at) = view.pending_since.take() {
                        oldest.insert(view.oid, at);
                    }
                    advanced.push(view.oid);
                }
                Ok(None) => {
                    // A window-close view that closed no window shows all it can: its rows
                    // wait for the watermark, not for Basin. Its freshness counts from the
                    // rows of the epoch that closes the next window.
                    if view.window_close.is_some() {
                        view.pending_since = None;
                    }
                }
                Err(error) => {
                    tracing::error!(view = %view.name, %error, "materialized view failed; it keeps its last rows");
                    view.failed = Some(error.to_string());
                }
            }
        }
        epochs.commit(Arc::new(working));
        {
            let senders = self.feeds.read().unwrap_or_else(|e| e.into_inner());
            for (oid, changes) in feeds {
                if let Some(sender) = senders.get(&oid)
                    && !changes.is_empty()
                {
                    let _ = sender.send(Arc::new(changes));
                }
            }
        }
        let now = Instant::now();
        for oid in advanced {
            if let (Some(view), Some(at)) = (views.get_mut(&oid), oldest.get(&oid)) {
                view.freshness.record(now, now.duration_since(*at));
            }
        }
        !rebuilt.is_empty()
    }

    /// Every view's state at the committed epoch, for [`Self::persist`].
    fn capture(&self, views: &BTreeMap<Oid, View>) -> (u64, Vec<checkpoint::ViewStateData>) {
        let committed = self.catalog.epochs().committed();
        let mut data = Vec::new();
        for view in views.values() {
            match view.checkpoint_state() {
                Ok(Some(state)) => data.push(state),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(view = %view.name, %error, "cannot checkpoint materialized view")
                }
            }
        }
        (committed.epoch, data)
    }

    /// Writes a checkpoint of `data` taken at `epoch`; once it is durable, the logs may drop
    /// what only the previous checkpoint needed.
    async fn persist(&self, epoch: u64, data: Vec<checkpoint::ViewStateData>) {
        let written = match self.catalog.view_checkpoints() {
            Ok(location) => checkpoint::write(&location, epoch, data).await,
            Err(error) => Err(error),
        };
        match written {
            Ok(manifest) => {
                self.catalog
                    .epochs()
                    .set_holds(manifest.tables.into_iter().collect());
                *self
                    .last_checkpoint
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Some(epoch);
            }
            Err(error) => tracing::error!(%error, "materialized-view checkpoint failed"),
        }
    }

    /// A view's state and closed windows from `manifest`.
    async fn read_saved(
        &self,
        manifest: &Manifest,
        state: &checkpoint::ViewState,
    ) -> basin_catalog::Result<(Vec<RecordBatch>, Option<Vec<RecordBatch>>)> {
        let location = self.catalog.view_checkpoints()?;
        let batches = checkpoint::read_state(&location, manifest, state).await?;
        let closed = checkpoint::read_closed(&location, manifest, state).await?;
        Ok((batches, closed))
    }

    fn publish_status(&self, views: &BTreeMap<Oid, View>, broken: &HashMap<Oid, String>) {
        let committed = self.catalog.epochs().committed();
        let checkpoint_epoch = *self
            .last_checkpoint
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let snapshot = self.catalog.snapshot();
        let mut status = BTreeMap::new();
        for view in views.values() {
            let built = committed.views.contains_key(&view.oid);
            status.insert(
                view.oid,
                ViewStatus {
                    name: view.name.clone(),
                    mode: view.mode().clone(),
                    state: match (&view.failed, built) {
                        (Some(_), _) => "failed",
                        (None, true) => "running",
                        (None, false) => "building",
                    },
                    error: view.failed.clone(),
                    rows: view.rows as u64,
                    groups: view.groups().map(|g| g as u64),
                    state_bytes: view.state_bytes() as u64,
                    input_rows: view.input_rows,
                    epoch: committed.epoch,
                    freshness: view.freshness.percentiles(),
                    checkpoint_epoch,
                    append_only: view.append_only(),
                    watermark: view.window_close.as_ref().and_then(|w| w.watermark),
                    late_rows: view.window_close.as_ref().map_or(0, |w| w.late_rows),
                },
            );
        }
        for (oid, error) in broken {
            let name = snapshot
                .relations
                .iter()
                .find(|r| r.oid == *oid)
                .map(|r| format!("{}.{}", r.schema, r.name))
                .unwrap_or_default();
            status.insert(
                *oid,
                ViewStatus {
                    name,
                    mode: Mode::Full {
                        reason: "could not be planned".to_owned(),
                    },
                    state: "failed",
                    error: Some(error.clone()),
                    rows: 0,
                    groups: None,
                    state_bytes: 0,
                    input_rows: 0,
                    epoch: committed.epoch,
                    freshness: None,
                    checkpoint_epoch,
                    append_only: false,
                    watermark: None,
                    late_rows: 0,
                },
            );
        }
        *self.status.write().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

/// Checks that an `EMIT ON WINDOW CLOSE` view can close windows: an incremental aggregate
/// grouped by `window_end` over one streaming table with a watermark.
fn window_close_for(
    compiled: &Compiled,
    state: &SessionState,
) -> Result<window_close::WindowClose, String> {
    if compiled.mode != Mode::Aggregate {
        return Err(format!(
            "EMIT ON WINDOW CLOSE needs an incrementally maintained GROUP BY over TUMBLE or HOP \
             windows; this view is maintained by full refresh ({})",
            compiled.mode.describe()
        ));
    }
    let groups = compile::group_names(&compiled.plan);
    if !groups
        .iter()
        .any(|g| g == "window_end" || g.ends_with(".window_end"))
    {
        return Err(
            "EMIT ON WINDOW CLOSE needs window_end among the GROUP BY columns (GROUP BY \
             window_start, window_end, ...)"
                .to_owned(),
        );
    }
    let streams: Vec<_> = compiled
        .inputs
        .values()
        .filter_map(|i| match i {
            Input::Stream(table) => Some(table),
            Input::View(_) => None,
        })
        .collect();
    let [table] = streams.as_slice() else {
        return Err("EMIT ON WINDOW CLOSE needs exactly one streaming table as input".to_owned());
    };
    window_close::WindowClose::try_new(table, state)
}

/// The view's query as a logical plan with views inlined (the analyzer's work).
async fn logical_plan(state: &SessionState, sql: &str) -> DfResult<LogicalPlan> {
    let plan = state.create_logical_plan(sql).await?;
    state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})
}

/// How long a graceful stop waits for the checkpoint being written.
const SHUTDOWN_WRITE_WAIT: Duration = Duration::from_secs(30);

/// Logs a checkpoint write that panicked (its error is otherwise logged by `persist`).
fn report_panic(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        tracing::error!(%error, "materialized-view checkpoint task failed");
    }
}
