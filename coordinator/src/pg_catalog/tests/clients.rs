//! What drivers and BI tools ask beyond psql: the Postgres functions, OID handling, the
//! `information_schema`, pgjdbc's `getTables` and type lookups.

use arrow::datatypes::DataType;

use super::{USER, harness, strings};

#[tokio::test]
async fn session_functions() {
    let h = harness();
    let version = h.value("SELECT pg_catalog.version()").await;
    assert!(version.starts_with("PostgreSQL 16.6 (Basin "), "{version}");
    assert_eq!(
        h.schema("SELECT version()").await.field(0).name(),
        "version",
        "clients read the column by name"
    );
    assert_eq!(h.value("SELECT current_database()").await, "basin");
    assert_eq!(h.value("SELECT current_catalog").await, "basin");
    assert_eq!(h.value("SELECT current_schema()").await, "public");
    assert_eq!(h.value("SELECT current_schema").await, "public");
    assert_eq!(h.value("SELECT current_schemas(false)").await, "[public]");
    assert_eq!(
        h.value("SELECT current_schemas(true)").await,
        "[pg_catalog, public]"
    );
    assert_eq!(h.value("SELECT current_user").await, USER);
    assert_eq!(h.value("SELECT session_user").await, USER);
    assert_eq!(h.value("SELECT pg_backend_pid()").await, "4242");
    assert_eq!(
        h.value("SELECT current_setting('DateStyle')").await,
        "ISO, MDY"
    );
    assert_eq!(
        h.value("SELECT current_setting('no.such', true)").await,
        "NULL"
    );
    // Server-wide settings the session does not hold (asyncpg reads `jit`).
    assert_eq!(h.value("SELECT current_setting('jit')").await, "off");
    assert_eq!(
        h.value("SELECT source FROM pg_settings WHERE name = 'block_size'")
            .await,
        "default"
    );
    let error = h
        .try_query("SELECT current_setting('no_such_setting')")
        .await
        .expect_err("unknown setting");
    assert!(
        error
            .to_string()
            .contains("unrecognized configuration parameter \"no_such_setting\""),
        "{error}"
    );
    assert_eq!(
        h.value("SELECT set_config('search_path', 'sales, public', false)")
            .await,
        "sales, public"
    );
    assert_eq!(h.vars.get("search_path").as_deref(), Some("sales, public"));
    assert_eq!(h.value("SELECT current_schema()").await, "sales");
    assert_eq!(h.value("SELECT count(*) FROM pg_settings WHERE name = 'search_path' AND setting = 'sales, public' AND source = 'session'").await, "1");
}

