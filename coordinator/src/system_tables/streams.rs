//! `basin.tables` (every relation, with streaming-table settings) and `basin.ingest_stats`
//! (per streaming table: ingest rates, log size, compaction lag, rejected rows).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use basin_catalog::Catalog;
use basin_catalog::model::RelationKind;

use super::{LiveTable, RowsFn};

pub(super) fn tables_table(catalog: Arc<Catalog>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("columns", DataType::Int32, false),
        Field::new("event_time", DataType::Utf8, true),
        Field::new("watermark", DataType::Utf8, true),
        Field::new("shards", DataType::Int32, true),
        // Per shard, the executor node holding it; null while all live on the coordinator.
        Field::new("shard_nodes", DataType::Utf8, true),
        Field::new("on_error", DataType::Utf8, true),
        Field::new("partition_by", DataType::Utf8, true),
        Field::new("compaction_interval_ms", DataType::Int64, true),
    ]));
    let rows_schema = Arc::clone(&schema);
    let rows: RowsFn = Arc::new(move || {
        let snapshot = catalog.snapshot();
        let mut schema_name = StringBuilder::new();
        let mut table_name = StringBuilder::new();
        let mut kind = StringBuilder::new();
        let mut columns = Int32Builder::new();
        let mut event_time = StringBuilder::new();
        let mut watermark = StringBuilder::new();
        let mut shards = Int32Builder::new();
        let mut shard_nodes = StringBuilder::new();
        let mut on_error = StringBuilder::new();
        let mut partition_by = StringBuilder::new();
        let mut interval = Int64Builder::new();
        for entry in &snapshot.relations {
            schema_name.append_value(&entry.schema);
            table_name.append_value(&entry.name);
            kind.append_value(entry.kind_name());
            columns.append_value(i32::try_from(entry.columns.len()).unwrap_or(i32::MAX));
            match &entry.kind {
                RelationKind::Stream(spec) => {
                    event_time.append_option(spec.event_time.as_deref());
                    watermark.append_option(spec.watermark.as_deref());
                    shards.append_value(i32::try_from(spec.shards).unwrap_or(i32::MAX));
                    shard_nodes
                        .append_option((!spec.nodes.is_empty()).then(|| spec.nodes.join(",")));
                    on_error.append_value(spec.on_error.as_str());
                    partition_by.append_value(spec.partition_by.as_str());
                    interval.append_value(
                        i64::try_from(spec.compaction_interval_ms).unwrap_or(i64::MAX),
                    );
                }
                _ => {
                    event_time.append_null();
                    watermark.append_null();
                    shards.append_null();
                    shard_nodes.append_null();
                    on_error.append_null();
                    partition_by.append_null();
                    interval.append_null();
                }
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(schema_name.finish()),
            Arc::new(table_name.finish()),
            Arc::new(kind.finish()),
            Arc::new(columns.finish()),
            Arc::new(event_time.finish()),
            Arc::new(watermark.finish()),
            Arc::new(shards.finish()),
            Arc::new(shard_nodes.finish()),
            Arc::new(on_error.finish()),
            Arc::new(partition_by.finish()),
            Arc::new(interval.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&rows_schema), columns)?)
    });
    LiveTable { schema, rows }
}

pub(super) fn ingest_stats_table(catalog: Arc<Catalog>) -> LiveTable {
    let counters = [
        "rows_total",
        "bytes_total",
        "batches_total",
        "rejected_rows",
    ];
    let sizes = [
        "log_rows",
        "log_disk_bytes",
        "log_memory_bytes",
        "lake_rows",
        "lake_files",
        "lake_version",
        "compactions",
    ];
    let mut fields = vec![Field::new("table_name", DataType::Utf8, false)];
    fields.extend(
        counters
            .iter()
            .map(|n| Field::new(*n, DataType::Int64, false)),
    );
    fields.push(Field::new("rows_per_sec", DataType::Float64, false));
    fields.push(Field::new("bytes_per_sec", DataType::Float64, false));
    fields.extend(sizes.iter().map(|n| Field::new(*n, DataType::Int64, false)));
    fields.push(Field::new("compaction_lag_secs", DataType::Float64, false));
    fields.push(Field::new("last_compaction_error", DataType::Utf8, true));
    let schema = Arc::new(Schema::new(fields));
    let rows_schema = Arc::clone(&schema);
    let rows: RowsFn = Arc::new(move || {
        let mut tables = catalog.open_stream_tables();
        tables.sort_by(|a, b| a.name().cmp(b.name()));
        let mut name = StringBuilder::new();
        let mut ints: Vec<Int64Builder> = (0..counters.len() + sizes.len())
            .map(|_| Int64Builder::new())
            .collect();
        let mut floats: Vec<Float64Builder> = (0..3).map(|_| Float64Builder::new()).collect();
        let mut error = StringBuilder::new();
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for table in tables {
            let stats = table.stats();
            name.append_value(table.name());
            let values = [
                clamp(stats.rows_total),
                clamp(stats.bytes_total),
                clamp(stats.batches_total),
                clamp(stats.rejected_rows),
                clamp(stats.log_rows),
                clamp(stats.log_disk_bytes),
                clamp(stats.log_memory_bytes),
                clamp(stats.lake_rows),
                clamp(stats.lake_files),
                stats.lake_version,
                clamp(stats.compactions),
            ];
            for (builder, value) in ints.iter_mut().zip(values) {
                builder.append_value(value);
            }
            floats[0].append_value(stats.rows_per_sec);
            floats[1].append_value(stats.bytes_per_sec);
            floats[2].append_value(stats.compaction_lag_secs);
            error.append_option(stats.last_compaction_error.as_deref());
        }
        let mut ints = ints
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef);
        let mut floats = floats
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef);
        let mut columns: Vec<ArrayRef> = vec![Arc::new(name.finish())];
        columns.extend(ints.by_ref().take(counters.len()));
        columns.extend(floats.by_ref().take(2));
        columns.extend(ints);
        columns.extend(floats);
        columns.push(Arc::new(error.finish()));
        Ok(RecordBatch::try_new(Arc::clone(&rows_schema), columns)?)
    });
    LiveTable { schema, rows }
}
