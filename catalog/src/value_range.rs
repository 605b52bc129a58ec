//! The least and greatest value of an Arrow column, by DataFusion's own MIN/MAX
//! accumulators (so every type they order is ordered the same way a query would).

use arrow::array::ArrayRef;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;

/// The least non-null value of `values` (a null `ScalarValue` when there is none).
pub fn least(values: &ArrayRef) -> DfResult<ScalarValue> {
    let mut accumulator = MinAccumulator::try_new(values.data_type())?;
    accumulator.update_batch(std::slice::from_ref(values))?;
    accumulator.evaluate()
}

/// The greatest non-null value of `values` (a null `ScalarValue` when there is none).
pub fn greatest(values: &ArrayRef) -> DfResult<ScalarValue> {
    let mut accumulator = MaxAccumulator::try_new(values.data_type())?;
    accumulator.update_batch(std::slice::from_ref(values))?;
    accumulator.evaluate()
}
