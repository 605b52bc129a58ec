//! One maintained materialized view: its compiled query, where it has read its inputs up to,
//! its state, and how it moves to the next epoch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use basin_catalog::model::{MaterializedViewSpec, Oid, RelationEntry};
use basin_catalog::views::{Committed, ReadPin, ViewContents};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, collect};

use super::aggregate::{AggregatePlan, GroupStore};
use super::compile::{Compiled, Input, Mode, substitute};
use super::freshness::Freshness;

/// What one epoch hands every view.
pub(super) struct EpochInputs<'a> {
    pub(super) working: &'a Committed,
    /// Rows append-only views added this epoch (their downstream views' new input).
    pub(super) appended: &'a HashMap<Oid, Vec<RecordBatch>>,
    /// Views rebuilt from scratch this epoch: views reading them rebuild too.
    pub(super) rebuilt: &'a std::collections::HashSet<Oid>,
    /// Views whose rows changed this epoch.
    pub(super) changed: &'a std::collections::HashSet<Oid>,
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
        }
    }

    pub(super) fn mode(&self) -> &Mode {
        &self.compiled.mode
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
                let plan = aggregate_plan(&state, &self.compiled.plan).await?;
                let partial = plan.partial_states(state.task_ctx()).await?;
                store.apply(&plan, partial, state.task_ctx(), false).await?;
                store.contents(&plan, state.task_ctx()).await?
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
        let count: usize = rows.values().flatten().map(RecordBatch::num_rows).sum();
        self.move_cursors(inputs.working);
        if count == 0 {
            return Ok(None);
        }
        self.input_rows += count as u64;
        let plan = substitute(&self.compiled.plan, &rows)?;
        let want_changes = self.want_changes;
        let (output, appended, touched) = match &mut self.state {
            State::Linear(batches) => {
                let new_rows = run(&self.planning, &plan).await?;
                batches.extend(new_rows.iter().filter(|b| b.num_rows() > 0).cloned());
                coalesce(batches, &self.schema)?;
                (batches.clone(), new_rows, None)
            }
            State::Aggregate(store) => {
                let aggregate = aggregate_plan(&self.raw, &plan).await?;
                let partial = aggregate.partial_states(self.raw.task_ctx()).await?;
                let ctx = self.raw.task_ctx();
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
    pub(super) fn checkpoint_state(&self) -> DfResult<Option<(SchemaRef, Vec<RecordBatch>)>> {
        if self.needs_backfill || self.failed.is_some() {
            return Ok(None);
        }
        match &self.state {
            State::Linear(batches) => Ok(Some((Arc::clone(&self.schema), batches.clone()))),
            State::Aggregate(store) => {
                let states = store.states()?;
                let Some(schema) = states.first().map(RecordBatch::schema) else {
                    return Ok(Some((Arc::clone(&self.schema), Vec::new())));
                };
                Ok(Some((schema, states)))
            }
            State::Full => Ok(None),
        }
    }

    /// Resumes from a checkpoint taken at `tables`' offsets. Returns the view's rows.
    pub(super) async fn restore(
        &mut self,
        batches: Vec<RecordBatch>,
        tables: &BTreeMap<Oid, Vec<u64>>,
    ) -> DfResult<ViewContents> {
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
                let aggregate = aggregate_plan(&self.raw, &plan).await?;
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
                store.contents(&aggregate, self.raw.task_ctx()).await?
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

async fn run(state: &SessionState, plan: &LogicalPlan) -> DfResult<Vec<RecordBatch>> {
    let physical = state.create_physical_plan(plan).await?;
    collect(physical, state.task_ctx()).await
}

/// The epoch's aggregate plan: planned raw, the partial step then optimized on its own (it
/// may read lake files and joins that need the optimizer's distribution rules).
async fn aggregate_plan(state: &SessionState, plan: &LogicalPlan) -> DfResult<AggregatePlan> {
    let whole = state.create_physical_plan(plan).await?;
    AggregatePlan::try_new(whole, |partial| optimize_physical(state, partial))
        .map_err(|e| DataFusionError::Plan(format!("incremental aggregation: {e}")))
}

fn optimize_physical(
    state: &SessionState,
    plan: Arc<dyn ExecutionPlan>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    let options = state.config_options();
    rules
        .iter()
        .filter(|rule| rule.name() != "CombinePartialFinalAggregate")
        .try_fold(plan, |plan, rule| rule.optimize(plan, options))
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
