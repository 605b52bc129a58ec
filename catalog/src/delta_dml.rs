//! `DELETE`, `UPDATE` and `TRUNCATE` of Basin-managed tables, through deltalake's
//! copy-on-write operations: the files holding matching rows are rewritten without them (or
//! with them changed) and one Delta commit removes the old files and adds the new ones, so a
//! reader sees the table before or after the statement, never half of it. Files without a
//! matching row (by their statistics or their contents) are left alone.
//!
//! DataFusion plans the statement and hands the provider the `WHERE` conjuncts and the
//! assignments ([`datafusion::catalog::TableProvider::delete_from`] and `update`); the
//! returned plan does the work when it runs (so `EXPLAIN DELETE` changes nothing) and yields
//! the number of rows touched as DataFusion's one-column `count`. Columns stored in an encoding
//! (`delta_types`) are decoded in conditions and encoded in assignments with casts, since
//! deltalake evaluates expressions over the stored types; conditions on time, duration and
//! interval values are refused (deltalake cannot record them in its commit).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::UInt64Array;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DataFusionError};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, cast};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use deltalake::DeltaTable;

/// What a statement changes.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// `DELETE` (no conjuncts: every row) and `TRUNCATE` (`truncate`: the tag differs).
    Delete { filters: Vec<Expr> },
    /// `UPDATE ... SET column = expr, ... [WHERE ...]`.
    Update {
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    },
}

/// Builds the plan that applies `change` to `table` (named `name` in errors), read as
/// `logical` and stored as `storage`. deltalake evaluates expressions over the stored types, so
/// an encoded column (`delta_types`) is read through a cast to its declared type and a value
/// assigned to one is cast to its encoding, as an `INSERT` would store it.
pub(crate) fn plan(
    name: &str,
    table: DeltaTable,
    logical: &Schema,
    storage: &Schema,
    change: Change,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let encoded: HashMap<String, (DataType, DataType)> =
        crate::delta_types::encoded_columns(logical, storage)
            .into_iter()
            .map(|i| {
                let (declared, stored) = (logical.field(i), storage.field(i));
                (
                    declared.name().clone(),
                    (declared.data_type().clone(), stored.data_type().clone()),
                )
            })
            .collect();
    let filters = match &change {
        Change::Delete { filters } | Change::Update { filters, .. } => filters,
    };
    if let Some(what) = filters
        .iter()
        .find_map(|f| literal_only_type(f, &encoded).or_else(|| wide_decimal(f, storage)))
    {
        return Err(DataFusionError::NotImplemented(format!(
            "DELETE and UPDATE of table \"{name}\" cannot have a condition on {what} yet \
             (deltalake records the condition as SQL text, which has no such literals)"
        )));
    }
    let decoded = |expr: Expr| decode_columns(expr, &encoded);
    let change = match change {
        Change::Delete { filters } => Change::Delete {
            filters: filters.into_iter().map(decoded).collect::<DfResult<_>>()?,
        },
        Change::Update {
            assignments,
            filters,
        } => Change::Update {
            assignments: assignments
                .into_iter()
                .map(|(column, value)| {
                    let value = decoded(value)?;
                    let value = match encoded.get(&column) {
                        Some((_, stored)) => cast(value, stored.clone()),
                        None => value,
                    };
                    Ok((column, value))
                })
                .collect::<DfResult<_>>()?,
            filters: filters.into_iter().map(decoded).collect::<DfResult<_>>()?,
        },
    };
    Ok(Arc::new(DeltaChangeExec::new(
        name.to_owned(),
        table,
        change,
    )))
}

