//! Incremental `GROUP BY` over append-only input, on DataFusion's own aggregate kernels:
//! `AggregateExec(Partial)` turns an epoch's new rows into partial states per group,
//! `AggregateExec(PartialReduce)` merges them with the groups' stored states, and
//! `AggregateExec(Final)` evaluates the merged states. Only the groups the epoch touched are
//! merged and evaluated.
//!
//! Stored states live in chunks (one per epoch that changed groups, compacted as they go
//! stale); an index from each group's key (arrow-row bytes) points at its current row. A
//! chunk caches its rows of the view's output, so an epoch recomputes only chunks it touched.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch, interleave, take};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::{ExecutionPlan, collect};

/// Chunks beyond this many, or more stale rows than live ones, trigger a compaction.
const MAX_CHUNKS: usize = 32;
/// Rows per chunk after compaction (bounds the work of re-evaluating a touched chunk).
const CHUNK_ROWS: usize = 64 * 1024;

/// The pieces of one epoch's physical plan of an aggregate view.
pub(super) struct AggregatePlan {
    /// The whole view, with the new rows as input.
    whole: Arc<dyn ExecutionPlan>,
    /// `AggregateExec(Partial)` over the new rows.
    partial: Arc<dyn ExecutionPlan>,
    /// The `AggregateExec(Final)` node inside `whole`.
    final_node: Arc<dyn ExecutionPlan>,
    reduce: Arc<AggregateExec>,
    groups: usize,
    /// Set when the partial step aggregates `HOP` panes: its states are copied to windows.
    panes: Option<Arc<super::panes::Panes>>,
}

fn memory(schema: SchemaRef, batches: Vec<RecordBatch>) -> DfResult<Arc<dyn ExecutionPlan>> {
    MemorySourceConfig::try_new_exec(&[batches], schema, None).map(|e| e as Arc<dyn ExecutionPlan>)
}

fn recompute() -> datafusion::physical_plan::execution_plan::ReplaceChildrenOptions {
    use datafusion::physical_plan::execution_plan::{
        ChildrenPropertiesMode, ReplaceChildrenOptions,
    };
    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute)
}

fn find_aggregate(
    plan: &Arc<dyn ExecutionPlan>,
    modes: &[AggregateMode],
) -> Option<Arc<dyn ExecutionPlan>> {
    if let Some(aggregate) = plan.downcast_ref::<AggregateExec>()
        && modes.contains(aggregate.mode())
    {
        return Some(Arc::clone(plan));
    }
    plan.children()
        .into_iter()
        .find_map(|child| find_aggregate(child, modes))
}