#[tokio::test]
async fn catalog_functions() {
    let h = harness();
    let cases = [
        (
            "SELECT pg_catalog.format_type(1043, 48)",
            "character varying(44)",
        ),
        (
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = 16386 AND a.attnum = 3",
            "numeric(15,2)",
        ),
        ("SELECT format_type(23, NULL)", "integer"),
        ("SELECT pg_get_expr('1 + 1', 16386)", "1 + 1"),
        ("SELECT pg_table_is_visible(16386)", "true"),
        ("SELECT pg_table_is_visible(16390)", "false"),
        ("SELECT pg_table_is_visible('pg_class'::regclass)", "true"),
        ("SELECT pg_get_userbyid(10)", USER),
        ("SELECT obj_description(16386, 'pg_class')", "NULL"),
        ("SELECT col_description(16386, 1)", "NULL"),
        ("SELECT pg_encoding_to_char(6)", "UTF8"),
        ("SELECT has_table_privilege('lineitem', 'SELECT')", "true"),
        (
            "SELECT has_schema_privilege(current_user, 'public', 'USAGE')",
            "true",
        ),
        ("SELECT 'lineitem'::regclass", "16386"),
        ("SELECT 'sales.orders'::regclass::oid", "16390"),
        ("SELECT 'public.\"lineitem\"'::pg_catalog.regclass", "16386"),
        ("SELECT to_regclass('missing')", "NULL"),
        ("SELECT 16386::regclass::text", "lineitem"),
        (
            "SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c WHERE c.oid = 16390",
            "sales.orders",
        ),
        ("SELECT 'int4'::regtype", "23"),
        ("SELECT 'integer'::regtype::oid", "23"),
        ("SELECT 1007::regtype::text", "integer[]"),
        ("SELECT 'public'::regnamespace::oid", "16385"),
        (
            "SELECT pg_get_viewdef('v_nation'::regclass)",
            "SELECT n_nationkey, n_name FROM nation",
        ),
        (
            "SELECT pg_size_pretty(pg_table_size('lineitem'))",
            "0 bytes",
        ),
        ("SELECT array_upper(ARRAY[1,2,3], 1)", "3"),
        ("SELECT quote_ident('Lineitem')", "\"Lineitem\""),
        ("SELECT pg_get_function_result('version'::regproc)", "text"),
        ("SELECT pg_get_function_arguments(1081)", "oid, integer"),
    ];
    for (sql, expected) in cases {
        assert_eq!(h.value(sql).await, expected, "{sql}");
    }
    let error = h
        .try_query("SELECT 'missing'::regclass")
        .await
        .expect_err("no such relation");
    assert!(
        error
            .to_string()
            .contains("relation \"missing\" does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn oid_comparisons_and_joins_plan() {
    let h = harness();
    for sql in [
        "SELECT relname FROM pg_class c WHERE c.oid = 16386",
        "SELECT relname FROM pg_class c WHERE c.oid = '16386'",
        "SELECT relname FROM pg_class c WHERE c.oid = 'lineitem'::regclass",
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid WHERE n.nspname = 'public' AND c.relname = 'lineitem'",
        "SELECT relname FROM pg_class c WHERE c.relkind = ANY (ARRAY['r', 'p']) AND c.relname = 'lineitem'",
        "SELECT c.relname FROM pg_class c, pg_namespace n WHERE c.relnamespace = n.oid AND c.relname ~ '^line' AND n.nspname !~ '^pg_'",
    ] {
        assert_eq!(h.value(sql).await, "lineitem", "{sql}");
    }
    // A CTE named like a catalog table shadows it.
    assert_eq!(
        h.value("WITH pg_class AS (SELECT 'mine' AS relname) SELECT relname FROM pg_class")
            .await,
        "mine"
    );
}

#[tokio::test]
async fn information_schema_uses_postgres_types() {
    let h = harness();
    let sql = "SELECT column_name, ordinal_position, is_nullable, data_type, udt_name, \
               numeric_precision, numeric_scale, datetime_precision \
               FROM information_schema.columns \
               WHERE table_schema = 'public' AND table_name = 'lineitem' ORDER BY ordinal_position";
    assert_eq!(
        h.rows(sql).await,
        strings(&[
            &["l_orderkey", "1", "NO", "bigint", "int8", "64", "0", "NULL"],
            &[
                "l_partkey",
                "2",
                "YES",
                "integer",
                "int4",
                "32",
                "0",
                "NULL"
            ],
            &[
                "l_quantity",
                "3",
                "YES",
                "numeric",
                "numeric",
                "15",
                "2",
                "NULL"
            ],
            &[
                "l_shipdate",
                "4",
                "YES",
                "date",
                "date",
                "NULL",
                "NULL",
                "0"
            ],
            &[
                "l_comment",
                "5",
                "YES",
                "text",
                "text",
                "NULL",
                "NULL",
                "NULL"
            ],
            &[
                "l_ts",
                "6",
                "YES",
                "timestamp without time zone",
                "timestamp",
                "NULL",
                "NULL",
                "6"
            ],
            &[
                "l_tstz",
                "7",
                "YES",
                "timestamp with time zone",
                "timestamptz",
                "NULL",
                "NULL",
                "6"
            ],
            &[
                "l_d",
                "8",
                "YES",
                "double precision",
                "float8",
                "53",
                "NULL",
                "NULL"
            ],
            &["l_f", "9", "YES", "real", "float4", "24", "NULL", "NULL"],
            &[
                "l_b", "10", "YES", "boolean", "bool", "NULL", "NULL", "NULL"
            ],
            &[
                "l_bin", "11", "YES", "bytea", "bytea", "NULL", "NULL", "NULL"
            ],
            &["l_s", "12", "YES", "smallint", "int2", "16", "0", "NULL"],
        ])
    );
    let schema = h.schema(sql).await;
    assert_eq!(
        schema.field(1).data_type(),
        &DataType::Int32,
        "ordinal_position is int4"
    );
    assert_eq!(
        h.rows("SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").await,
        strings(&[
            &["public", "lineitem", "BASE TABLE"],
            &["public", "nation", "BASE TABLE"],
            &["public", "v_nation", "VIEW"],
            &["sales", "orders", "BASE TABLE"],
        ])
    );
    assert_eq!(
        h.rows("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
            .await,
        strings(&[
            &["information_schema"],
            &["pg_catalog"],
            &["public"],
            &["sales"]
        ])
    );
    assert_eq!(
        h.value(
            "SELECT view_definition FROM information_schema.views WHERE table_name = 'v_nation'"
        )
        .await,
        "SELECT n_nationkey, n_name FROM nation"
    );
    for empty in [
        "key_column_usage",
        "table_constraints",
        "referential_constraints",
        "routines",
    ] {
        assert!(
            h.rows(&format!("SELECT * FROM information_schema.{empty}"))
                .await
                .is_empty()
        );
    }
}

/// `DatabaseMetaData.getTables(null, null, "%", {"TABLE", "VIEW"})` as pgjdbc 42.7 sends it.
const PGJDBC_GET_TABLES: &str = r#"SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME,  CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema'  WHEN true THEN CASE  WHEN n.nspname = 'pg_catalog' OR n.nspname = 'information_schema' THEN CASE c.relkind   WHEN 'r' THEN 'SYSTEM TABLE'   WHEN 'v' THEN 'SYSTEM VIEW'   WHEN 'i' THEN 'SYSTEM INDEX'   ELSE NULL   END  WHEN n.nspname = 'pg_toast' THEN CASE c.relkind   WHEN 'r' THEN 'SYSTEM TOAST TABLE'   WHEN 'i' THEN 'SYSTEM TOAST INDEX'   ELSE NULL   END  ELSE CASE c.relkind   WHEN 'r' THEN 'TEMPORARY TABLE'   WHEN 'p' THEN 'TEMPORARY TABLE'   WHEN 'i' THEN 'TEMPORARY INDEX'   WHEN 'S' THEN 'TEMPORARY SEQUENCE'   WHEN 'v' THEN 'TEMPORARY VIEW'   ELSE NULL   END  END  WHEN false THEN CASE c.relkind  WHEN 'r' THEN 'TABLE'  WHEN 'p' THEN 'PARTITIONED TABLE'  WHEN 'i' THEN 'INDEX'  WHEN 'P' then 'PARTITIONED INDEX'  WHEN 'S' THEN 'SEQUENCE'  WHEN 'v' THEN 'VIEW'  WHEN 'c' THEN 'TYPE'  WHEN 'f' THEN 'FOREIGN TABLE'  WHEN 'm' THEN 'MATERIALIZED VIEW'  ELSE NULL  END  ELSE NULL  END  AS TABLE_TYPE, d.description AS REMARKS,  '' as TYPE_CAT, '' as TYPE_SCHEM, '' as TYPE_NAME, '' AS SELF_REFERENCING_COL_NAME, '' AS REF_GENERATION  FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c  LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0  and d.classoid = 'pg_class'::regclass)  WHERE c.relnamespace = n.oid  AND c.relname LIKE '%' AND (false  OR ( c.relkind IN ('r','p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' )  OR ( c.relkind = 'v' AND n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema' ) )  ORDER BY TABLE_TYPE,TABLE_SCHEM,TABLE_NAME "#;

#[tokio::test]
async fn pgjdbc_get_tables() {
    let h = harness();
    let rows = h.rows(PGJDBC_GET_TABLES).await;
    let tables: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(
        tables,
        vec![
            ("public", "lineitem", "TABLE"),
            ("public", "nation", "TABLE"),
            ("sales", "orders", "TABLE"),
            ("public", "v_nation", "VIEW"),
        ]
    );
}

#[tokio::test]
async fn driver_type_introspection() {
    let h = harness();
    // pgjdbc TypeInfoCache and asyncpg: a type by OID with its namespace and element.
    assert_eq!(
        h.rows("SELECT t.oid, t.typname, t.typtype, t.typelem, n.nspname, n.nspname = ANY(current_schemas(true)) \
                FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid \
                WHERE t.oid = ANY('{23,1007}'::oid[]) ORDER BY 1").await,
        strings(&[
            &["23", "int4", "b", "0", "pg_catalog", "true"],
            &["1007", "_int4", "b", "23", "pg_catalog", "true"],
        ])
    );
    // Npgsql tells arrays apart by their receive function.
    assert_eq!(
        h.value(
            "SELECT CASE WHEN proc.proname = 'array_recv' THEN 'a' ELSE typ.typtype END \
                 FROM pg_type AS typ LEFT JOIN pg_proc AS proc ON proc.oid = typ.typreceive \
                 WHERE typ.typname = '_text'"
        )
        .await,
        "a"
    );
    assert_eq!(
        h.value("SELECT e.typdelim FROM pg_catalog.pg_type t, pg_catalog.pg_type e WHERE t.oid = 1009 AND t.typelem = e.oid").await,
        ","
    );
}

/// asyncpg's type introspection (`asyncpg/introspection.py`, `INTRO_LOOKUP_TYPES` for
/// PostgreSQL 12+, Apache-2.0), as asyncpg 0.32 sends it; `$1` is an `oid[]` of the types.
const ASYNCPG_INTROSPECT_TYPES: &str = r#"WITH RECURSIVE typeinfo_tree(
    oid, ns, name, kind, basetype, elemtype, elemdelim,
    range_subtype, attrtypoids, attrnames, depth)
AS (
    SELECT
        ti.oid, ti.ns, ti.name, ti.kind, ti.basetype,
        ti.elemtype, ti.elemdelim, ti.range_subtype,
        ti.attrtypoids, ti.attrnames, 0
    FROM
            (
        SELECT
            t.oid                           AS oid,
            ns.nspname                      AS ns,
            t.typname                       AS name,
            t.typtype                       AS kind,
            (CASE WHEN t.typtype = 'd' THEN
                (WITH RECURSIVE typebases(oid, depth) AS (
                    SELECT
                        t2.typbasetype      AS oid,
                        0                   AS depth
                    FROM
                        pg_type t2
                    WHERE
                        t2.oid = t.oid

                    UNION ALL

                    SELECT
                        t2.typbasetype      AS oid,
                        tb.depth + 1        AS depth
                    FROM
                        pg_type t2,
                        typebases tb
                    WHERE
                       tb.oid = t2.oid
                       AND t2.typbasetype != 0
               ) SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1)

               ELSE NULL
            END)                            AS basetype,
            t.typelem                       AS elemtype,
            elem_t.typdelim                 AS elemdelim,
            COALESCE(
                range_t.rngsubtype,
                multirange_t.rngsubtype)    AS range_subtype,
            (CASE WHEN t.typtype = 'c' THEN
                (SELECT
                    array_agg(ia.atttypid ORDER BY ia.attnum)
                FROM
                    pg_attribute ia
                    INNER JOIN pg_class c
                        ON (ia.attrelid = c.oid)
                WHERE
                    ia.attnum > 0 AND NOT ia.attisdropped
                    AND c.reltype = t.oid)

                ELSE NULL
            END)                            AS attrtypoids,
            (CASE WHEN t.typtype = 'c' THEN
                (SELECT
                    array_agg(ia.attname::text ORDER BY ia.attnum)
                FROM
                    pg_attribute ia
                    INNER JOIN pg_class c
                        ON (ia.attrelid = c.oid)
                WHERE
                    ia.attnum > 0 AND NOT ia.attisdropped
                    AND c.reltype = t.oid)

                ELSE NULL
            END)                            AS attrnames
        FROM
            pg_catalog.pg_type AS t
            INNER JOIN pg_catalog.pg_namespace ns ON (
                ns.oid = t.typnamespace)
            LEFT JOIN pg_type elem_t ON (
                t.typlen = -1 AND
                t.typelem != 0 AND
                t.typelem = elem_t.oid
            )
            LEFT JOIN pg_range range_t ON (
                t.oid = range_t.rngtypid
            )
            LEFT JOIN pg_range multirange_t ON (
                t.oid = multirange_t.rngmultitypid
            )
    )
 AS ti
    WHERE
        ti.oid = any($1::oid[])

    UNION ALL

    SELECT
        ti.oid, ti.ns, ti.name, ti.kind, ti.basetype,
        ti.elemtype, ti.elemdelim, ti.range_subtype,
        ti.attrtypoids, ti.attrnames, tt.depth + 1
    FROM
            (
        SELECT
            t.oid                           AS oid,
            ns.nspname                      AS ns,
            t.typname                       AS name,
            t.typtype                       AS kind,
            (CASE WHEN t.typtype = 'd' THEN
                (WITH RECURSIVE typebases(oid, depth) AS (
                    SELECT
                        t2.typbasetype      AS oid,
                        0                   AS depth
                    FROM
                        pg_type t2
                    WHERE
                        t2.oid = t.oid

                    UNION ALL

                    SELECT
                        t2.typbasetype      AS oid,
                        tb.depth + 1        AS depth
                    FROM
                        pg_type t2,
                        typebases tb
                    WHERE
                       tb.oid = t2.oid
                       AND t2.typbasetype != 0
               ) SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1)

               ELSE NULL
            END)                            AS basetype,
            t.typelem                       AS elemtype,
            elem_t.typdelim                 AS elemdelim,
            COALESCE(
                range_t.rngsubtype,
                multirange_t.rngsubtype)    AS range_subtype,
            (CASE WHEN t.typtype = 'c' THEN
                (SELECT
                    array_agg(ia.atttypid ORDER BY ia.attnum)
                FROM
                    pg_attribute ia
                    INNER JOIN pg_class c
                        ON (ia.attrelid = c.oid)
                WHERE
                    ia.attnum > 0 AND NOT ia.attisdropped
                    AND c.reltype = t.oid)

                ELSE NULL
            END)                            AS attrtypoids,
            (CASE WHEN t.typtype = 'c' THEN
                (SELECT
                    array_agg(ia.attname::text ORDER BY ia.attnum)
                FROM
                    pg_attribute ia
                    INNER JOIN pg_class c
                        ON (ia.attrelid = c.oid)
                WHERE
                    ia.attnum > 0 AND NOT ia.attisdropped
                    AND c.reltype = t.oid)

                ELSE NULL
            END)                            AS attrnames
        FROM
            pg_catalog.pg_type AS t
            INNER JOIN pg_catalog.pg_namespace ns ON (
                ns.oid = t.typnamespace)
            LEFT JOIN pg_type elem_t ON (
                t.typlen = -1 AND
                t.typelem != 0 AND
                t.typelem = elem_t.oid
            )
            LEFT JOIN pg_range range_t ON (
                t.oid = range_t.rngtypid
            )
            LEFT JOIN pg_range multirange_t ON (
                t.oid = multirange_t.rngmultitypid
            )
    )
 ti,
        typeinfo_tree tt
    WHERE
        (tt.elemtype IS NOT NULL AND ti.oid = tt.elemtype)
        OR (tt.attrtypoids IS NOT NULL AND ti.oid = any(tt.attrtypoids))
        OR (tt.range_subtype IS NOT NULL AND ti.oid = tt.range_subtype)
        OR (tt.basetype IS NOT NULL AND ti.oid = tt.basetype)
)

SELECT DISTINCT
    *,
    basetype::regtype::text AS basetype_name,
    elemtype::regtype::text AS elemtype_name,
    range_subtype::regtype::text AS range_subtype_name
FROM
    typeinfo_tree
ORDER BY
    depth DESC
"#;

#[tokio::test]
async fn asyncpg_type_introspection() {
    let h = harness();
    let sql = ASYNCPG_INTROSPECT_TYPES.replace("$1", "'{23,1007}'");
    let rows = h.rows(&sql).await;
    // (oid, ns, name, kind, basetype, elemtype, elemdelim, ...): _int4's element int4 is found.
    let found: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[2].as_str(), r[3].as_str(), r[5].as_str()))
        .collect();
    assert!(found.contains(&("23", "int4", "b", "0")), "{rows:?}");
    assert!(found.contains(&("1007", "_int4", "b", "23")), "{rows:?}");
}

