//! Catalog tables whose rows are Postgres' own built-in objects: types, access methods,
//! collations, tablespaces, languages and the functions Basin implements.

use datafusion::common::Result;

use super::procs::all_procs;
use super::type_io::TYPE_IO;
use crate::pg_catalog::snapshot::{
    DEFAULT_TABLESPACE, PG_CATALOG_NAMESPACE, STREAMING_TABLESPACE, SUPERUSER_OID, Snapshot,
};
use crate::pg_catalog::table::{Row, row};
use crate::pg_catalog::types::{
    ARRAY_IN, ARRAY_OUT, ARRAY_RECV, ARRAY_SEND, ARRAY_SUBSCRIPT_HANDLER, builtin_types,
};

/// `pg_language.oid` of `internal`, the language of every built-in function.
const INTERNAL_LANGUAGE: u32 = 12;

pub(super) fn pg_type(_: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(builtin_types()
        .map(|t| {
            let array = t.is_array();
            let (input, output, receive, send) = if array {
                (ARRAY_IN, ARRAY_OUT, ARRAY_RECV, ARRAY_SEND)
            } else {
                TYPE_IO
                    .iter()
                    .find(|io| io.0 == t.oid)
                    .map_or((0, 0, 0, 0), |io| (io.1, io.2, io.3, io.4))
            };
            row! {
                "oid" => t.oid,
                "typname" => t.name,
                "typnamespace" => PG_CATALOG_NAMESPACE,
                "typowner" => SUPERUSER_OID,
                "typlen" => t.len,
                "typbyval" => t.byval,
                "typtype" => t.typtype,
                "typcategory" => t.category,
                "typispreferred" => t.preferred,
                "typisdefined" => true,
                "typdelim" => ',',
                "typsubscript" => if array { ARRAY_SUBSCRIPT_HANDLER } else { 0 },
                "typelem" => t.elem,
                "typarray" => t.array,
                "typinput" => input,
                "typoutput" => output,
                "typreceive" => receive,
                "typsend" => send,
                "typalign" => t.align,
                "typstorage" => t.storage,
                "typtypmod" => -1,
                "typcollation" => t.collation,
            }
        })
        .collect())
}

pub(super) fn pg_am(_: &Snapshot<'_>) -> Result<Vec<Row>> {
    let methods: &[(u32, &str, u32, char)] = &[
        (2, "heap", 3, 't'),
        (403, "btree", 330, 'i'),
        (405, "hash", 331, 'i'),
        (783, "gist", 332, 'i'),
        (2742, "gin", 333, 'i'),
        (4000, "spgist", 334, 'i'),
        (3580, "brin", 335, 'i'),
    ];
    Ok(methods
        .iter()
        .map(|(oid, name, handler, kind)| {
            row! {
                "oid" => *oid,
                "amname" => *name,
                "amhandler" => *handler,
                "amtype" => *kind,
            }
        })
        .collect())
}

pub(super) fn pg_collation(_: &Snapshot<'_>) -> Result<Vec<Row>> {
    let collations: &[(u32, &str, char, Option<&str>)] = &[
        (100, "default", 'd', None),
        (950, "C", 'c', Some("C")),
        (951, "POSIX", 'c', Some("POSIX")),
    ];
    Ok(collations
        .iter()
        .map(|(oid, name, provider, locale)| {
            row! {
                "oid" => *oid,
                "collname" => *name,
                "collnamespace" => PG_CATALOG_NAMESPACE,
                "collowner" => SUPERUSER_OID,
                "collprovider" => *provider,
                "collisdeterministic" => true,
                "collencoding" => -1,
                "collcollate" => *locale,
                "collctype" => *locale,
            }
        })
        .collect())
}

pub(super) fn pg_tablespace(_: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(vec![
        row! {"oid" => DEFAULT_TABLESPACE, "spcname" => "pg_default", "spcowner" => SUPERUSER_OID},
        row! {"oid" => 1664_u32, "spcname" => "pg_global", "spcowner" => SUPERUSER_OID},
        row! {
            "oid" => STREAMING_TABLESPACE,
            "spcname" => "basin_streaming",
            "spcowner" => SUPERUSER_OID,
        },
    ])
}

pub(super) fn pg_language(_: &Snapshot<'_>) -> Result<Vec<Row>> {
    let languages: &[(u32, &str)] = &[(INTERNAL_LANGUAGE, "internal"), (13, "c"), (14, "sql")];
    Ok(languages
        .iter()
        .map(|(oid, name)| {
            row! {
                "oid" => *oid,
                "lanname" => *name,
                "lanowner" => SUPERUSER_OID,
                "lanpltrusted" => *name == "sql",
            }
        })
        .collect())
}

pub(super) fn pg_proc(_: &Snapshot<'_>) -> Result<Vec<Row>> {
    Ok(all_procs()
        .map(|p| {
            row! {
                "oid" => p.oid,
                "proname" => p.name,
                "pronamespace" => PG_CATALOG_NAMESPACE,
                "proowner" => SUPERUSER_OID,
                "prolang" => INTERNAL_LANGUAGE,
                "procost" => 1.0,
                "prokind" => 'f',
                "proisstrict" => true,
                "provolatile" => p.volatility,
                "proparallel" => 's',
                "pronargs" => i16::try_from(p.args.len()).unwrap_or(i16::MAX),
                "prorettype" => p.result,
                "proargtypes" => p.args.to_vec(),
                "prosrc" => p.name,
            }
        })
        .collect())
}