impl AggregatePlan {
    /// Finds the Final/Partial pair in `whole` (planned without physical optimizer rules, so
    /// the pair is not fused).
    pub(super) fn try_new(
        whole: Arc<dyn ExecutionPlan>,
        panes: Option<Arc<super::panes::Panes>>,
        optimize: impl Fn(Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>>,
    ) -> Result<Self, String> {
        let final_node = find_aggregate(
            &whole,
            &[AggregateMode::Final, AggregateMode::FinalPartitioned],
        )
        .ok_or("the plan has no final aggregation step")?;
        let final_exec = final_node
            .downcast_ref::<AggregateExec>()
            .ok_or("the final aggregation step is not an AggregateExec")?;
        let partial = find_aggregate(&final_node, &[AggregateMode::Partial])
            .ok_or("the aggregation has no partial step")?;
        if final_exec.input().schema() != partial.schema() {
            return Err("the partial and final aggregation steps disagree on their states".into());
        }
        let partial = optimize(partial).map_err(|e| e.to_string())?;
        if final_exec.input().schema() != partial.schema() {
            return Err("optimizing the partial aggregation changed its states".into());
        }
        let placeholder = memory(partial.schema(), Vec::new()).map_err(|e| e.to_string())?;
        let reduce = AggregateExec::try_new(
            AggregateMode::PartialReduce,
            final_exec.group_expr().clone(),
            final_exec.aggr_expr().to_vec(),
            final_exec.filter_expr().to_vec(),
            placeholder,
            final_exec.input_schema(),
        )
        .map_err(|e| e.to_string())?;
        if reduce.schema() != partial.schema() {
            return Err("merging partial states changes their schema".into());
        }
        let groups = final_exec.group_expr().expr().len();
        Ok(Self {
            whole,
            partial,
            final_node,
            reduce: Arc::new(reduce),
            groups,
            panes,
        })
    }

    /// The aggregation's output: group columns, then aggregate values.
    pub(super) fn final_schema(&self) -> SchemaRef {
        self.final_node.schema()
    }

    pub(super) fn state_schema(&self) -> SchemaRef {
        self.partial.schema()
    }

    /// Partial states of the epoch's new rows, per group.
    pub(super) async fn partial_states(&self, ctx: Arc<TaskContext>) -> DfResult<Vec<RecordBatch>> {
        let states = collect(Arc::clone(&self.partial), ctx).await?;
        match &self.panes {
            Some(panes) => panes.expand(states),
            None => Ok(states),
        }
    }

    async fn merge(
        &self,
        states: Vec<RecordBatch>,
        ctx: Arc<TaskContext>,
    ) -> DfResult<RecordBatch> {
        let input = memory(self.state_schema(), states)?;
        let plan = Arc::clone(&self.reduce).replace_children(vec![input], recompute())?;
        let merged = collect(plan, ctx).await?;
        Ok(concat_batches(&self.state_schema(), &merged)?)
    }

    async fn finals(&self, states: RecordBatch, ctx: Arc<TaskContext>) -> DfResult<RecordBatch> {
        let input = memory(self.state_schema(), vec![states])?;
        let plan = Arc::clone(&self.final_node).replace_children(vec![input], recompute())?;
        let schema = plan.schema();
        let finals = collect(plan, ctx).await?;
        Ok(concat_batches(&schema, &finals)?)
    }

    /// The view's rows for aggregate rows `finals`: the operators above the aggregation.
    pub(super) async fn above(
        &self,
        finals: RecordBatch,
        ctx: Arc<TaskContext>,
    ) -> DfResult<Vec<RecordBatch>> {
        let input = memory(finals.schema(), vec![finals])?;
        let target = Arc::clone(&self.final_node);
        let plan = Arc::clone(&self.whole)
            .transform_down(|node| {
                if std::ptr::addr_eq(Arc::as_ptr(&node), Arc::as_ptr(&target)) {
                    Ok(Transformed::yes(Arc::clone(&input)))
                } else {
                    Ok(Transformed::no(node))
                }
            })?
            .data;
        collect(plan, ctx).await
    }
}

/// The aggregate rows of the groups one epoch touched.
pub(super) struct Touched {
    /// Before the epoch, for the groups that existed.
    pub(super) before: Option<RecordBatch>,
    pub(super) after: RecordBatch,
}

struct Chunk {
    states: RecordBatch,
    finals: RecordBatch,
    live: Vec<bool>,
    live_rows: usize,
    /// This chunk's rows of the view, while no group in it changed.
    output: Option<Vec<RecordBatch>>,
}

impl Chunk {
    fn kill(&mut self, row: usize) {
        if let Some(live) = self.live.get_mut(row)
            && *live
        {
            *live = false;
            self.live_rows -= 1;
            self.output = None;
        }
    }

    fn live_mask(&self) -> BooleanArray {
        BooleanArray::from(self.live.clone())
    }
}

/// The per-group state of one aggregate view.
#[derive(Default)]
pub(super) struct GroupStore {
    converter: Option<RowConverter>,
    /// How many leading state columns are the group key.
    groups: usize,
    index: HashMap<Box<[u8]>, (usize, usize)>,
    chunks: Vec<Chunk>,
}

impl GroupStore {
    /// Each row's group key as arrow-row bytes. Without GROUP BY every row has the same
    /// (all-null) key: the one group.
    fn keys(&mut self, plan: &AggregatePlan, batch: &RecordBatch) -> DfResult<arrow::row::Rows> {
        if self.converter.is_none() {
            let fields = if plan.groups == 0 {
                vec![SortField::new(arrow::datatypes::DataType::Null)]
            } else {
                batch.schema().fields()[..plan.groups]
                    .iter()
                    .map(|f| SortField::new(f.data_type().clone()))
                    .collect()
            };
            self.converter = Some(RowConverter::new(fields)?);
            self.groups = plan.groups;
        }
        self.keys_of(batch)
    }

    fn keys_of(&self, batch: &RecordBatch) -> DfResult<arrow::row::Rows> {
        let converter = self
            .converter
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("no row converter".into()))?;
        if self.groups == 0 {
            let nulls =
                arrow::array::new_null_array(&arrow::datatypes::DataType::Null, batch.num_rows());
            return Ok(converter.convert_columns(&[nulls])?);
        }
        Ok(converter.convert_columns(&batch.columns()[..self.groups])?)
    }