/// pgjdbc 42.5 `getPrimaryKeys(null, "public", "lineitem")`.
const PGJDBC_GET_PRIMARY_KEYS: &str = "SELECT        result.TABLE_CAT,        result.TABLE_SCHEM,        result.TABLE_NAME,        result.COLUMN_NAME,        result.KEY_SEQ,        result.PK_NAME FROM      (SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,   (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME,   information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM FROM pg_catalog.pg_class ct   JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)   JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN pg_catalog.pg_index i ON ( a.attrelid = i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE true  AND n.nspname = 'public' AND ct.relname = 'lineitem' AND i.indisprimary  ) result where  result.A_ATTNUM = (result.KEYS).x  ORDER BY result.table_name, result.pk_name, result.key_seq";

/// pgjdbc 42.5 `getTypeInfo()`, second query.
const PGJDBC_TYPE_INFO: &str = "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid   FROM pg_catalog.pg_type   LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r           from pg_namespace as ns           join ( select s.r, (current_schemas(false))[s.r] as nspname                    from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r          using ( nspname )        ) as sp     ON sp.nspoid = typnamespace  ORDER BY sp.r, pg_type.oid DESC";

/// pgjdbc 42.5 `getProcedures(null, "public", "%")`: three unnamed NULL columns.
const PGJDBC_GET_PROCEDURES: &str = "SELECT NULL AS PROCEDURE_CAT, n.nspname AS PROCEDURE_SCHEM, p.proname AS PROCEDURE_NAME, NULL, NULL, NULL, d.description AS REMARKS, 2 AS PROCEDURE_TYPE,  p.proname || '_' || p.oid AS SPECIFIC_NAME  FROM pg_catalog.pg_namespace n, pg_catalog.pg_proc p  LEFT JOIN pg_catalog.pg_description d ON (p.oid=d.objoid)  LEFT JOIN pg_catalog.pg_class c ON (d.classoid=c.oid AND c.relname='pg_proc')  LEFT JOIN pg_catalog.pg_namespace pn ON (c.relnamespace=pn.oid AND pn.nspname='pg_catalog')  WHERE p.pronamespace=n.oid  AND p.prokind='p' AND n.nspname LIKE 'public' AND p.proname LIKE '%' ORDER BY PROCEDURE_SCHEM, PROCEDURE_NAME, p.oid::text ";

