//! What catalog tables and functions read: one consistent view of the catalog snapshot, the
//! session's settings and the built-in catalog tables, presented as Postgres sees them
//! (namespaces, relations and their attributes, the search path, name resolution).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use basin_catalog::model::{CatalogState, ColumnEntry, RelationEntry, RelationKind};
use datafusion::common::Result;

use super::table::{Column, SystemRelation, TableSpec};
use super::types::pg_type_for;
use super::{information_schema, system};
use crate::session::vars::SessionVars;

/// Returns the latest catalog snapshot.
pub(crate) type SnapshotFn = Arc<dyn Fn() -> Arc<CatalogState> + Send + Sync>;

/// `pg_namespace.oid` of `pg_catalog`, fixed in every Postgres.
pub(super) const PG_CATALOG_NAMESPACE: u32 = 11;
/// `pg_namespace.oid` of `information_schema` (PostgreSQL assigns it at initdb; this is 15's).
pub(super) const INFORMATION_SCHEMA_NAMESPACE: u32 = 13207;
/// The bootstrap superuser; Basin reports the session user under this OID.
pub(super) const SUPERUSER_OID: u32 = 10;
/// `pg_am.oid` of `heap`, the access method psql prints for tables.
pub(super) const HEAP_AM: u32 = 2;
/// `pg_tablespace.oid` of `pg_default`.
pub(super) const DEFAULT_TABLESPACE: u32 = 1663;
/// `pg_tablespace.oid` of `basin_streaming`, where streaming tables (log + Delta lake) live;
/// psql's `\d` prints it as the table's tablespace, which tells a streaming table apart.
pub(super) const STREAMING_TABLESPACE: u32 = 8001;

/// Server-wide settings clients read with `current_setting` or `pg_settings` but never change
/// in a session Basin keeps ([`SessionVars`] holds those), with PostgreSQL 16's values, except
/// `jit`: Basin compiles no queries. asyncpg reads `jit` before introspecting types.
const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("block_size", "8192"),
    ("bytea_output", "hex"),
    ("data_checksums", "off"),
    ("default_tablespace", ""),
    ("default_text_search_config", "pg_catalog.english"),
    ("escape_string_warning", "on"),
    ("idle_in_transaction_session_timeout", "0"),
    ("jit", "off"),
    ("lc_messages", "C.UTF-8"),
    ("lc_monetary", "C.UTF-8"),
    ("lc_numeric", "C.UTF-8"),
    ("lc_time", "C.UTF-8"),
    ("lock_timeout", "0"),
    ("max_connections", "100"),
    ("max_index_keys", "32"),
    ("row_security", "on"),
    ("segment_size", "131072"),
    ("ssl", "off"),
    ("timezone_abbreviations", "Default"),
    ("transaction_deferrable", "off"),
    ("wal_level", "replica"),
    ("work_mem", "4096"),
    ("xmloption", "content"),
];

/// The server-wide value of a setting the session does not hold.
pub(super) fn server_setting(name: &str) -> Option<&'static str> {
    SERVER_SETTINGS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// Everything catalog tables and functions of one session need; shared by all of them.
pub(crate) struct CatalogSource {
    snapshot: SnapshotFn,
    vars: Arc<SessionVars>,
    registry: Vec<SystemRelation>,
}

impl fmt::Debug for CatalogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogSource")
            .field("vars", &self.vars)
            .field("tables", &self.registry.len())
            .finish_non_exhaustive()
    }
}