    /// Merges partial `states` (any number of rows per group) into the stored groups. With
    /// `want_changes`, returns the touched groups' aggregate rows before (if they existed) and
    /// after.
    pub(super) async fn apply(
        &mut self,
        plan: &AggregatePlan,
        states: Vec<RecordBatch>,
        ctx: Arc<TaskContext>,
        want_changes: bool,
    ) -> DfResult<Option<Touched>> {
        let schema = plan.state_schema();
        let states = states
            .into_iter()
            .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        let incoming = concat_batches(&schema, &states)?;
        if incoming.num_rows() == 0 {
            return Ok(None);
        }
        let keys = self.keys(plan, &incoming)?;
        let mut seen = std::collections::HashSet::new();
        let positions: Vec<(usize, usize)> = (0..keys.num_rows())
            .filter_map(|row| {
                let key = keys.row(row);
                let slot = self.index.get(key.as_ref()).copied()?;
                seen.insert(slot).then_some(slot)
            })
            .collect();
        let mut inputs = Vec::with_capacity(2);
        if !positions.is_empty() {
            let columns = (0..schema.fields().len())
                .map(|column| {
                    let arrays: Vec<&dyn Array> = self
                        .chunks
                        .iter()
                        .map(|c| c.states.column(column).as_ref())
                        .collect();
                    interleave(&arrays, &positions)
                })
                .collect::<Result<Vec<_>, _>>()?;
            inputs.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        }
        let before = match self.chunks.first() {
            Some(first) if want_changes && !positions.is_empty() => {
                let final_schema = first.finals.schema();
                let columns = (0..final_schema.fields().len())
                    .map(|column| {
                        let arrays: Vec<&dyn Array> = self
                            .chunks
                            .iter()
                            .map(|c| c.finals.column(column).as_ref())
                            .collect();
                        interleave(&arrays, &positions)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(RecordBatch::try_new(final_schema, columns)?)
            }
            _ => None,
        };
        inputs.push(incoming);
        let merged = plan.merge(inputs, Arc::clone(&ctx)).await?;
        let finals = plan.finals(merged.clone(), ctx).await?;
        let finals = self.align(plan, &merged, finals)?;
        let merged_keys = self.keys(plan, &merged)?;
        let chunk = self.chunks.len();
        for row in 0..merged_keys.num_rows() {
            let key: Box<[u8]> = merged_keys.row(row).as_ref().into();
            if let Some((old_chunk, old_row)) = self.index.insert(key, (chunk, row))
                && let Some(old) = self.chunks.get_mut(old_chunk)
            {
                old.kill(old_row);
            }
        }
        let rows = merged.num_rows();
        let touched = want_changes.then(|| Touched {
            before,
            after: finals.clone(),
        });
        self.chunks.push(Chunk {
            states: merged,
            finals,
            live: vec![true; rows],
            live_rows: rows,
            output: None,
        });
        self.compact_if_stale()?;
        Ok(touched)
    }

    /// `finals` in the row order of `states` (the aggregation keeps first-seen order, which
    /// is checked rather than assumed).
    fn align(
        &mut self,
        plan: &AggregatePlan,
        states: &RecordBatch,
        finals: RecordBatch,
    ) -> DfResult<RecordBatch> {
        if finals.num_rows() != states.num_rows() {
            return Err(DataFusionError::Internal(format!(
                "final aggregation returned {} rows for {} groups",
                finals.num_rows(),
                states.num_rows()
            )));
        }
        let aligned =
            (0..plan.groups).all(|i| states.column(i).to_data() == finals.column(i).to_data());
        if aligned {
            return Ok(finals);
        }
        let state_keys = self.keys(plan, states)?;
        let final_keys = self.keys(plan, &finals)?;
        let by_key: HashMap<&[u8], u32> = (0..final_keys.num_rows())
            .map(|row| (final_keys.row(row).data(), row as u32))
            .collect();
        let indices = (0..state_keys.num_rows())
            .map(|row| by_key.get(state_keys.row(row).data()).copied())
            .collect::<arrow::array::UInt32Array>();
        let columns = finals
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(finals.schema(), columns)?)
    }

    fn compact_if_stale(&mut self) -> DfResult<()> {
        let live: usize = self.chunks.iter().map(|c| c.live_rows).sum();
        let total: usize = self.chunks.iter().map(|c| c.live.len()).sum();
        if self.chunks.len() <= MAX_CHUNKS && total - live <= live.max(1024) {
            return Ok(());
        }
        let Some(first) = self.chunks.first() else {
            return Ok(());
        };
        let (state_schema, final_schema) = (first.states.schema(), first.finals.schema());
        let mut states = Vec::new();
        let mut finals = Vec::new();
        for chunk in &self.chunks {
            let mask = chunk.live_mask();
            states.push(filter_record_batch(&chunk.states, &mask)?);
            finals.push(filter_record_batch(&chunk.finals, &mask)?);
        }
        let states = concat_batches(&state_schema, &states)?;
        let finals = concat_batches(&final_schema, &finals)?;
        self.chunks.clear();
        self.index.clear();
        let mut offset = 0;
        while offset < states.num_rows() {
            let length = CHUNK_ROWS.min(states.num_rows() - offset);
            let chunk_states = states.slice(offset, length);
            let keys = self.keys_of(&chunk_states)?;
            let chunk = self.chunks.len();
            for row in 0..keys.num_rows() {
                self.index
                    .insert(keys.row(row).as_ref().into(), (chunk, row));
            }
            self.chunks.push(Chunk {
                states: chunk_states,
                finals: finals.slice(offset, length),
                live: vec![true; length],
                live_rows: length,
                output: None,
            });
            offset += length;
        }
        Ok(())
    }

    /// The view's rows: each chunk's live groups through the operators above the
    /// aggregation, recomputed only for chunks that changed.
    pub(super) async fn contents(
        &mut self,
        plan: &AggregatePlan,
        ctx: Arc<TaskContext>,
    ) -> DfResult<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for chunk in &mut self.chunks {
            if chunk.live_rows == 0 {
                continue;
            }
            if chunk.output.is_none() {
                let finals = if chunk.live_rows == chunk.live.len() {
                    chunk.finals.clone()
                } else {
                    filter_record_batch(&chunk.finals, &chunk.live_mask())?
                };
                chunk.output = Some(plan.above(finals, Arc::clone(&ctx)).await?);
            }
            out.extend(chunk.output.iter().flatten().cloned());
        }
        Ok(out)
    }