#[tokio::test]
async fn pgjdbc_metadata_queries() {
    let h = harness();
    // Basin has no indexes, so no primary keys, but the query plans.
    assert!(h.rows(PGJDBC_GET_PRIMARY_KEYS).await.is_empty());
    let types = h.rows(PGJDBC_TYPE_INFO).await;
    assert!(
        types.iter().any(|r| r[0] == "true" && r[2] == "_int4"),
        "array types are recognised by their input function"
    );
    assert!(types.iter().any(|r| r[0] == "false" && r[2] == "int4"));
    assert!(h.rows(PGJDBC_GET_PROCEDURES).await.is_empty());
    let schema = h.schema("SELECT NULL, NULL, 1").await;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, vec!["?column?", "?column?_2", "?column?_3"]);
}

#[tokio::test]
async fn expandarray_pairs_elements_with_positions() {
    let h = harness();
    assert_eq!(
        h.rows("SELECT (information_schema._pg_expandarray(ARRAY[5, 7])).x, (information_schema._pg_expandarray(ARRAY[5, 7])).n").await,
        strings(&[&["5", "1"], &["7", "2"]])
    );
}

/// psqlODBC 13 `SQLPrimaryKeys(NULL, "public", "lineitem")`: compares a boolean catalog column
/// with the untyped literal `'t'`.
const PSQLODBC_PRIMARY_KEYS: &str = "SELECT ta.attname, ia.attnum, ic.relname, n.nspname, tc.relname FROM pg_catalog.pg_attribute ta, pg_catalog.pg_attribute ia, pg_catalog.pg_class tc, pg_catalog.pg_index i, pg_catalog.pg_namespace n, pg_catalog.pg_class ic WHERE tc.relname = 'lineitem' AND n.nspname = 'public' AND tc.oid = i.indrelid AND n.oid = tc.relnamespace AND i.indisprimary = 't' AND ia.attrelid = i.indexrelid AND ta.attrelid = i.indrelid AND ta.attnum = i.indkey[ia.attnum - 1] AND (NOT ta.attisdropped) AND (NOT ia.attisdropped) AND ic.oid = i.indexrelid ORDER BY ia.attnum";

#[tokio::test]
async fn boolean_catalog_columns_compare_with_untyped_literals() {
    let h = harness();
    assert!(h.rows(PSQLODBC_PRIMARY_KEYS).await.is_empty());
    assert_eq!(
        h.rows("SELECT relname FROM pg_class WHERE relname = 'lineitem' AND relhasindex = 'f' AND 'false' = relispartition AND relisshared <> 'true'").await,
        strings(&[&["lineitem"]])
    );
}
