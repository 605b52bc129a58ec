//! A catalog table is a Postgres-shaped schema plus a function that produces its rows from the
//! latest snapshot. [`SystemTable`] is the `TableProvider`: every scan calls the row function
//! again, so a table never shows a stale copy of the catalog.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_empty_array};
use arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Result, ScalarValue, internal_datafusion_err, internal_err};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::snapshot::{CatalogSource, Snapshot};
use super::types::{BuiltinType, builtin_type, builtin_type_by_name};
use super::{PG_TYPE_METADATA, REGPROC};

/// A cell as the row functions write it; converted to the column's Arrow type when the batch is
/// built, so rows need not spell out Arrow types.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

impl From<i16> for Value {
    fn from(value: i16) -> Self {
        Value::Int(value.into())
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Value::Int(value.into())
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Value::Int(value.into())
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Value::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Float(value)
    }
}

impl From<char> for Value {
    fn from(value: char) -> Self {
        Value::Text(value.to_string())
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(values: Vec<T>) -> Self {
        Value::List(values.into_iter().map(Into::into).collect())
    }
}

/// One row: the columns it sets. Columns it leaves out take their type's default
/// ([`ColumnType::default_value`]).
pub(super) type Row = Vec<(&'static str, Value)>;

/// `row!{"oid" => 16u32, "typname" => "bool"}`.
macro_rules! row {
    ($($name:literal => $value:expr),* $(,)?) => {
        vec![$(($name, $crate::pg_catalog::table::Value::from($value))),*]
    };
}
pub(super) use row;

/// Produces a table's rows from one snapshot.
pub(super) type RowsFn = fn(&Snapshot<'_>) -> Result<Vec<Row>>;

/// The Postgres column types catalog tables use, spelled as in `pg_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ColumnType {
    Bool,
    Char,
    Name,
    Text,
    Varchar,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Oid,
    Regproc,
    Regtype,
    Xid,
    Bytea,
    NodeTree,
    Timestamptz,
    Interval,
    Inet,
    Lsn,
    Aclitem,
    AnyArray,
    Numeric,
    Int2Vector,
    OidVector,
    Array(Box<ColumnType>),
}

impl ColumnType {
    /// Parses a type as written in a table spec: a `pg_type` name, `X[]`, or an
    /// information_schema domain (stored as its base type).
    pub(super) fn parse(name: &str) -> Option<Self> {
        if let Some(element) = name.strip_suffix("[]") {
            return Some(ColumnType::Array(Box::new(ColumnType::parse(element)?)));
        }
        Some(match name {
            "bool" | "yes_or_no_bool" => ColumnType::Bool,
            "char" => ColumnType::Char,
            "name" | "sql_identifier" => ColumnType::Name,
            "text" => ColumnType::Text,
            "varchar" | "character_data" | "yes_or_no" => ColumnType::Varchar,
            "int2" => ColumnType::Int2,
            "int4" | "cardinal_number" => ColumnType::Int4,
            "int8" => ColumnType::Int8,
            "float4" => ColumnType::Float4,
            "float8" => ColumnType::Float8,
            "oid" => ColumnType::Oid,
            "regproc" => ColumnType::Regproc,
            "regtype" => ColumnType::Regtype,
            "xid" => ColumnType::Xid,
            "bytea" => ColumnType::Bytea,
            "pg_node_tree" => ColumnType::NodeTree,
            "timestamptz" | "time_stamp" => ColumnType::Timestamptz,
            "interval" => ColumnType::Interval,
            "inet" => ColumnType::Inet,
            "pg_lsn" => ColumnType::Lsn,
            "aclitem" => ColumnType::Aclitem,
            "anyarray" => ColumnType::AnyArray,
            "numeric" => ColumnType::Numeric,
            "int2vector" => ColumnType::Int2Vector,
            "oidvector" => ColumnType::OidVector,
            _ => return None,
        })
    }

    /// The `pg_type` row of this column type, for `pg_attribute` of catalog tables.
    pub(super) fn pg_type(&self) -> Option<BuiltinType> {
        let name = match self {
            ColumnType::Bool => "bool",
            ColumnType::Char => "char",
            ColumnType::Name => "name",
            ColumnType::Text => "text",
            ColumnType::Varchar => "varchar",
            ColumnType::Int2 => "int2",
            ColumnType::Int4 => "int4",
            ColumnType::Int8 => "int8",
            ColumnType::Float4 => "float4",
            ColumnType::Float8 => "float8",
            ColumnType::Oid => "oid",
            ColumnType::Regproc => "regproc",
            ColumnType::Regtype => "regtype",
            ColumnType::Xid => "xid",
            ColumnType::Bytea => "bytea",
            ColumnType::NodeTree => "pg_node_tree",
            ColumnType::Timestamptz => "timestamptz",
            ColumnType::Interval => "interval",
            ColumnType::Inet => "inet",
            ColumnType::Lsn => "pg_lsn",
            ColumnType::Aclitem => "aclitem",
            ColumnType::AnyArray => "anyarray",
            ColumnType::Numeric => "numeric",
            ColumnType::Int2Vector => "int2vector",
            ColumnType::OidVector => "oidvector",
            ColumnType::Array(element) => {
                let element = element.pg_type()?;
                return builtin_type(element.array);
            }
        };
        builtin_type_by_name(name)
    }

    pub(super) fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Char
            | ColumnType::Name
            | ColumnType::Text
            | ColumnType::Varchar
            | ColumnType::NodeTree
            | ColumnType::Inet
            | ColumnType::Lsn
            | ColumnType::Aclitem
            | ColumnType::AnyArray => DataType::Utf8,
            ColumnType::Int2 => DataType::Int16,
            ColumnType::Int4 => DataType::Int32,
            ColumnType::Int8 => DataType::Int64,
            ColumnType::Float4 => DataType::Float32,
            ColumnType::Float8 => DataType::Float64,
            ColumnType::Oid | ColumnType::Regproc | ColumnType::Regtype | ColumnType::Xid => {
                DataType::UInt32
            }
            ColumnType::Bytea => DataType::Binary,
            ColumnType::Timestamptz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ColumnType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            ColumnType::Numeric => DataType::Decimal128(38, 0),
            ColumnType::Int2Vector => DataType::new_list(DataType::Int16, true),
            ColumnType::OidVector => DataType::new_list(DataType::UInt32, true),
            ColumnType::Array(element) => DataType::new_list(element.arrow_type(), true),
        }
    }

