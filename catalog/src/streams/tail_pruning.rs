//! Skips the log tail's batches that a scan's filters rule out, by each batch's minimum and
//! maximum, as the lake's Parquet row groups are skipped by their statistics. A log batch is
//! one acknowledged append, so batches of events arriving in time order cover narrow ranges
//! of their timestamps: a scan for a time range reads only the batches that overlap it.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;

use crate::value_range::{greatest, least};

/// The batches of `tail` that may hold rows passing `filters` (all of them when the filters
/// say nothing a batch's minimum and maximum could rule out).
pub(super) fn prune_tail(
    state: &dyn Session,
    schema: &SchemaRef,
    filters: &[Expr],
    tail: Vec<RecordBatch>,
) -> Vec<RecordBatch> {
    if tail.len() < 2 {
        return tail;
    }
    // A filter that cannot be planned here, or that the pruning rewrite does not understand,
    // prunes nothing: the filter above the scan still applies.
    let Ok(Some(predicate)) = crate::delta_files::scan_predicate(state, schema, filters) else {
        return tail;
    };
    let Some(pruning) = PruningPredicateBuilder::new()
        .with_file_schema(Arc::clone(schema))
        .build(predicate)
    else {
        return tail;
    };
    let Ok(keep) = pruning.prune(&BatchStatistics(&tail)) else {
        return tail;
    };
    tail.into_iter()
        .zip(keep)
        .filter_map(|(batch, keep)| keep.then_some(batch))
        .collect()
}

/// Each batch as one container, its statistics computed when the predicate asks for them.
struct BatchStatistics<'a>(&'a [RecordBatch]);

impl BatchStatistics<'_> {
    fn per_batch(
        &self,
        column: &Column,
        f: fn(&ArrayRef) -> DfResult<ScalarValue>,
    ) -> Option<ArrayRef> {
        let values = self
            .0
            .iter()
            .map(|batch| {
                let array = batch.column_by_name(&column.name)?;
                f(array).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for BatchStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.per_batch(column, least)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.per_batch(column, greatest)
    }

    fn num_containers(&self) -> usize {
        self.0.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let counts = self
            .0
            .iter()
            .map(|batch| {
                batch
                    .column_by_name(&column.name)
                    .map(|a| a.null_count() as u64)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Arc::new(UInt64Array::from(counts)))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: Vec<u64> = self.0.iter().map(|b| b.num_rows() as u64).collect();
        Some(Arc::new(UInt64Array::from(counts)))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