impl CatalogSource {
    pub(super) fn try_new(snapshot: SnapshotFn, vars: Arc<SessionVars>) -> Result<Self> {
        let registry = system_specs()
            .map(|(schema, spec)| SystemRelation::try_new(schema, spec))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            snapshot,
            vars,
            registry,
        })
    }

    /// The catalog tables of `pg_catalog` and `information_schema`, in a fixed order.
    pub(super) fn registry(&self) -> &[SystemRelation] {
        &self.registry
    }

    pub(super) fn vars(&self) -> &SessionVars {
        &self.vars
    }

    /// A setting as `current_setting` reads it: the session's value, else the server's.
    pub(super) fn setting(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .or_else(|| server_setting(name).map(str::to_owned))
    }

    /// Every setting, for `pg_settings`: the server's, overridden by the session's.
    pub(super) fn settings(&self) -> BTreeMap<String, String> {
        let mut all: BTreeMap<String, String> = SERVER_SETTINGS
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        all.extend(self.vars.all());
        all
    }

    /// Takes the latest catalog snapshot.
    pub(super) fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            source: self,
            state: (self.snapshot)(),
        }
    }
}

/// Every catalog table spec with the schema it lives in.
pub(super) fn system_specs() -> impl Iterator<Item = (&'static str, &'static TableSpec)> {
    system::TABLES
        .iter()
        .map(|spec| ("pg_catalog", spec))
        .chain(
            information_schema::TABLES
                .iter()
                .map(|spec| ("information_schema", spec)),
        )
}

/// A schema as `pg_namespace` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Namespace<'a> {
    pub(super) oid: u32,
    pub(super) name: &'a str,
}

/// A column as `pg_attribute` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attribute<'a> {
    pub(super) name: &'a str,
    pub(super) type_oid: u32,
    pub(super) typmod: i32,
    pub(super) len: i16,
    pub(super) not_null: bool,
}

/// Where a relation's columns come from; turned into [`Attribute`]s only when asked, since most
/// lookups (visibility, `regclass`) never need them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Columns<'a> {
    User(&'a [ColumnEntry]),
    System(&'a [Column]),
}

/// A relation as `pg_class` shows it: a user table or view, or a catalog table.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Relation<'a> {
    pub(super) oid: u32,
    pub(super) namespace: u32,
    pub(super) schema: &'a str,
    pub(super) name: &'a str,
    /// `r` table, `v` view.
    pub(super) relkind: char,
    columns: Columns<'a>,
    /// The SQL text of a user view.
    pub(super) definition: Option<&'a str>,
    /// A catalog table rather than a user relation.
    pub(super) system: bool,
    /// `pg_class.reloptions`: a streaming table's settings, shown by psql's `\d+`.
    pub(super) options: Vec<String>,
}

impl<'a> Relation<'a> {
    pub(super) fn attribute_count(&self) -> usize {
        match self.columns {
            Columns::User(columns) => columns.len(),
            Columns::System(columns) => columns.len(),
        }
    }

    /// The columns, as Postgres types.
    pub(super) fn attributes(&self) -> Vec<Attribute<'a>> {
        match self.columns {
            Columns::User(columns) => columns
                .iter()
                .map(|c| {
                    let pg = pg_type_for(&c.data_type);
                    Attribute {
                        name: &c.name,
                        type_oid: pg.oid,
                        typmod: pg.typmod,
                        len: pg.len,
                        // Postgres keeps NOT NULL only on table columns; a view's or a
                        // materialized view's columns are never marked, whatever they read.
                        not_null: self.relkind == 'r' && !c.nullable,
                    }
                })
                .collect(),
            Columns::System(columns) => columns
                .iter()
                .map(|c| {
                    let pg = c.column_type.pg_type();
                    Attribute {
                        name: &c.name,
                        type_oid: pg.map_or(25, |t| t.oid),
                        typmod: -1,
                        len: pg.map_or(-1, |t| t.len),
                        not_null: false,
                    }
                })
                .collect(),
        }
    }
}

/// One consistent view of the catalog for one scan or function call.
pub(super) struct Snapshot<'a> {
    source: &'a CatalogSource,
    state: Arc<CatalogState>,
}