    pub(super) fn is_array(&self) -> bool {
        matches!(
            self,
            ColumnType::Array(_) | ColumnType::Int2Vector | ColumnType::OidVector
        )
    }

    /// What a row that does not set the column gets: `false` and 0 for booleans and numbers
    /// (catalog columns are NOT NULL), NULL otherwise.
    fn default_value(&self) -> Value {
        match self {
            ColumnType::Bool => Value::Bool(false),
            ColumnType::Int2
            | ColumnType::Int4
            | ColumnType::Int8
            | ColumnType::Oid
            | ColumnType::Regproc
            | ColumnType::Regtype
            | ColumnType::Xid => Value::Int(0),
            ColumnType::Float4 | ColumnType::Float8 => Value::Float(0.0),
            _ => Value::Null,
        }
    }

    fn element(&self) -> Option<ColumnType> {
        match self {
            ColumnType::Array(element) => Some((**element).clone()),
            ColumnType::Int2Vector => Some(ColumnType::Int2),
            ColumnType::OidVector => Some(ColumnType::Oid),
            _ => None,
        }
    }

    fn scalar(&self, value: &Value) -> Option<ScalarValue> {
        let data_type = self.arrow_type();
        Some(match (value, &data_type) {
            (Value::Null, _) => ScalarValue::try_new_null(&data_type).ok()?,
            (Value::Bool(b), DataType::Boolean) => ScalarValue::Boolean(Some(*b)),
            (Value::Int(i), DataType::Int16) => ScalarValue::Int16(Some(i16::try_from(*i).ok()?)),
            (Value::Int(i), DataType::Int32) => ScalarValue::Int32(Some(i32::try_from(*i).ok()?)),
            (Value::Int(i), DataType::Int64) => ScalarValue::Int64(Some(*i)),
            (Value::Int(i), DataType::UInt32) => ScalarValue::UInt32(Some(u32::try_from(*i).ok()?)),
            #[expect(clippy::cast_precision_loss, reason = "catalog counters are small")]
            (Value::Int(i), DataType::Float32) => ScalarValue::Float32(Some(*i as f32)),
            #[expect(clippy::cast_precision_loss, reason = "catalog counters are small")]
            (Value::Int(i), DataType::Float64) => ScalarValue::Float64(Some(*i as f64)),
            #[expect(clippy::cast_possible_truncation, reason = "float4 columns")]
            (Value::Float(f), DataType::Float32) => ScalarValue::Float32(Some(*f as f32)),
            (Value::Float(f), DataType::Float64) => ScalarValue::Float64(Some(*f)),
            (Value::Text(s), DataType::Utf8) => ScalarValue::Utf8(Some(s.clone())),
            (Value::Text(s), DataType::Binary) => ScalarValue::Binary(Some(s.clone().into())),
            (Value::List(values), DataType::List(field)) => {
                let element = self.element()?;
                let scalars = values
                    .iter()
                    .map(|v| element.scalar(v))
                    .collect::<Option<Vec<_>>>()?;
                ScalarValue::List(ScalarValue::new_list_nullable(&scalars, field.data_type()))
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pg_type() {
            Some(t) => f.write_str(t.name),
            None => write!(f, "{self:?}"),
        }
    }
}

/// One column of a catalog table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) column_type: ColumnType,
}

/// Parses `"oid oid, relname name, relacl aclitem[]"`.
pub(super) fn parse_columns(table: &str, spec: &str) -> Result<Vec<Column>> {
    spec.split(',')
        .map(|entry| {
            let entry = entry.trim();
            let (name, type_name) = entry.split_once(' ').ok_or_else(|| {
                internal_datafusion_err!("column spec {entry:?} of {table} has no type")
            })?;
            let column_type = ColumnType::parse(type_name.trim()).ok_or_else(|| {
                internal_datafusion_err!("column type {type_name:?} of {table} is unknown")
            })?;
            Ok(Column {
                name: name.to_owned(),
                column_type,
            })
        })
        .collect()
}

/// Static description of one catalog table (in `pg_catalog` or `information_schema`).
#[derive(Debug)]
pub(super) struct TableSpec {
    pub(super) name: &'static str,
    /// `pg_class.oid`; the OIDs PostgreSQL itself uses where clients may know them.
    pub(super) oid: u32,
    /// `r` for catalog tables, `v` for views, as `pg_class.relkind`.
    pub(super) relkind: char,
    pub(super) columns: &'static str,
    pub(super) rows: RowsFn,
}

/// A table spec with its columns parsed; built once per session.
#[derive(Debug)]
pub(super) struct SystemRelation {
    pub(super) schema: &'static str,
    pub(super) spec: &'static TableSpec,
    pub(super) columns: Vec<Column>,
    pub(super) arrow_schema: SchemaRef,
}

impl SystemRelation {
    pub(super) fn try_new(schema: &'static str, spec: &'static TableSpec) -> Result<Self> {
        let columns = parse_columns(spec.name, spec.columns)?;
        let fields = columns
            .iter()
            .map(|c| {
                let field = Field::new(&c.name, c.column_type.arrow_type(), true);
                if matches!(c.column_type, ColumnType::Regproc) {
                    // The wire shows these as function names (see `crate::pg_catalog::REGPROC`).
                    field.with_metadata(HashMap::from([(
                        PG_TYPE_METADATA.to_owned(),
                        REGPROC.to_owned(),
                    )]))
                } else {
                    field
                }
            })
            .collect::<Vec<_>>();
        Ok(Self {
            schema,
            spec,
            columns,
            arrow_schema: Arc::new(Schema::new(fields)),
        })
    }

    /// Builds the table's batch from `rows`, filling unset columns with their defaults.
    pub(super) fn batch(&self, rows: &[Row]) -> Result<RecordBatch> {
        let mut cells: Vec<Vec<Option<&Value>>> = vec![vec![None; self.columns.len()]; rows.len()];
        for (row_cells, row) in cells.iter_mut().zip(rows) {
            for (name, value) in row {
                let Some(index) = self.columns.iter().position(|c| c.name == *name) else {
                    return internal_err!(
                        "{}.{} has no column \"{name}\"",
                        self.schema,
                        self.spec.name
                    );
                };
                row_cells[index] = Some(value);
            }
        }
        let arrays = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| self.column_array(index, column, &cells))
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(
            Arc::clone(&self.arrow_schema),
            arrays,
        )?)
    }

