//! Change feeds: what one epoch changed in a view, as rows deleted and rows inserted, for
//! `SUBSCRIBE` and the HTTP event stream. Updates of a group are a delete of its old row and
//! an insert of its new one; rows that did not change are left out.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::compute::interleave;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::error::Result as DfResult;

/// One epoch's changes to one view.
#[derive(Debug)]
pub(crate) struct Changes {
    pub(crate) epoch: u64,
    pub(crate) deletes: Vec<RecordBatch>,
    pub(crate) inserts: Vec<RecordBatch>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.deletes
            .iter()
            .chain(&self.inserts)
            .all(|b| b.num_rows() == 0)
    }
}

/// The multiset difference between `old` and `new` rows: rows only in `old` (as many times
/// as they are there more often) and rows only in `new`.
pub(super) fn diff(
    schema: &SchemaRef,
    old: &[RecordBatch],
    new: &[RecordBatch],
) -> DfResult<(Vec<RecordBatch>, Vec<RecordBatch>)> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    let Ok(converter) = RowConverter::new(fields) else {
        // A type rows cannot be compared in: everything old goes, everything new comes.
        return Ok((old.to_vec(), new.to_vec()));
    };
    let old_rows = old
        .iter()
        .map(|b| converter.convert_columns(b.columns()))
        .collect::<Result<Vec<_>, _>>()?;
    let new_rows = new
        .iter()
        .map(|b| converter.convert_columns(b.columns()))
        .collect::<Result<Vec<_>, _>>()?;
    // Per distinct row: how many more times it is in `new` than in `old`.
    let mut balance: HashMap<&[u8], i64> = HashMap::new();
    for rows in &old_rows {
        for row in rows.iter() {
            *balance.entry(row.data()).or_default() -= 1;
        }
    }
    for rows in &new_rows {
        for row in rows.iter() {
            *balance.entry(row.data()).or_default() += 1;
        }
    }
    let mut pick = |all: &[arrow::row::Rows], sign: i64| {
        let mut picked = Vec::new();
        for (batch, rows) in all.iter().enumerate() {
            for (index, row) in rows.iter().enumerate() {
                if let Some(left) = balance.get_mut(row.data())
                    && *left * sign > 0
                {
                    *left -= sign;
                    picked.push((batch, index));
                }
            }
        }
        picked
    };
    let deletes = pick(&old_rows, -1);
    let inserts = pick(&new_rows, 1);
    Ok((
        gather(schema, old, &deletes)?,
        gather(schema, new, &inserts)?,
    ))
}

fn gather(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    picked: &[(usize, usize)],
) -> DfResult<Vec<RecordBatch>> {
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let columns = (0..schema.fields().len())
        .map(|column| {
            let arrays: Vec<&dyn Array> =
                batches.iter().map(|b| b.column(column).as_ref()).collect();
            interleave(&arrays, picked)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![RecordBatch::try_new(Arc::clone(schema), columns)?])
}