impl<'a> Snapshot<'a> {
    pub(super) fn vars(&self) -> &'a SessionVars {
        &self.source.vars
    }

    pub(super) fn database(&self) -> &'a str {
        &self.source.vars.database
    }

    pub(super) fn user(&self) -> &'a str {
        &self.source.vars.user
    }

    /// Every setting, for `pg_settings`.
    pub(super) fn settings(&self) -> BTreeMap<String, String> {
        self.source.settings()
    }

    pub(super) fn state(&self) -> &CatalogState {
        &self.state
    }

    /// `pg_catalog`, `information_schema` and the database's own schemas.
    pub(super) fn namespaces(&self) -> Vec<Namespace<'_>> {
        let mut namespaces = vec![
            Namespace {
                oid: PG_CATALOG_NAMESPACE,
                name: "pg_catalog",
            },
            Namespace {
                oid: INFORMATION_SCHEMA_NAMESPACE,
                name: "information_schema",
            },
        ];
        namespaces.extend(
            self.state
                .schemas
                .iter()
                .filter(|s| s.database == self.database())
                .map(|s| Namespace {
                    oid: s.oid,
                    name: &s.name,
                }),
        );
        namespaces
    }

    pub(super) fn namespace_oid(&self, name: &str) -> Option<u32> {
        self.namespaces()
            .into_iter()
            .find(|n| n.name == name)
            .map(|n| n.oid)
    }

    pub(super) fn namespace_name(&self, oid: u32) -> Option<String> {
        self.namespaces()
            .into_iter()
            .find(|n| n.oid == oid)
            .map(|n| n.name.to_owned())
    }

    /// User relations of this database, then the catalog tables.
    pub(super) fn relations(&self) -> Vec<Relation<'_>> {
        let mut relations: Vec<Relation<'_>> = self
            .state
            .relations
            .iter()
            .filter(|r| r.database == self.database())
            .filter_map(|r| self.user_relation(r))
            .collect();
        relations.extend(self.source.registry.iter().map(system_relation));
        relations
    }

    pub(super) fn relation(&self, oid: u32) -> Option<Relation<'_>> {
        if let Some(entry) = self
            .state
            .relations
            .iter()
            .find(|r| r.oid == oid && r.database == self.database())
        {
            return self.user_relation(entry);
        }
        self.source
            .registry
            .iter()
            .find(|r| r.spec.oid == oid)
            .map(system_relation)
    }

    fn user_relation<'s>(&'s self, entry: &'s RelationEntry) -> Option<Relation<'s>> {
        let namespace = self.state.schema(&entry.database, &entry.schema)?.oid;
        let definition = match &entry.kind {
            RelationKind::View { sql, .. } => Some(sql.as_str()),
            RelationKind::MaterializedView(spec) => Some(spec.sql.as_str()),
            _ => None,
        };
        Some(Relation {
            oid: entry.oid,
            namespace,
            schema: &entry.schema,
            name: &entry.name,
            relkind: entry.relkind(),
            columns: Columns::User(&entry.columns),
            definition,
            system: false,
            options: relation_options(&entry.kind),
        })
    }

    /// The schemas names resolve in, in order: `pg_catalog` first unless the path places it,
    /// then `search_path` with `$user` expanded, keeping only schemas that exist.
    pub(super) fn search_path(&self, include_implicit: bool) -> Vec<String> {
        let raw = self.vars().get("search_path").unwrap_or_default();
        let explicit: Vec<String> = split_identifiers(&raw)
            .into_iter()
            .map(|s| {
                if s == "$user" {
                    self.user().to_owned()
                } else {
                    s
                }
            })
            .filter(|s| self.namespace_oid(s).is_some())
            .collect();
        let mut path = Vec::new();
        if include_implicit && !explicit.iter().any(|s| s == "pg_catalog") {
            path.push("pg_catalog".to_owned());
        }
        path.extend(explicit);
        path
    }

    /// `pg_table_is_visible`: the relation is the first one of its name along the search path.
    pub(super) fn is_visible(&self, relation: &Relation<'_>) -> bool {
        let relations = self.relations();
        self.search_path(true)
            .iter()
            .find_map(|schema| {
                relations
                    .iter()
                    .find(|r| r.schema == schema && r.name == relation.name)
            })
            .is_some_and(|first| first.oid == relation.oid)
    }

    /// Resolves a possibly qualified, possibly quoted relation name as `regclass` input does.
    pub(super) fn lookup_relation(&self, name: &str) -> Option<Relation<'_>> {
        let parts = split_qualified_name(name)?;
        let relations = self.relations();
        match parts.as_slice() {
            [name] => self.search_path(true).iter().find_map(|schema| {
                relations
                    .iter()
                    .find(|r| r.schema == schema && r.name == name)
                    .cloned()
            }),
            [schema, name] | [_, schema, name] => relations
                .into_iter()
                .find(|r| r.schema == schema && r.name == name),
            _ => None,
        }
    }

    /// `regclass` output: the name, schema-qualified when not visible.
    pub(super) fn relation_display_name(&self, oid: u32) -> String {
        match self.relation(oid) {
            Some(relation) if self.is_visible(&relation) => quote_ident(relation.name),
            Some(relation) => format!(
                "{}.{}",
                quote_ident(relation.schema),
                quote_ident(relation.name)
            ),
            None => oid.to_string(),
        }
    }
}