/// `expr` with each encoded column read as its declared type.
fn decode_columns(expr: Expr, encoded: &HashMap<String, (DataType, DataType)>) -> DfResult<Expr> {
    expr.transform_up(|e| match &e {
        Expr::Column(column) => match encoded.get(&column.name) {
            Some((declared, _)) => Ok(Transformed::yes(cast(e, declared.clone()))),
            None => Ok(Transformed::no(e)),
        },
        _ => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

/// deltalake 1.1 records decimal file statistics through `f64` (`writer/stats.rs`) and skips
/// files by them, so a condition on a decimal of more than 15 digits (also `BIGINT UNSIGNED`,
/// stored as `DECIMAL(20, 0)`) could miss rows whose value the rounded bounds exclude: such a
/// condition is refused. Names the column.
fn wide_decimal(filter: &Expr, storage: &Schema) -> Option<String> {
    filter.column_refs().into_iter().find_map(|column| {
        let field = storage.field_with_name(&column.name).ok()?;
        matches!(field.data_type(), DataType::Decimal128(p, _) if *p > 15).then(|| {
            format!(
                "column \"{}\" (a decimal of more than 15 digits, whose Delta statistics are rounded)",
                column.name
            )
        })
    })
}

/// deltalake writes a condition into its commit as SQL text and fails on literals it has no
/// text for (times, durations, intervals), also after folding a cast of one: such a condition,
/// or one on a column of such a type, is refused up front. Names what it found.
fn literal_only_type(
    filter: &Expr,
    encoded: &HashMap<String, (DataType, DataType)>,
) -> Option<String> {
    let unwritable = |t: &DataType| {
        matches!(
            t,
            DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Duration(_)
                | DataType::Interval(_)
        )
    };
    let mut found = None;
    let _ = filter.apply(|e| {
        match e {
            Expr::Column(column) => {
                if let Some((declared, _)) = encoded.get(&column.name)
                    && unwritable(declared)
                {
                    found = Some(format!("column \"{}\" of type {declared}", column.name));
                }
            }
            Expr::Literal(value, _) if unwritable(&value.data_type()) => {
                found = Some(format!("a {} value", value.data_type()));
            }
            _ => {}
        }
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Applies a [`Change`] to a Delta table when executed; one partition, one `count` row.
pub(crate) struct DeltaChangeExec {
    name: String,
    table: DeltaTable,
    change: Change,
    properties: Arc<PlanProperties>,
}

impl DeltaChangeExec {
    fn new(name: String, table: DeltaTable, change: Change) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            name,
            table,
            change,
            properties,
        }
    }
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

impl fmt::Debug for DeltaChangeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaChangeExec")
            .field("table", &self.name)
            .field("change", &self.change)
            .finish()
    }
}

impl DisplayAs for DeltaChangeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.change {
            Change::Delete { filters } => {
                write!(f, "DeltaChangeExec: delete from {}", self.name)?;
                write_filters(f, filters)
            }
            Change::Update {
                assignments,
                filters,
            } => {
                write!(f, "DeltaChangeExec: update {} set ", self.name)?;
                let sets: Vec<String> = assignments
                    .iter()
                    .map(|(c, e)| format!("{c} = {e}"))
                    .collect();
                write!(f, "{}", sets.join(", "))?;
                write_filters(f, filters)
            }
        }
    }
}

fn write_filters(f: &mut fmt::Formatter<'_>, filters: &[Expr]) -> fmt::Result {
    if let Some(predicate) = conjunction(filters.iter().cloned()) {
        write!(f, " where {predicate}")?;
    }
    Ok(())
}

impl ExecutionPlan for DeltaChangeExec {
    fn name(&self) -> &str {
        "DeltaChangeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "DeltaChangeExec has no children".to_owned(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "DeltaChangeExec has one partition, asked for {partition}"
            )));
        }
        let work = apply(self.name.clone(), self.table.clone(), self.change.clone());
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            count_schema(),
            futures::stream::once(work),
        )))
    }
}

async fn apply(name: String, mut table: DeltaTable, change: Change) -> DfResult<RecordBatch> {
    let delta_error = |e: deltalake::DeltaTableError| user_error(&name, e);
    // The provider's snapshot was taken when the statement was planned, before the table's
    // write lock (`Catalog::lock_table_writes`) was held; the change applies to the latest
    // version, so writes queued behind one another do not conflict.
    table.update_state().await.map_err(delta_error)?;
    let before = total_rows(&table);
    let changed = match change {
        Change::Delete { filters } => {
            let mut builder = table.delete();
            if let Some(predicate) = conjunction(filters) {
                builder = builder.with_predicate(predicate);
            }
            let (after, metrics) = builder.await.map_err(delta_error)?;
            // A file dropped whole by its statistics has no deleted-row count in the metrics;
            // the table's row counts before and after give it (writes to the table are
            // serialised, so nothing else changed it in between).
            match (before, total_rows(&after)) {
                (Some(before), Some(after)) => before.saturating_sub(after),
                _ => metrics.num_deleted_rows.unwrap_or_default() as u64,
            }
        }
        Change::Update {
            assignments,
            filters,
        } => {
            let mut builder = table.update();
            if let Some(predicate) = conjunction(filters) {
                builder = builder.with_predicate(predicate);
            }
            for (column, expr) in assignments {
                // A column, not a name to parse: `"a.b"` is one column.
                builder = builder.with_update(Column::new_unqualified(column), expr);
            }
            let (_, metrics) = builder.await.map_err(delta_error)?;
            metrics.num_updated_rows as u64
        }
    };
    Ok(RecordBatch::try_new(
        count_schema(),
        vec![Arc::new(UInt64Array::from(vec![changed]))],
    )?)
}

/// deltalake reports a user's mistake inside its own error text; the two a statement can make
/// in its values, and a conflicting commit by another process, get their Postgres wording
/// (and so their SQLSTATE: 23502, 22012, 40001).
fn user_error(name: &str, error: deltalake::DeltaTableError) -> DataFusionError {
    let text = error.to_string();
    if text.contains("failed validation check") {
        DataFusionError::Execution(format!(
            "null value violates not-null constraint of table \"{name}\""
        ))
    } else if text.to_ascii_lowercase().contains("concurrent") {
        DataFusionError::Execution(format!(
            "could not serialize access due to concurrent update of table \"{name}\""
        ))
    } else if text.contains("DivideByZero") || text.contains("Divide by zero") {
        DataFusionError::Execution("division by zero".to_owned())
    } else {
        DataFusionError::from(crate::error::Error::delta(name, error))
    }
}

/// Rows in the table's snapshot, when every file's count is known.
fn total_rows(table: &DeltaTable) -> Option<u64> {
    let state = table.snapshot().ok()?;
    let files = state.snapshot().try_log_data().ok()?;
    files
        .iter()
        .map(|file| file.num_records().and_then(|n| u64::try_from(n).ok()))
        .sum()
}
