//! TPC-H data generation: the eight tables as Parquet files (`<table>.parquet`), produced by
//! `tpchgen` straight into Arrow batches. Column names and types are `tpchgen-arrow`'s, which
//! follow the TPC-H specification (`l_orderkey`, `o_orderdate`, ...).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, bail, ensure};
use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow,
    RecordBatchIterator, RegionArrow, SupplierArrow,
};

/// The TPC-H tables, largest first so parallel generation finishes the long ones early.
pub const TABLES: [&str; 8] = [
    "lineitem", "orders", "partsupp", "part", "customer", "supplier", "nation", "region",
];

/// What [`generate`] wrote for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub table: &'static str,
    pub rows: u64,
    pub bytes: u64,
    pub path: PathBuf,
}

/// Writes every TPC-H table at scale factor `scale` to `output/<table>.parquet`
/// (zstd-compressed), creating `output` if needed and replacing existing files. Tables are
/// generated in parallel, one per core. Returns one summary per table, in [`TABLES`] order.
pub fn generate(scale: f64, output: &Path) -> anyhow::Result<Vec<TableSummary>> {
    ensure!(
        scale.is_finite() && scale > 0.0,
        "scale factor must be a positive number, got {scale}"
    );
    fs::create_dir_all(output)
        .with_context(|| format!("create output directory {}", output.display()))?;

    let pending = Mutex::new(TABLES.iter().copied());
    let results = Mutex::new(Vec::with_capacity(TABLES.len()));
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(TABLES.len());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = pending.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(table) = next else { break };
                    let result = generate_table(table, scale, output);
                    let failed = result.is_err();
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((table, result));
                    if failed {
                        break;
                    }
                }
            });
        }
    });

    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(table, _)| TABLES.iter().position(|t| t == table));
    results.into_iter().map(|(_, result)| result).collect()
}

fn generate_table(table: &'static str, scale: f64, output: &Path) -> anyhow::Result<TableSummary> {
    let path = output.join(format!("{table}.parquet"));
    // tpchgen splits a table into `part_count` parts; one part is the whole table.
    let (part, parts) = (1, 1);
    let rows = match table {
        "lineitem" => write_parquet(
            LineItemArrow::new(LineItemGenerator::new(scale, part, parts)),
            &path,
        ),
        "orders" => write_parquet(
            OrderArrow::new(OrderGenerator::new(scale, part, parts)),
            &path,
        ),
        "partsupp" => write_parquet(
            PartSuppArrow::new(PartSuppGenerator::new(scale, part, parts)),
            &path,
        ),
        "part" => write_parquet(
            PartArrow::new(PartGenerator::new(scale, part, parts)),
            &path,
        ),
        "customer" => write_parquet(
            CustomerArrow::new(CustomerGenerator::new(scale, part, parts)),
            &path,
        ),
        "supplier" => write_parquet(
            SupplierArrow::new(SupplierGenerator::new(scale, part, parts)),
            &path,
        ),
        "nation" => write_parquet(
            NationArrow::new(NationGenerator::new(scale, part, parts)),
            &path,
        ),
        "region" => write_parquet(
            RegionArrow::new(RegionGenerator::new(scale, part, parts)),
            &path,
        ),
        other => bail!("unknown TPC-H table \"{other}\""),
    }
    .with_context(|| format!("write TPC-H table \"{table}\" to {}", path.display()))?;
    let bytes = fs::metadata(&path)
        .with_context(|| format!("stat {}", path.display()))?
        .len();
    Ok(TableSummary {
        table,
        rows,
        bytes,
        path,
    })
}

/// Streams `batches` into a Parquet file at `path`, written under a temporary name and renamed
/// into place so a crash never leaves a truncated file that looks complete.
fn write_parquet(batches: impl RecordBatchIterator, path: &Path) -> anyhow::Result<u64> {
    let temporary = path.with_extension("parquet.partial");
    let file =
        File::create(&temporary).with_context(|| format!("create {}", temporary.display()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(batches.schema()), Some(properties))?;
    let mut rows = 0u64;
    for batch in batches {
        rows += batch_rows(&batch);
        writer.write(&batch)?;
    }
    writer.close()?;
    fs::rename(&temporary, path)
        .with_context(|| format!("rename {} to {}", temporary.display(), path.display()))?;
    Ok(rows)
}

fn batch_rows(batch: &RecordBatch) -> u64 {
    u64::try_from(batch.num_rows()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    #[test]
    fn generates_every_table_with_tpch_column_names() {
        let dir = tempfile::tempdir().expect("create temporary directory");
        let summaries = generate(0.001, dir.path()).expect("generate TPC-H at SF 0.001");
        let tables: Vec<_> = summaries.iter().map(|s| s.table).collect();
        assert_eq!(tables, TABLES);

        let rows = |table: &str| {
            summaries
                .iter()
                .find(|s| s.table == table)
                .map(|s| s.rows)
                .expect("table summarised")
        };
        assert_eq!(rows("nation"), 25);
        assert_eq!(rows("region"), 5);
        assert_eq!(rows("supplier"), 10);
        assert_eq!(rows("customer"), 150);
        assert_eq!(rows("orders"), 1_500);
        assert!(rows("lineitem") > rows("orders"));

        for summary in &summaries {
            assert_eq!(
                summary.path,
                dir.path().join(format!("{}.parquet", summary.table))
            );
            let file = File::open(&summary.path).expect("open generated file");
            let reader = SerializedFileReader::new(file).expect("valid parquet");
            let metadata = reader.metadata();
            let written: i64 = metadata.row_groups().iter().map(|g| g.num_rows()).sum();
            assert_eq!(u64::try_from(written).expect("row count"), summary.rows);
        }

        let lineitem = File::open(dir.path().join("lineitem.parquet")).expect("open lineitem");
        let reader = SerializedFileReader::new(lineitem).expect("valid parquet");
        let schema = reader.metadata().file_metadata().schema_descr();
        assert_eq!(schema.column(0).name(), "l_orderkey");
        let column = reader.metadata().row_group(0).column(0);
        assert!(matches!(column.compression(), Compression::ZSTD(_)));
    }

    #[test]
    fn rejects_nonpositive_scale() {
        let dir = tempfile::tempdir().expect("create temporary directory");
        assert!(generate(0.0, dir.path()).is_err());
        assert!(generate(f64::NAN, dir.path()).is_err());
    }
}
