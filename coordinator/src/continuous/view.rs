//! One maintained materialized view: its compiled query, where it has read its inputs up to,
//! its state, and how it moves to the next epoch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use basin_catalog::model::{MaterializedViewSpec, Oid, RelationEntry};
use basin_catalog::views::checkpoint::ViewStateData;
use basin_catalog::views::{Committed, ReadPin, ViewContents};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, collect};

use super::aggregate::{AggregatePlan, GroupStore};
use super::compile::{Compiled, Input, Mode, substitute};
use super::freshness::Freshness;
use super::window_close::{WindowClose, window_end_column};

/// What one epoch hands every view.
pub(super) struct EpochInputs<'a> {
    pub(super) working: &'a Committed,
    /// Rows append-only views added this epoch (their downstream views' new input).
    pub(super) appended: &'a HashMap<Oid, Vec<RecordBatch>>,
    /// Views rebuilt from scratch this epoch: views reading them rebuild too.
    pub(super) rebuilt: &'a std::collections::HashSet<Oid>,
    /// Views whose rows changed this epoch.
    pub(super) changed: &'a std::collections::HashSet<Oid>,
    /// The epoch before (views as they were, for joins of two changing inputs).
    pub(super) previous: &'a Committed,
}

/// What advancing a view produced.
pub(super) struct Advance {
    pub(super) contents: ViewContents,
    /// Rows added (append-only views), for views reading this one.
    pub(super) appended: Vec<RecordBatch>,
    pub(super) rebuilt: bool,
    /// Rows deleted and inserted, when a change feed listens.
    pub(super) changes: Option<(Vec<RecordBatch>, Vec<RecordBatch>)>,
}

enum State {
    Linear(Vec<RecordBatch>),
    Aggregate(GroupStore),
    Full,
}

pub(super) struct View {
    pub(super) oid: Oid,
    pub(super) name: String,
    pub(super) spec: MaterializedViewSpec,
    pub(super) schema: SchemaRef,
    pub(super) compiled: Compiled,
    /// Planning with the full optimizer (linear, full refresh, backfills).
    planning: SessionState,
    /// Planning without physical optimizer rules, so Partial and Final aggregation stay apart.
    raw: SessionState,
    state: State,
    /// Per streaming input, the offsets read up to.
    cursors: HashMap<Oid, Arc<[u64]>>,
    needs_backfill: bool,
    last_refresh: Option<Instant>,
    pub(super) refresh_every: std::time::Duration,
    pub(super) input_rows: u64,
    pub(super) freshness: Freshness,
    pub(super) failed: Option<String>,
    pub(super) rows: usize,
    /// When the oldest input row not yet reflected in the view was acknowledged.
    pub(super) pending_since: Option<Instant>,
    /// Whether a change feed listens (changes are computed only then).
    pub(super) want_changes: bool,
    /// Set for `EMIT ON WINDOW CLOSE` views.
    pub(super) window_close: Option<WindowClose>,
}

impl View {
    pub(super) fn new(
        entry: &RelationEntry,
        spec: MaterializedViewSpec,
        compiled: Compiled,
        planning: SessionState,
        raw: SessionState,
        refresh_every: std::time::Duration,
    ) -> Self {
        let state = match compiled.mode {
            Mode::Linear => State::Linear(Vec::new()),
            Mode::Aggregate => State::Aggregate(GroupStore::default()),
            Mode::Full { .. } => State::Full,
        };
        Self {
            oid: entry.oid,
            name: format!("{}.{}", entry.schema, entry.name),
            spec,
            schema: entry.arrow_schema(),
            compiled,
            planning,
            raw,
            state,
            cursors: HashMap::new(),
            needs_backfill: true,
            last_refresh: None,
            refresh_every,
            input_rows: 0,
            freshness: Freshness::default(),
            failed: None,
            rows: 0,
            pending_since: None,
            want_changes: false,
            window_close: None,
        }
    }

    pub(super) fn mode(&self) -> &Mode {
        &self.compiled.mode
    }

    /// Whether rows are only ever added: linear views, and window-close views (a closed
    /// window's row never changes).
    pub(super) fn append_only(&self) -> bool {
        self.compiled.mode == Mode::Linear || self.window_close.is_some()
    }

    pub(super) fn stream_inputs(
        &self,
    ) -> impl Iterator<Item = &Arc<basin_catalog::streams::StreamTable>> {
        self.compiled.inputs.values().filter_map(|i| match i {
            Input::Stream(table) => Some(table),
            Input::View(_) => None,
        })
    }

