//! Table functions whose arguments Postgres evaluates per call: `generate_series(1,
//! array_upper(current_schemas(false), 1))` (pgjdbc's `getTypeInfo`). DataFusion's built-in
//! table functions take only `bigint` literals, so these wrappers evaluate any argument that
//! does not read a column into a literal, widen integers to `bigint`, then hand over.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::array::RecordBatchOptions;
use arrow::datatypes::{DataType, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::{ColumnarValue, Expr, lit};
use datafusion::prelude::SessionContext;

/// DataFusion table functions that take constant arguments.
const WRAPPED: &[&str] = &["generate_series", "range"];

#[derive(Debug)]
struct ConstantArguments {
    inner: Arc<dyn TableFunctionImpl>,
}

impl TableFunctionImpl for ConstantArguments {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let session = args.session();
        let empty = DFSchema::empty();
        let one_row = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            Vec::new(),
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let exprs = args
            .exprs()
            .iter()
            .map(|expr| {
                if let Expr::Literal(value, _) = expr {
                    return Ok(lit(widen(value)?));
                }
                if !expr.column_refs().is_empty() || expr.contains_outer() {
                    return Ok(expr.clone());
                }
                let value = match session
                    .create_physical_expr(expr.clone(), &empty)?
                    .evaluate(&one_row)?
                {
                    ColumnarValue::Scalar(value) => value,
                    ColumnarValue::Array(array) => ScalarValue::try_from_array(&array, 0)?,
                };
                Ok(lit(widen(&value)?))
            })
            .collect::<Result<Vec<_>>>()?;
        self.inner
            .call_with_args(TableFunctionArgs::new(&exprs, session))
    }
}

/// Integers as `bigint`, the only integer type DataFusion's series functions take; Postgres
/// passes `integer` (`array_upper` returns one).
fn widen(value: &ScalarValue) -> Result<ScalarValue> {
    if value.data_type().is_integer() && value.data_type() != DataType::Int64 {
        value.cast_to(&DataType::Int64)
    } else {
        Ok(value.clone())
    }
}

/// Wraps DataFusion's `generate_series` and `range` of `ctx`.
pub(super) fn register(ctx: &SessionContext) {
    for name in WRAPPED {
        if let Ok(existing) = ctx.table_function(name) {
            let inner = Arc::clone(existing.function());
            ctx.register_udtf(name, Arc::new(ConstantArguments { inner }));
        }
    }
}
