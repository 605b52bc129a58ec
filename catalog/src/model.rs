//! The catalog's persistent model: what `catalog.json` holds. Plain data, no behaviour beyond
//! lookups, so a snapshot can be handed to readers (pg_catalog, planners) without locks.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Postgres object identifier. Stable across restarts: assigned once and persisted.
pub type Oid = u32;

/// First OID handed to user objects, as in PostgreSQL (`FirstNormalObjectId`).
pub const FIRST_USER_OID: Oid = 16384;

/// The one database every cluster has.
pub const DEFAULT_DATABASE: &str = "basin";
/// The schema unqualified names resolve to.
pub const DEFAULT_SCHEMA: &str = "public";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatabaseEntry {
    pub oid: Oid,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchemaEntry {
    pub oid: Oid,
    pub database: String,
    pub name: String,
}

/// File format of an external (lake) table.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Csv,
    Json,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
        }
    }
}

/// What a relation is and where its rows come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RelationKind {
    /// Files in a lake that Basin reads but does not own.
    External {
        location: String,
        format: FileFormat,
        /// Hive-style partition columns (`PARTITIONED BY`), in path order.
        partition_columns: Vec<String>,
        /// `OPTIONS (...)` as given, e.g. `format.has_header`.
        options: BTreeMap<String, String>,
    },
    /// A Delta Lake table under the data directory that Basin writes.
    Managed {
        /// Path relative to the data directory.
        path: String,
    },
    /// A view: the SQL text is planned when the view is used, resolving unqualified names in
    /// the schema that was the default when the view was created (as Postgres binds them then).
    View {
        sql: String,
        #[serde(default)]
        default_schema: Option<String>,
    },
    /// A streaming table (`CREATE TABLE ... APPEND ONLY`): appends land in a sharded,
    /// group-committed log and are compacted into a Delta table under the data directory.
    Stream(StreamSpec),
    /// A materialized view: the coordinator keeps its rows current as its inputs change, one
    /// epoch at a time, and checkpoints its state under the data directory.
    MaterializedView(MaterializedViewSpec),
}

/// What `CREATE MATERIALIZED VIEW` recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaterializedViewSpec {
    /// The defining query, planned when the view is (re)started.
    pub sql: String,
    /// The schema unqualified names resolve in, as for views.
    #[serde(default)]
    pub default_schema: Option<String>,
    /// `WITH (...)` options as given (validated at CREATE).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// What happens to a row that does not fit the table's schema.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The whole request (batch) is refused, naming the first bad row and column.
    #[default]
    Reject,
    /// Bad rows go to the table's dead-letter table `<name>_dead_letter`; the rest is appended.
    DeadLetter,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Reject => "reject",
            OnError::DeadLetter => "dead_letter",
        }
    }
}

/// How compacted files are laid out by event time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimePartitioning {
    /// One file per compaction round, sorted by event time.
    None,
    Hour,
    #[default]
    Day,
}

impl TimePartitioning {
    pub fn as_str(self) -> &'static str {
        match self {
            TimePartitioning::None => "none",
            TimePartitioning::Hour => "hour",
            TimePartitioning::Day => "day",
        }
    }

    /// Width of one partition in microseconds.
    pub fn width_micros(self) -> Option<i64> {
        match self {
            TimePartitioning::None => None,
            TimePartitioning::Hour => Some(3_600_000_000),
            TimePartitioning::Day => Some(86_400_000_000),
        }
    }
}

/// The definition of a streaming table, as `CREATE TABLE ... APPEND ONLY WITH (...)` gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamSpec {
    /// Directory relative to the data directory; holds `log/shard-<k>/` and `lake/` (Delta).
    pub path: String,
    /// The event-time column (`WATERMARK FOR <column>`), used to sort and partition files.
    pub event_time: Option<String>,
    /// The watermark expression as written, e.g. `ts - INTERVAL '5 seconds'`.
    pub watermark: Option<String>,
    /// Number of log shards appends are spread over.
    pub shards: u32,
    pub on_error: OnError,
    pub partition_by: TimePartitioning,
    /// How often the compactor moves the log into the lake, in milliseconds.
    pub compaction_interval_ms: u64,
    /// Compacted rows whose event time is older than this are deleted (`retention`).
    pub retention_secs: Option<u64>,
    /// The dead-letter table's name when `on_error = 'dead_letter'`.
    #[serde(default)]
    pub dead_letter: Option<String>,
    /// Log memory (rows not yet compacted) above which ingest waits or is refused
    /// (`log_memory_limit`); the default when absent.
    #[serde(default)]
    pub log_memory_limit: Option<u64>,
    /// Per shard, the executor node holding its log; empty (or an empty name) means the
    /// coordinator's data directory.
    #[serde(default)]
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnEntry {
    pub name: String,
    /// Stored as Arrow's own type syntax (`Decimal128(15, 2)`), which round-trips through
    /// `Display`/`FromStr` without needing arrow's serde feature.
    #[serde(with = "data_type_text")]
    pub data_type: DataType,
    pub nullable: bool,
}