    pub(super) fn view_inputs(&self) -> impl Iterator<Item = Oid> + '_ {
        self.compiled.inputs.values().filter_map(|i| match i {
            Input::View(oid) => Some(*oid),
            Input::Stream(_) => None,
        })
    }

    /// Per streaming input, the offsets the state covers.
    pub(super) fn cursors(&self) -> BTreeMap<Oid, Vec<u64>> {
        self.cursors
            .iter()
            .map(|(oid, offsets)| (*oid, offsets.to_vec()))
            .collect()
    }

    pub(super) fn state_bytes(&self) -> usize {
        match &self.state {
            State::Linear(batches) => batches.iter().map(RecordBatch::get_array_memory_size).sum(),
            State::Aggregate(store) => store.memory_bytes(),
            State::Full => 0,
        }
    }

    pub(super) fn groups(&self) -> Option<usize> {
        match &self.state {
            State::Aggregate(store) => Some(store.groups()),
            _ => None,
        }
    }

    /// Brings the view to the `inputs.working` epoch. `None`: nothing changed.
    pub(super) async fn advance(&mut self, inputs: &EpochInputs<'_>) -> DfResult<Option<Advance>> {
        let rebuild =
            self.needs_backfill || self.view_inputs().any(|oid| inputs.rebuilt.contains(&oid));
        match self.compiled.mode {
            Mode::Full { .. } => self.refresh(inputs).await,
            _ if rebuild => self.backfill(inputs).await.map(Some),
            _ => self.apply_delta(inputs).await,
        }
    }

    fn pinned(state: &SessionState, working: &Committed) -> SessionState {
        let mut state = state.clone();
        state
            .config_mut()
            .set_extension(Arc::new(ReadPin(Arc::new(working.clone()))));
        state
    }

    fn move_cursors(&mut self, working: &Committed) {
        for table in self.compiled.inputs.values() {
            if let Input::Stream(table) = table
                && let Some(offsets) = working.tables.get(&table.oid())
            {
                let merged: Arc<[u64]> = match self.cursors.get(&table.oid()) {
                    Some(old) => old
                        .iter()
                        .zip(offsets.iter())
                        .map(|(a, b)| (*a).max(*b))
                        .collect(),
                    None => Arc::clone(offsets),
                };
                self.cursors.insert(table.oid(), merged);
            }
        }
    }

    /// Rebuilds the view from the epoch's snapshot of its inputs.
    async fn backfill(&mut self, inputs: &EpochInputs<'_>) -> DfResult<Advance> {
        let started = Instant::now();
        let output = match &mut self.state {
            State::Linear(batches) => {
                let state = Self::pinned(&self.planning, inputs.working);
                let rows = run(&state, &self.compiled.plan).await?;
                *batches = rows.clone();
                rows
            }
            State::Aggregate(store) => {
                *store = GroupStore::default();
                let state = Self::pinned(&self.raw, inputs.working);
                let plan =
                    aggregate_plan(&state, &self.compiled.plan, self.compiled.panes.as_ref())
                        .await?;
                let partial = plan.partial_states(state.task_ctx()).await?;
                store.apply(&plan, partial, state.task_ctx(), false).await?;
                match &mut self.window_close {
                    Some(window_close) => {
                        // The watermark the table's rows so far allow.
                        let pinned = Self::pinned(&self.planning, inputs.working);
                        let sql = format!(
                            "SELECT max({}) FROM {}",
                            window_close.watermark_sql, window_close.table_name
                        );
                        let max = pinned.create_logical_plan(&sql).await?;
                        let rows = run(&pinned, &max).await?;
                        window_close.watermark = None;
                        window_close.late_rows = 0;
                        window_close.closed.clear();
                        if let Some(batch) = rows.first() {
                            window_close.advance_to(batch.column(0).as_ref())?;
                        }
                        close_windows(store, &plan, window_close, state.task_ctx()).await?;
                        window_close.closed.clone()
                    }
                    None => store.contents(&plan, state.task_ctx()).await?,
                }
            }
            State::Full => Vec::new(),
        };
        self.needs_backfill = false;
        self.move_cursors(inputs.working);
        tracing::info!(view = %self.name, elapsed_ms = started.elapsed().as_millis() as u64, "built materialized view");
        let contents = self.contents_of(self.current_rows(output.clone()))?;
        let changes = self.diff_from(inputs, &contents)?;
        Ok(Advance {
            contents,
            appended: output,
            rebuilt: true,
            changes,
        })
    }

    /// Changes from the view's rows in the last epoch to `contents`, when a feed listens.
    fn diff_from(
        &self,
        inputs: &EpochInputs<'_>,
        contents: &ViewContents,
    ) -> DfResult<Option<(Vec<RecordBatch>, Vec<RecordBatch>)>> {
        if !self.want_changes {
            return Ok(None);
        }
        let old = inputs
            .working
            .views
            .get(&self.oid)
            .map(|c| c.batches.as_ref().clone())
            .unwrap_or_default();
        super::changes::diff(&self.schema, &old, &contents.batches).map(Some)
    }

    /// `batches` with the catalog's column names.
    fn renamed(&self, batches: Vec<RecordBatch>) -> DfResult<Vec<RecordBatch>> {
        Ok(batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| RecordBatch::try_new(Arc::clone(&self.schema), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn current_rows(&self, fallback: Vec<RecordBatch>) -> Vec<RecordBatch> {
        match &self.state {
            State::Linear(batches) => batches.clone(),
            _ => fallback,
        }
    }

    /// The new rows of every input since the view last read it.
    fn new_rows(&self, inputs: &EpochInputs<'_>) -> DfResult<BTreeMap<Oid, Vec<RecordBatch>>> {
        let mut rows = BTreeMap::new();
        for (oid, input) in &self.compiled.inputs {
            let batches = match input {
                Input::Stream(table) => {
                    let Some(to) = inputs.working.tables.get(oid) else {
                        continue;
                    };
                    let from = self
                        .cursors
                        .get(oid)
                        .cloned()
                        .unwrap_or_else(|| Arc::clone(to));
                    table.delta(&from, to).map_err(DataFusionError::Execution)?
                }
                Input::View(view) => inputs.appended.get(view).cloned().unwrap_or_default(),
            };
            rows.insert(*oid, batches);
        }
        Ok(rows)
    }

    async fn apply_delta(&mut self, inputs: &EpochInputs<'_>) -> DfResult<Option<Advance>> {
        let rows = match self.new_rows(inputs) {
            Ok(rows) => rows,
            Err(error) => {
                // Rows are gone from the logs (compacted): rebuild from the snapshot.
                tracing::warn!(view = %self.name, %error, "rebuilding materialized view");
                return self.backfill(inputs).await.map(Some);
            }
        };
        let mut rows = rows;
        let count: usize = rows.values().flatten().map(RecordBatch::num_rows).sum();
        let old_cursors = self.cursors.clone();
        self.move_cursors(inputs.working);
        if count == 0 {
            return Ok(None);
        }
        self.input_rows += count as u64;
        if let Some(window_close) = &mut self.window_close
            && let Some(batches) = rows.remove(&window_close.table)
        {
            let kept = window_close.drop_late(batches)?;
            rows.insert(window_close.table, kept);
        }
        let terms = self.terms(inputs, &rows, &old_cursors)?;
        let want_changes = self.want_changes;
        let (output, appended, touched) = match &mut self.state {
            State::Linear(batches) => {
                let mut new_rows = Vec::new();
                for (plan, pin) in &terms {
                    let state = match pin {
                        Some(pin) => Self::pinned(&self.planning, pin),
                        None => self.planning.clone(),
                    };
                    new_rows.extend(run(&state, plan).await?);
                }
                // One freshly allocated batch: the rows must not keep alive the input batches'
                // buffers (an IPC message holds every column of the ingested rows).
                let new_rows: Vec<RecordBatch> = match new_rows.first().map(RecordBatch::schema) {
                    Some(schema) => vec![detach(concat_batches(&schema, &new_rows)?)?],
                    None => Vec::new(),
                };
                batches.extend(new_rows.iter().filter(|b| b.num_rows() > 0).cloned());
                coalesce(batches, &self.schema)?;
                (batches.clone(), new_rows, None)
            }
            State::Aggregate(store) => {
                let mut partial = Vec::new();
                let mut last = None;
                for (plan, pin) in &terms {
                    let state = match pin {
                        Some(pin) => Self::pinned(&self.raw, pin),
                        None => self.raw.clone(),
                    };
                    let aggregate =
                        aggregate_plan(&state, plan, self.compiled.panes.as_ref()).await?;
                    partial.extend(aggregate.partial_states(state.task_ctx()).await?);
                    last = Some(aggregate);
                }
                let Some(aggregate) = last else {
                    return Ok(None);
                };
                let ctx = self.raw.task_ctx();
                if let Some(window_close) = &mut self.window_close {
                    store
                        .apply(&aggregate, partial, Arc::clone(&ctx), false)
                        .await?;
                    if let Some(batches) = rows.get(&window_close.table) {
                        window_close.advance(batches)?;
                    }
                    let closed = close_windows(store, &aggregate, window_close, ctx).await?;
                    if closed.is_empty() {
                        return Ok(None);
                    }
                    let contents = window_close.closed.clone();
                    let changes = want_changes
                        .then(|| {
                            Ok::<_, DataFusionError>((Vec::new(), self.renamed(closed.clone())?))
                        })
                        .transpose()?;
                    return Ok(Some(Advance {
                        contents: self.contents_of(contents)?,
                        appended: closed,
                        rebuilt: false,
                        changes,
                    }));
                }
                let touched = store
                    .apply(&aggregate, partial, Arc::clone(&ctx), want_changes)
                    .await?;
                let touched = match touched {
                    Some(touched) => {
                        let before = match touched.before {
                            Some(before) => aggregate.above(before, Arc::clone(&ctx)).await?,
                            None => Vec::new(),
                        };
                        let after = aggregate.above(touched.after, Arc::clone(&ctx)).await?;
                        Some((before, after))
                    }
                    None => None,
                };
                (store.contents(&aggregate, ctx).await?, Vec::new(), touched)
            }
            State::Full => return Ok(None),
        };
        let changes = match touched {
            Some((before, after)) => Some(super::changes::diff(
                &self.schema,
                &self.renamed(before)?,
                &self.renamed(after)?,
            )?),
            None if want_changes => Some((Vec::new(), self.renamed(appended.clone())?)),
            None => None,
        };
        Ok(Some(Advance {
            contents: self.contents_of(output)?,
            appended,
            rebuilt: false,
            changes,
        }))
    }

    /// The plans whose rows sum to the epoch's new rows, each with the snapshot its other
    /// scans read (`None`: no scan reads a changing input as a table).
    ///
    /// One input, or several that are not joined with each other: one plan over the new rows
    /// of every input. Two joined changing inputs `A ⋈ B`: `ΔA ⋈ B(before)` plus
    /// `A(now) ⋈ ΔB` (in general, input `i`'s new rows with inputs before it as they are now
    /// and inputs after it as they were), so pairs new on both sides count once.
    fn terms(
        &self,
        inputs: &EpochInputs<'_>,
        rows: &BTreeMap<Oid, Vec<RecordBatch>>,
        old_cursors: &HashMap<Oid, Arc<[u64]>>,
    ) -> DfResult<Vec<(LogicalPlan, Option<Committed>)>> {
        if !self.compiled.bilinear {
            return Ok(vec![(substitute(&self.compiled.plan, rows)?, None)]);
        }
        let order: Vec<Oid> = self.compiled.inputs.keys().copied().collect();
        let mut terms = Vec::new();
        for (index, oid) in order.iter().enumerate() {
            let Some(delta) = rows.get(oid).filter(|b| b.iter().any(|b| b.num_rows() > 0)) else {
                continue;
            };
            let mut pin = inputs.working.clone();
            for later in &order[index + 1..] {
                match &self.compiled.inputs[later] {
                    Input::Stream(_) => {
                        if let Some(offsets) = old_cursors.get(later) {
                            pin.tables.insert(*later, Arc::clone(offsets));
                        }
                    }
                    Input::View(view) => match inputs.previous.views.get(view) {
                        Some(before) => {
                            pin.views.insert(*view, before.clone());
                        }
                        None => {
                            let schema = pin
                                .views
                                .get(view)
                                .map(|c| Arc::clone(&c.schema))
                                .ok_or_else(|| {
                                    DataFusionError::Internal("input view missing".into())
                                })?;
                            pin.views.insert(*view, ViewContents::empty(schema));
                        }
                    },
                }
            }
            let bounded = super::join_bounds::bound_by_new_rows(&self.compiled.plan, *oid, delta)?;
            let only = BTreeMap::from([(*oid, delta.clone())]);
            let plan = super::compile::substitute_some(&bounded, &only, false)?;
            terms.push((plan, Some(pin)));
        }
        Ok(terms)
    }

    /// Full refresh: re-runs the query over the epoch's snapshot when an input changed (or
    /// periodically for views over lake tables only), at most every `refresh_every`.
    async fn refresh(&mut self, inputs: &EpochInputs<'_>) -> DfResult<Option<Advance>> {
        let changed = self.needs_backfill
            || self.compiled.inputs.iter().any(|(oid, input)| match input {
                Input::Stream(_) => inputs.working.tables.get(oid) != self.cursors.get(oid),
                Input::View(view) => inputs.changed.contains(view),
            })
            || (self.compiled.inputs.is_empty()
                && self
                    .last_refresh
                    .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10)));
        let due = self
            .last_refresh
            .is_none_or(|t| t.elapsed() >= self.refresh_every);
        if !changed || !due {
            return Ok(None);
        }
        let state = Self::pinned(&self.planning, inputs.working);
        let rows = run(&state, &self.compiled.plan).await?;
        self.last_refresh = Some(Instant::now());
        let rebuilt = self.needs_backfill;
        self.needs_backfill = false;
        self.move_cursors(inputs.working);
        let contents = self.contents_of(rows)?;
        let changes = self.diff_from(inputs, &contents)?;
        Ok(Some(Advance {
            contents,
            appended: Vec::new(),
            rebuilt,
            changes,
        }))
    }

    /// `batches` as the view's rows, with the catalog's column names.
    fn contents_of(&mut self, batches: Vec<RecordBatch>) -> DfResult<ViewContents> {
        let batches = batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| RecordBatch::try_new(Arc::clone(&self.schema), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        self.rows = batches.iter().map(RecordBatch::num_rows).sum();
        Ok(ViewContents {
            schema: Arc::clone(&self.schema),
            batches: Arc::new(batches),
        })
    }

    /// The state a checkpoint keeps; `None` for views rebuilt on restart (full refresh).
    pub(super) fn checkpoint_state(&self) -> DfResult<Option<ViewStateData>> {
        if self.needs_backfill || self.failed.is_some() {
            return Ok(None);
        }
        let (schema, batches) = match &self.state {
            State::Linear(batches) => (Arc::clone(&self.schema), batches.clone()),
            State::Aggregate(store) => {
                let states = store.states()?;
                match states.first().map(RecordBatch::schema) {
                    Some(schema) => (schema, states),
                    None => (Arc::clone(&self.schema), Vec::new()),
                }
            }
            State::Full => return Ok(None),
        };
        let window_close = self.window_close.as_ref();
        Ok(Some(ViewStateData {
            oid: self.oid,
            sql: self.spec.sql.clone(),
            schema,
            batches,
            cursors: self.cursors(),
            closed: window_close.map(|w| (Arc::clone(&self.schema), w.closed.clone())),
            watermark: window_close.and_then(|w| w.watermark),
            late_rows: window_close.map_or(0, |w| w.late_rows),
        }))
    }

    /// Resumes from a checkpoint taken at `tables`' offsets. Returns the view's rows.
    pub(super) async fn restore(
        &mut self,
        batches: Vec<RecordBatch>,
        saved: &basin_catalog::views::checkpoint::ViewState,
        closed: Option<Vec<RecordBatch>>,
    ) -> DfResult<ViewContents> {
        let tables = &saved.cursors;
        let closed = self.renamed(closed.unwrap_or_default())?;
        if let Some(window_close) = &mut self.window_close {
            window_close.watermark = saved.watermark;
            window_close.late_rows = saved.late_rows;
            window_close.closed = closed;
        }
        let output = match &mut self.state {
            State::Linear(rows) => {
                *rows = batches
                    .into_iter()
                    .map(|b| RecordBatch::try_new(Arc::clone(&self.schema), b.columns().to_vec()))
                    .collect::<Result<Vec<_>, _>>()?;
                rows.clone()
            }
            State::Aggregate(store) => {
                let empty = BTreeMap::new();
                let plan = substitute(&self.compiled.plan, &empty)?;
                let aggregate =
                    aggregate_plan(&self.raw, &plan, self.compiled.panes.as_ref()).await?;
                *store = GroupStore::default();
                if batches.iter().any(|b| b.num_rows() > 0) {
                    store
                        .apply(&aggregate, batches, self.raw.task_ctx(), false)
                        .await?;
                } else {
                    // A global aggregate over nothing still has its one row.
                    let partial = aggregate.partial_states(self.raw.task_ctx()).await?;
                    store
                        .apply(&aggregate, partial, self.raw.task_ctx(), false)
                        .await?;
                }
                match &self.window_close {
                    Some(window_close) => window_close.closed.clone(),
                    None => store.contents(&aggregate, self.raw.task_ctx()).await?,
                }
            }
            State::Full => {
                return Err(DataFusionError::Internal(
                    "full-refresh views have no checkpoint".into(),
                ));
            }
        };
        let mut cursors = HashMap::new();
        for table in self.stream_inputs() {
            let Some(offsets) = tables.get(&table.oid()) else {
                return Err(DataFusionError::Execution(format!(
                    "the checkpoint has no offsets for input {}",
                    table.name()
                )));
            };
            cursors.insert(table.oid(), offsets.iter().copied().collect());
        }
        self.cursors = cursors;
        self.needs_backfill = false;
        self.contents_of(output)
    }
}

/// Emits the windows the watermark closed: their rows go to `window_close.closed` (and are
/// returned), their state is dropped.
async fn close_windows(
    store: &mut GroupStore,
    plan: &AggregatePlan,
    window_close: &mut WindowClose,
    ctx: Arc<datafusion::execution::TaskContext>,
) -> DfResult<Vec<RecordBatch>> {
    let Some(watermark) = window_close.watermark else {
        return Ok(Vec::new());
    };
    let column = window_end_column(&plan.final_schema()).ok_or_else(|| {
        DataFusionError::Plan("EMIT ON WINDOW CLOSE needs window_end in GROUP BY".into())
    })?;
    let mut closed = Vec::new();
    for rows in store.evict(column, watermark)? {
        closed.extend(plan.above(rows, Arc::clone(&ctx)).await?);
    }
    closed.retain(|b| b.num_rows() > 0);
    window_close.closed.extend(closed.iter().cloned());
    Ok(closed)
}

async fn run(state: &SessionState, plan: &LogicalPlan) -> DfResult<Vec<RecordBatch>> {
    let physical = state.create_physical_plan(plan).await?;
    collect(physical, state.task_ctx()).await
}

/// The epoch's aggregate plan: planned raw, the partial step then optimized on its own (it
/// may read lake files and joins that need the optimizer's distribution rules).
async fn aggregate_plan(
    state: &SessionState,
    plan: &LogicalPlan,
    panes: Option<&Arc<super::panes::Panes>>,
) -> DfResult<AggregatePlan> {
    let whole = state.create_physical_plan(plan).await?;
    AggregatePlan::try_new(whole, panes.cloned(), |partial| {
        optimize_physical(state, partial)
    })
    .map_err(|e| DataFusionError::Plan(format!("incremental aggregation: {e}")))
}

fn optimize_physical(
    state: &SessionState,
    plan: Arc<dyn ExecutionPlan>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let rules = basin_catalog::filter_pushdown_guard::default_rules();
    let options = state.config_options();
    rules
        .iter()
        .filter(|rule| rule.name() != "CombinePartialFinalAggregate")
        .try_fold(plan, |plan, rule| rule.optimize(plan, options))
}

/// `batch` with every column that references much larger buffers (slices of an ingested IPC
/// message, which holds all of its columns) copied into buffers of its own.
fn detach(batch: RecordBatch) -> DfResult<RecordBatch> {
    let rows = u32::try_from(batch.num_rows())
        .map_err(|_| DataFusionError::Execution("batch too large".into()))?;
    let all = arrow::array::UInt32Array::from_iter_values(0..rows);
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            let used = column.to_data().get_slice_memory_size().unwrap_or(0);
            if column.get_buffer_memory_size() > 2 * used + 4096 {
                arrow::compute::take(column.as_ref(), &all, None)
            } else {
                Ok(Arc::clone(column))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Keeps an append-only view's batches few: small trailing batches are merged.
fn coalesce(batches: &mut Vec<RecordBatch>, schema: &SchemaRef) -> DfResult<()> {
    const SMALL: usize = 8192;
    let small = batches
        .iter()
        .rev()
        .take_while(|b| b.num_rows() < SMALL)
        .count();
    if small < 16 {
        return Ok(());
    }
    let tail = batches.split_off(batches.len() - small);
    let schema = tail
        .first()
        .map_or_else(|| Arc::clone(schema), RecordBatch::schema);
    batches.push(concat_batches(&schema, &tail)?);
    Ok(())
}