    fn column_array(
        &self,
        index: usize,
        column: &Column,
        cells: &[Vec<Option<&Value>>],
    ) -> Result<ArrayRef> {
        if cells.is_empty() {
            return Ok(new_empty_array(&column.column_type.arrow_type()));
        }
        let default = column.column_type.default_value();
        let scalars = cells
            .iter()
            .map(|row| {
                let value = row[index].unwrap_or(&default);
                column.column_type.scalar(value).ok_or_else(|| {
                    internal_datafusion_err!(
                        "value {value:?} does not fit {}.{}.{} of type {}",
                        self.schema,
                        self.spec.name,
                        column.name,
                        column.column_type
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        ScalarValue::iter_to_array(scalars)
    }
}

/// The `TableProvider` of one catalog table.
#[derive(Debug)]
pub(super) struct SystemTable {
    /// Index of the table in the source's registry.
    relation: usize,
    schema: SchemaRef,
    table_type: TableType,
    source: Arc<CatalogSource>,
}

impl SystemTable {
    /// Table number `relation` of `source`'s registry; `None` if there is no such table.
    pub(super) fn new(relation: usize, source: &Arc<CatalogSource>) -> Option<Self> {
        let registered = source.registry().get(relation)?;
        Some(Self {
            relation,
            schema: Arc::clone(&registered.arrow_schema),
            table_type: if registered.spec.relkind == 'v' {
                TableType::View
            } else {
                TableType::Base
            },
            source: Arc::clone(source),
        })
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        self.table_type
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let relation = self.source.registry().get(self.relation).ok_or_else(|| {
            internal_datafusion_err!("catalog table {} is not registered", self.relation)
        })?;
        let snapshot = self.source.snapshot();
        let rows = (relation.spec.rows)(&snapshot)?;
        let batch = relation.batch(&rows)?;
        let exec = MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            Arc::clone(&self.schema),
            projection.cloned(),
        )?;
        Ok(exec)
    }
}