impl ColumnEntry {
    pub fn from_field(field: &Field) -> Self {
        Self {
            name: field.name().clone(),
            data_type: field.data_type().clone(),
            nullable: field.is_nullable(),
        }
    }

    pub fn to_field(&self) -> Field {
        Field::new(&self.name, self.data_type.clone(), self.nullable)
    }
}

/// Columns as the catalog stores them, from an Arrow schema.
pub fn columns_of(schema: &Schema) -> Vec<ColumnEntry> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnEntry::from_field(f))
        .collect()
}

/// The Arrow schema of stored columns.
pub fn schema_of(columns: &[ColumnEntry]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(ColumnEntry::to_field)
            .collect::<Vec<_>>(),
    )
}

mod data_type_text {
    use arrow::datatypes::DataType;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(value: &DataType, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DataType, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<DataType>()
            .map_err(|e| D::Error::custom(format!("invalid column type {text:?}: {e}")))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RelationEntry {
    pub oid: Oid,
    pub database: String,
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    pub columns: Vec<ColumnEntry>,
}

impl RelationEntry {
    /// Postgres `relkind`: 'r' table, 'v' view, 'm' materialized view. Streaming tables are
    /// tables to clients.
    pub fn relkind(&self) -> char {
        match self.kind {
            RelationKind::View { .. } => 'v',
            RelationKind::MaterializedView(_) => 'm',
            RelationKind::External { .. }
            | RelationKind::Managed { .. }
            | RelationKind::Stream(_) => 'r',
        }
    }

    /// What `basin.tables` calls this relation.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RelationKind::View { .. } => "view",
            RelationKind::MaterializedView(_) => "materialized view",
            RelationKind::External { .. } => "external",
            RelationKind::Managed { .. } => "managed",
            RelationKind::Stream(_) => "streaming",
        }
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(schema_of(&self.columns))
    }
}

/// Everything the catalog knows, as persisted. Cheap to clone into an immutable snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogState {
    /// Bumped on every change; lets caches know they are stale.
    pub version: u64,
    pub next_oid: Oid,
    pub databases: Vec<DatabaseEntry>,
    pub schemas: Vec<SchemaEntry>,
    pub relations: Vec<RelationEntry>,
    /// Where Basin-managed tables and streaming-table lakes live when not under the data
    /// directory (`--data-url s3://bucket/prefix/`); recorded at first use so a restart with
    /// another URL cannot lose track of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_url: Option<String>,
}

impl CatalogState {
    /// A fresh cluster: database `basin` with schema `public`.
    pub fn bootstrap() -> Self {
        let mut state = Self {
            version: 0,
            next_oid: FIRST_USER_OID,
            databases: Vec::new(),
            schemas: Vec::new(),
            relations: Vec::new(),
            data_url: None,
        };
        let db_oid = state.allocate_oid();
        state.databases.push(DatabaseEntry {
            oid: db_oid,
            name: DEFAULT_DATABASE.to_owned(),
        });
        let schema_oid = state.allocate_oid();
        state.schemas.push(SchemaEntry {
            oid: schema_oid,
            database: DEFAULT_DATABASE.to_owned(),
            name: DEFAULT_SCHEMA.to_owned(),
        });
        state
    }

    pub fn allocate_oid(&mut self) -> Oid {
        let oid = self.next_oid;
        self.next_oid += 1;
        oid
    }

    pub fn schema(&self, database: &str, schema: &str) -> Option<&SchemaEntry> {
        self.schemas
            .iter()
            .find(|s| s.database == database && s.name == schema)
    }

    pub fn relation(&self, database: &str, schema: &str, name: &str) -> Option<&RelationEntry> {
        self.relations
            .iter()
            .find(|r| r.database == database && r.schema == schema && r.name == name)
    }

    pub fn relations_in<'a>(
        &'a self,
        database: &'a str,
        schema: &'a str,
    ) -> impl Iterator<Item = &'a RelationEntry> + 'a {
        self.relations
            .iter()
            .filter(move |r| r.database == database && r.schema == schema)
    }
}
