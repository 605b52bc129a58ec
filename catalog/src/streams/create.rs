//! `CREATE TABLE ... APPEND ONLY`: validates the definition and its `WITH (...)` options,
//! creates the empty Delta lake and records the table (and its dead-letter table).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::ddl::{RelationName, create_empty_delta, path_component};
use crate::delta_types::delta_compatible_schema;
use crate::error::{Error, Result};
use crate::model::{
    ColumnEntry, OnError, RelationEntry, RelationKind, StreamSpec, TimePartitioning,
};
use crate::store::Catalog;

/// Default time between compaction rounds.
const DEFAULT_COMPACTION_INTERVAL_MS: u64 = 10_000;
/// Most shards a table may ask for.
const MAX_SHARDS: u32 = 64;

/// A streaming table as the DDL states it.
#[derive(Debug, Clone)]
pub struct StreamDefinition {
    pub columns: Vec<ColumnEntry>,
    /// `WATERMARK FOR <column> AS <expr>`.
    pub watermark: Option<(String, String)>,
    /// `WITH (key = 'value', ...)`, keys lower-cased.
    pub options: Vec<(String, String)>,
}

impl Catalog {
    /// Creates streaming table `target`; with `on_error = 'dead_letter'` also its dead-letter
    /// table `<name>_dead_letter`.
    pub async fn create_stream_table(
        &self,
        target: &RelationName,
        definition: &StreamDefinition,
        if_not_exists: bool,
    ) -> Result<()> {
        let snapshot = self.snapshot();
        if snapshot.schema(&target.database, &target.schema).is_none() {
            return Err(Error::NotFound {
                kind: "schema",
                name: target.schema.clone(),
            });
        }
        if snapshot
            .relation(&target.database, &target.schema, &target.name)
            .is_some()
        {
            if if_not_exists {
                return Ok(());
            }
            return Err(Error::AlreadyExists {
                kind: "relation",
                name: target.to_string(),
            });
        }
        let mut spec = parse_options(&definition.options)?;
        // Shards live on the executors that can hold them; without the option, one per node.
        let nodes = self.shard_nodes();
        if !nodes.is_empty() {
            if !definition.options.iter().any(|(key, _)| key == "shards") {
                spec.shards = u32::try_from(nodes.len()).unwrap_or(1).clamp(1, MAX_SHARDS);
            }
            spec.nodes = super::placement::place(spec.shards, &nodes);
        }
        let schema = delta_compatible_schema(&crate::model::schema_of(&definition.columns), true)?;
        if let Some((column, expression)) = &definition.watermark {
            let field = schema.field_with_name(column).map_err(|_| {
                Error::Unsupported(format!(
                    "WATERMARK FOR \"{column}\": the table has no such column"
                ))
            })?;
            if !matches!(
                field.data_type(),
                DataType::Timestamp(..) | DataType::Date32
            ) {
                return Err(Error::Unsupported(format!(
                    "WATERMARK FOR \"{column}\": column has type {}, expected a timestamp",
                    field.data_type()
                )));
            }
            spec.event_time = Some(column.clone());
            spec.watermark = Some(expression.clone());
        }
        if spec.retention_secs.is_some() && spec.event_time.is_none() {
            return Err(Error::Unsupported(
                "option \"retention\" needs an event-time column: add WATERMARK FOR <column> AS ..."
                    .to_owned(),
            ));
        }
        let dead_letter = (spec.on_error == OnError::DeadLetter).then(|| RelationName {
            name: format!("{}_dead_letter", target.name),
            ..target.clone()
        });
        if let Some(name) = &dead_letter {
            if snapshot
                .relation(&name.database, &name.schema, &name.name)
                .is_some()
            {
                return Err(Error::AlreadyExists {
                    kind: "relation",
                    name: name.to_string(),
                });
            }
            spec.dead_letter = Some(name.name.clone());
        }
        let mut created = Vec::new();
        let result = async {
            if let Some(name) = &dead_letter {
                let entry = self
                    .new_stream_entry(name, &dead_letter_schema(), dead_letter_spec())
                    .await?;
                created.push(entry);
            }
            created.push(self.new_stream_entry(target, &schema, spec).await?);
            let entries = created.clone();
            self.update(|state| {
                for entry in &entries {
                    if state
                        .relation(&entry.database, &entry.schema, &entry.name)
                        .is_some()
                    {
                        return Err(Error::AlreadyExists {
                            kind: "relation",
                            name: format!("{}.{}", entry.schema, entry.name),
                        });
                    }
                }
                state.relations.extend(entries);
                Ok(())
            })
            .await
        }
        .await;
        if let Err(error) = result {
            for entry in created {
                if let RelationKind::Stream(spec) = &entry.kind {
                    self.remove_stream_files(&spec.path);
                }
            }
            return Err(error);
        }
        Ok(())
    }