fn system_relation(relation: &SystemRelation) -> Relation<'_> {
    let namespace = if relation.schema == "pg_catalog" {
        PG_CATALOG_NAMESPACE
    } else {
        INFORMATION_SCHEMA_NAMESPACE
    };
    Relation {
        oid: relation.spec.oid,
        namespace,
        schema: relation.schema,
        name: relation.spec.name,
        relkind: relation.spec.relkind,
        columns: Columns::System(&relation.columns),
        definition: None,
        system: true,
        options: Vec::new(),
    }
}

/// Splits a comma-separated list of identifiers (`search_path`), unquoting quoted ones and
/// lower-casing unquoted ones.
pub(super) fn split_identifiers(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => s.to_ascii_lowercase(),
            },
        )
        .collect()
}

/// Splits `schema.name` / `"Schema"."Name"` into parts; `None` if the quoting is broken.
pub(super) fn split_qualified_name(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            part = part.trim().to_owned();
            if part.is_empty() {
                return None;
            }
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// Quotes an identifier when Postgres would (`quote_ident`).
pub(super) fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `reloptions` of a user relation: a streaming table's definition, so `\d+` tells it apart.
fn relation_options(kind: &RelationKind) -> Vec<String> {
    let RelationKind::Stream(spec) = kind else {
        return Vec::new();
    };
    let mut options = vec!["streaming=true".to_owned(), "append_only=true".to_owned()];
    if let Some(column) = &spec.event_time {
        options.push(format!("event_time={column}"));
    }
    if let Some(watermark) = &spec.watermark {
        options.push(format!("watermark={watermark}"));
    }
    options.push(format!("shards={}", spec.shards));
    options.push(format!("on_error={}", spec.on_error.as_str()));
    options.push(format!("partition_by={}", spec.partition_by.as_str()));
    options.push(format!(
        "compaction_interval={}ms",
        spec.compaction_interval_ms
    ));
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_split_like_postgres() {
        assert_eq!(
            split_qualified_name("Public.\"LineItem\""),
            Some(vec!["public".to_owned(), "LineItem".to_owned()])
        );
        assert_eq!(split_qualified_name("a..b"), None);
        assert_eq!(split_qualified_name("\"open"), None);
        assert_eq!(
            split_identifiers("\"$user\", public"),
            vec!["$user".to_owned(), "public".to_owned()]
        );
        assert_eq!(quote_ident("lineitem"), "lineitem");
        assert_eq!(quote_ident("LineItem"), "\"LineItem\"");
    }
}