    /// Removes the groups whose aggregate column `column` (a timestamp, e.g. `window_end`) is
    /// at most `upto` (microseconds), returning their aggregate rows: windows the watermark
    /// closed, emitted once and forgotten.
    pub(super) fn evict(&mut self, column: usize, upto: i64) -> DfResult<Vec<RecordBatch>> {
        use arrow::array::TimestampMicrosecondArray;
        let mut evicted = Vec::new();
        let mut keys_to_drop = Vec::new();
        for chunk in &mut self.chunks {
            if chunk.live_rows == 0 {
                continue;
            }
            let values = arrow::compute::cast(
                chunk.finals.column(column),
                &arrow::datatypes::DataType::Timestamp(
                    arrow::datatypes::TimeUnit::Microsecond,
                    None,
                ),
            )?;
            let values = values
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| DataFusionError::Internal("window end is not a timestamp".into()))?;
            let closed: Vec<bool> = (0..values.len())
                .map(|row| chunk.live[row] && values.is_valid(row) && values.value(row) <= upto)
                .collect();
            if !closed.contains(&true) {
                continue;
            }
            let mask = BooleanArray::from(closed.clone());
            let rows = filter_record_batch(&chunk.finals, &mask)?;
            keys_to_drop.push(filter_record_batch(&chunk.states, &mask)?);
            evicted.push(rows);
            for (row, gone) in closed.iter().enumerate() {
                if *gone {
                    chunk.kill(row);
                }
            }
        }
        for states in keys_to_drop {
            let keys = self.keys_of(&states)?;
            for row in 0..keys.num_rows() {
                self.index.remove(keys.row(row).as_ref());
            }
        }
        self.compact_if_stale()?;
        Ok(evicted)
    }

    /// Every group's current partial state, for a checkpoint.
    pub(super) fn states(&self) -> DfResult<Vec<RecordBatch>> {
        self.chunks
            .iter()
            .filter(|c| c.live_rows > 0)
            .map(|c| Ok(filter_record_batch(&c.states, &c.live_mask())?))
            .collect()
    }

    pub(super) fn groups(&self) -> usize {
        self.index.len()
    }

    pub(super) fn memory_bytes(&self) -> usize {
        let chunks: usize = self
            .chunks
            .iter()
            .map(|c| {
                c.states.get_array_memory_size() + c.finals.get_array_memory_size() + c.live.len()
            })
            .sum();
        let index: usize = self.index.keys().map(|k| k.len() + 48).sum();
        chunks + index
    }
}