    /// Allocates an OID and creates the empty lake of a new streaming table; the entry is not
    /// recorded yet.
    async fn new_stream_entry(
        &self,
        target: &RelationName,
        schema: &Schema,
        mut spec: StreamSpec,
    ) -> Result<RelationEntry> {
        let oid = self.update(|s| Ok(s.allocate_oid())).await?;
        spec.path = format!(
            "streams/{}/{}/{}_{oid}",
            path_component(&target.database),
            path_component(&target.schema),
            path_component(&target.name)
        );
        // The table's own directory (its log) is always local; its lake may be in a bucket.
        let dir = self.data_dir().join(&spec.path);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let url =
            crate::tables::managed_table_url(self.lake_root(), &format!("{}/lake", spec.path))?;
        if let Ok(lake) = url.to_file_path() {
            std::fs::create_dir_all(&lake)
                .map_err(|e| Error::io(format!("create {}", lake.display()), e))?;
        }
        create_empty_delta(&url, Arc::new(schema.clone()), target).await?;
        let since = std::time::UNIX_EPOCH;
        tokio::task::spawn_blocking(move || crate::durability::sync_tree_since(&dir, since))
            .await
            .map_err(|e| Error::io("fsync new table", std::io::Error::other(e)))??;
        Ok(RelationEntry {
            oid,
            database: target.database.clone(),
            schema: target.schema.clone(),
            name: target.name.clone(),
            kind: RelationKind::Stream(spec),
            columns: crate::model::columns_of(schema),
        })
    }
}

/// The `WITH (...)` options of a streaming table.
fn parse_options(options: &[(String, String)]) -> Result<StreamSpec> {
    let mut spec = base_spec();
    for (key, value) in options {
        let bad = |expected: &str| {
            Error::Unsupported(format!(
                "invalid value '{value}' for option \"{key}\": expected {expected}"
            ))
        };
        match key.as_str() {
            "shards" => {
                spec.shards = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SHARDS).contains(n))
                    .ok_or_else(|| bad(&format!("an integer from 1 to {MAX_SHARDS}")))?;
            }
            "on_error" => {
                spec.on_error = match value.to_ascii_lowercase().as_str() {
                    "reject" | "abort" => OnError::Reject,
                    "dead_letter" => OnError::DeadLetter,
                    _ => return Err(bad("'reject' or 'dead_letter'")),
                };
            }
            "partition_by" => {
                spec.partition_by = match value.to_ascii_lowercase().as_str() {
                    "none" => TimePartitioning::None,
                    "hour" => TimePartitioning::Hour,
                    "day" => TimePartitioning::Day,
                    _ => return Err(bad("'hour', 'day' or 'none'")),
                };
            }
            "compaction_interval" => {
                spec.compaction_interval_ms = parse_duration_ms(value)
                    .filter(|ms| *ms >= 10)
                    .ok_or_else(|| bad("a duration of at least 10ms, e.g. '10s' or '500ms'"))?;
            }
            "log_memory_limit" => {
                spec.log_memory_limit = Some(
                    parse_bytes(value)
                        .filter(|b| *b >= 64 * 1024)
                        .ok_or_else(|| bad("a size of at least 64KB, e.g. '256MB'"))?,
                );
            }
            "retention" => {
                spec.retention_secs = Some(
                    parse_duration_ms(value)
                        .map(|ms| ms / 1000)
                        .filter(|secs| *secs >= 1)
                        .ok_or_else(|| bad("a duration of at least 1s, e.g. '7 days' or '24h'"))?,
                );
            }
            "append_only" => {}
            other => {
                return Err(Error::Unsupported(format!(
                    "unknown option \"{other}\" for a streaming table; known: shards, on_error, \
                     partition_by, compaction_interval, log_memory_limit, retention"
                )));
            }
        }
    }
    Ok(spec)
}

/// `'10s'`, `'500ms'`, `'2min'`, `'1h'` or a number of milliseconds.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// `'64MB'`, `'1GiB'`, `'512kB'` or a number of bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

fn dead_letter_schema() -> Schema {
    Schema::new(vec![
        Field::new(
            "received_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("source", DataType::Utf8, false),
        Field::new("row_number", DataType::Int64, true),
        Field::new("column_name", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ])
}

fn dead_letter_spec() -> StreamSpec {
    StreamSpec {
        event_time: Some("received_at".to_owned()),
        ..base_spec()
    }
}

/// A streaming table with every option at its default.
fn base_spec() -> StreamSpec {
    StreamSpec {
        path: String::new(),
        event_time: None,
        watermark: None,
        shards: 1,
        on_error: OnError::Reject,
        partition_by: TimePartitioning::Day,
        compaction_interval_ms: DEFAULT_COMPACTION_INTERVAL_MS,
        retention_secs: None,
        dead_letter: None,
        log_memory_limit: None,
        nodes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10s"), Some(10_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("2 min"), Some(120_000));
        assert_eq!(parse_duration_ms("250"), Some(250));
        assert_eq!(parse_duration_ms("ten"), None);
        assert_eq!(parse_duration_ms("7 days"), Some(7 * 86_400_000));
        assert_eq!(parse_bytes("64MB"), Some(64 << 20));
        assert_eq!(parse_bytes("1 GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn options_are_checked() {
        let spec = parse_options(&[
            ("shards".into(), "4".into()),
            ("on_error".into(), "dead_letter".into()),
            ("partition_by".into(), "hour".into()),
        ])
        .expect("valid options");
        assert_eq!(spec.shards, 4);
        assert_eq!(spec.on_error, OnError::DeadLetter);
        assert_eq!(spec.partition_by, TimePartitioning::Hour);
        assert!(parse_options(&[("shards".into(), "0".into())]).is_err());
        assert!(parse_options(&[("colour".into(), "red".into())]).is_err());
    }
}
