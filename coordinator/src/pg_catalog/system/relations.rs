//! Catalog tables about schemas and relations, from the catalog snapshot plus the catalog
//! tables themselves (so `\d pg_class` works as in Postgres).

use datafusion::common::Result;

use crate::pg_catalog::snapshot::{
    HEAP_AM, Relation, STREAMING_TABLESPACE, SUPERUSER_OID, Snapshot,
};
use crate::pg_catalog::table::{Row, Value, row};
use crate::pg_catalog::types::builtin_type;

pub(super) fn pg_namespace(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .namespaces()
        .into_iter()
        .map(|n| {
            row! {
                "oid" => n.oid,
                "nspname" => n.name,
                "nspowner" => SUPERUSER_OID,
            }
        })
        .collect())
}

pub(super) fn pg_class(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .map(|r| {
            let table = r.relkind == 'r';
            row! {
                "oid" => r.oid,
                "relname" => r.name,
                "relnamespace" => r.namespace,
                "relowner" => SUPERUSER_OID,
                "relam" => if table { HEAP_AM } else { 0 },
                "relfilenode" => if table { r.oid } else { 0 },
                // Streaming tables (they have options) live in `basin_streaming`.
                "reltablespace" => if r.options.is_empty() { 0 } else { STREAMING_TABLESPACE },
                // -1: never analysed, as Postgres 14+ reports for tables without statistics.
                "reltuples" => -1.0,
                "relpersistence" => 'p',
                "relkind" => r.relkind,
                "relnatts" => i16::try_from(r.attribute_count()).unwrap_or(i16::MAX),
                // Postgres implements views with a rewrite rule.
                "relhasrules" => !table,
                "relispopulated" => true,
                "relreplident" => if table { 'd' } else { 'n' },
                "reloptions" => if r.options.is_empty() {
                    Value::Null
                } else {
                    Value::from(r.options.iter().map(String::as_str).collect::<Vec<_>>())
                },
            }
        })
        .collect())
}

fn storage(type_oid: u32) -> char {
    builtin_type(type_oid).map_or('x', |t| t.storage)
}

fn attribute_rows<'r>(relation: &'r Relation<'_>) -> impl Iterator<Item = Row> + 'r {
    relation
        .attributes()
        .into_iter()
        .zip(1_i16..)
        .map(move |(a, number)| {
            let pg = builtin_type(a.type_oid);
            row! {
                "attrelid" => relation.oid,
                "attname" => a.name,
                "atttypid" => a.type_oid,
                "attstattarget" => -1,
                "attlen" => a.len,
                "attnum" => number,
                "attndims" => i32::from(pg.is_some_and(|t| t.is_array())),
                "attcacheoff" => -1,
                "atttypmod" => a.typmod,
                "attbyval" => pg.is_some_and(|t| t.byval),
                "attalign" => pg.map_or('i', |t| t.align),
                "attstorage" => storage(a.type_oid),
                "attcompression" => "",
                "attnotnull" => a.not_null,
                "attidentity" => "",
                "attgenerated" => "",
                "attislocal" => true,
                "attcollation" => pg.map_or(0, |t| t.collation),
            }
        })
}

pub(super) fn pg_attribute(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .flat_map(attribute_rows)
        .collect())
}

pub(super) fn pg_tables(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .filter(|r| r.relkind == 'r')
        .map(|r| {
            row! {
                "schemaname" => r.schema,
                "tablename" => r.name,
                "tableowner" => snapshot.user(),
            }
        })
        .collect())
}

pub(super) fn pg_views(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .filter(|r| r.relkind == 'v')
        .map(|r| {
            row! {
                "schemaname" => r.schema,
                "viewname" => r.name,
                "viewowner" => snapshot.user(),
                "definition" => r.definition,
            }
        })
        .collect())
}

pub(super) fn pg_matviews(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .filter(|r| r.relkind == 'm')
        .map(|r| {
            row! {
                "schemaname" => r.schema,
                "matviewname" => r.name,
                "matviewowner" => snapshot.user(),
                "hasindexes" => false,
                "ispopulated" => true,
                "definition" => r.definition,
            }
        })
        .collect())
}

/// Statistics views list user tables only; Basin keeps no access counters, so they are zero.
pub(super) fn pg_stat_user_tables(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(snapshot
        .relations()
        .iter()
        .filter(|r| r.relkind == 'r' && !r.system)
        .map(|r| {
            row! {
                "relid" => r.oid,
                "schemaname" => r.schema,
                "relname" => r.name,
            }
        })
        .collect())
}

pub(super) fn pg_statio_user_tables(snapshot: &Snapshot<'_>) -> Result<Vec<Row>> {
    pg_stat_user_tables(snapshot)
}
