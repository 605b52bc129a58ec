//! The contract: the exact queries psql 15 sends for `\l`, `\dn`, `\dt`, `\dv`, `\d t`, `\df`
//! (and a few more), parsed and rewritten as the front end does, plan and return what psql
//! shows. Plus the functions and `information_schema` BI tools and drivers read.

mod psql;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use basin_catalog::model::{
    CatalogState, ColumnEntry, FileFormat, RelationEntry, RelationKind, SchemaEntry,
};
use datafusion::config::Dialect;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

use super::{install, rewrite};
use crate::session::vars::SessionVars;

const USER: &str = "alice";

fn column(name: &str, data_type: DataType, nullable: bool) -> ColumnEntry {
    ColumnEntry {
        name: name.to_owned(),
        data_type,
        nullable,
    }
}

fn lineitem_columns() -> Vec<ColumnEntry> {
    vec![
        column("l_orderkey", DataType::Int64, false),
        column("l_partkey", DataType::Int32, true),
        column("l_quantity", DataType::Decimal128(15, 2), true),
        column("l_shipdate", DataType::Date32, true),
        column("l_comment", DataType::Utf8, true),
        column(
            "l_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        column(
            "l_tstz",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        column("l_d", DataType::Float64, true),
        column("l_f", DataType::Float32, true),
        column("l_b", DataType::Boolean, true),
        column("l_bin", DataType::Binary, true),
        column("l_s", DataType::Int16, true),
    ]
}

fn relation(
    state: &mut CatalogState,
    schema: &str,
    name: &str,
    kind: RelationKind,
    columns: Vec<ColumnEntry>,
) {
    let oid = state.allocate_oid();
    state.relations.push(RelationEntry {
        oid,
        database: "basin".to_owned(),
        schema: schema.to_owned(),
        name: name.to_owned(),
        kind,
        columns,
    });
}

/// `basin` with `public.lineitem` (16386), `public.nation` (16387), `public.v_nation` (16388)
/// and `sales.orders` (16390, schema `sales` is 16389).
fn catalog_state() -> CatalogState {
    let mut state = CatalogState::bootstrap();
    let table = || RelationKind::External {
        location: "file:///tmp/t".to_owned(),
        format: FileFormat::Parquet,
        partition_columns: Vec::new(),
        options: Default::default(),
    };
    relation(
        &mut state,
        "public",
        "lineitem",
        table(),
        lineitem_columns(),
    );
    relation(
        &mut state,
        "public",
        "nation",
        table(),
        vec![
            column("n_nationkey", DataType::Int32, false),
            column("n_name", DataType::Utf8, true),
        ],
    );
    relation(
        &mut state,
        "public",
        "v_nation",
        RelationKind::View {
            sql: "SELECT n_nationkey, n_name FROM nation".to_owned(),
        },
        vec![
            column("n_nationkey", DataType::Int32, true),
            column("n_name", DataType::Utf8, true),
        ],
    );
    let sales = state.allocate_oid();
    state.schemas.push(SchemaEntry {
        oid: sales,
        database: "basin".to_owned(),
        name: "sales".to_owned(),
    });
    relation(
        &mut state,
        "sales",
        "orders",
        table(),
        vec![column("o_id", DataType::Int64, true)],
    );
    state
}

struct Harness {
    ctx: SessionContext,
    vars: Arc<SessionVars>,
}

/// A session as the front end builds it: no DataFusion information_schema, default catalog
/// `basin` with schema `public` holding the user tables, and `install` on top.
fn harness() -> Harness {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema("basin", "public");
    config.options_mut().sql_parser.dialect = Dialect::PostgreSQL;
    let ctx = SessionContext::new_with_config(config);
    let state = Arc::new(catalog_state());
    for entry in state.relations.iter().filter(|r| r.schema == "public") {
        let schema = entry.arrow_schema();
        let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).expect("memtable");
        ctx.register_table(entry.name.as_str(), Arc::new(table))
            .expect("register table");
    }
    let vars = Arc::new(SessionVars::new(USER.to_owned(), "basin".to_owned(), 4242));
    let snapshot = Arc::clone(&state);
    install(
        &ctx,
        Arc::new(move || Arc::clone(&snapshot)),
        Arc::clone(&vars),
    )
    .expect("install");
    Harness { ctx, vars }
}

impl Harness {
    /// Parses with the Postgres dialect, rewrites, plans and runs one statement.
    async fn try_query(&self, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
        let mut statements = DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {})?;
        let mut statement = statements.pop_front().expect("one statement");
        if let DFStatement::Statement(inner) = &mut statement {
            rewrite(inner);
        }
        let state = self.ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        self.ctx.execute_logical_plan(plan).await?.collect().await
    }

    async fn batches(&self, sql: &str) -> Vec<RecordBatch> {
        match self.try_query(sql).await {
            Ok(batches) => batches,
            Err(e) => panic!("query failed: {e}\n{sql}"),
        }
    }

    /// The result as text, NULL spelled `NULL`.
    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        rows(&self.batches(sql).await)
    }

    async fn value(&self, sql: &str) -> String {
        let rows = self.rows(sql).await;
        assert_eq!(rows.len(), 1, "one row expected from {sql}: {rows:?}");
        rows[0][0].clone()
    }

    async fn schema(&self, sql: &str) -> Arc<Schema> {
        let batches = self.batches(sql).await;
        batches.first().expect("a batch").schema()
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect::<Vec<_>>();
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    rows
}

fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

#[tokio::test]
async fn psql_list_databases() {
    let h = harness();
    assert_eq!(
        h.rows(psql::LIST_DATABASES).await,
        strings(&[&[
            "basin", USER, "UTF8", "C.UTF-8", "C.UTF-8", "NULL", "libc", "NULL"
        ]])
    );
}

#[tokio::test]
async fn psql_list_schemas() {
    let h = harness();
    assert_eq!(
        h.rows(psql::LIST_SCHEMAS).await,
        strings(&[&["public", USER], &["sales", USER]])
    );
}

#[tokio::test]
async fn psql_list_tables_views_and_relations() {
    let h = harness();
    assert_eq!(
        h.rows(psql::LIST_TABLES).await,
        strings(&[
            &["public", "lineitem", "table", USER],
            &["public", "nation", "table", USER],
        ])
    );
    assert_eq!(
        h.rows(psql::LIST_VIEWS).await,
        strings(&[&["public", "v_nation", "view", USER]])
    );
    assert_eq!(
        h.rows(psql::LIST_RELATIONS).await,
        strings(&[
            &["public", "lineitem", "table", USER],
            &["public", "nation", "table", USER],
            &["public", "v_nation", "view", USER],
        ])
    );
    assert_eq!(
        h.rows(psql::LIST_TABLES_IN_SCHEMA).await,
        strings(&[&["sales", "orders", "table", USER]])
    );
    assert_eq!(
        h.rows(psql::LIST_TABLES_VERBOSE).await,
        strings(&[
            &[
                "public",
                "lineitem",
                "table",
                USER,
                "permanent",
                "heap",
                "0 bytes",
                "NULL"
            ],
            &[
                "public",
                "nation",
                "table",
                USER,
                "permanent",
                "heap",
                "0 bytes",
                "NULL"
            ],
        ])
    );
}

#[tokio::test]
async fn psql_list_functions_and_roles() {
    let h = harness();
    // Every function Basin has lives in pg_catalog, which \df leaves out.
    assert!(h.rows(psql::LIST_FUNCTIONS).await.is_empty());
    let roles = h.rows(psql::LIST_ROLES).await;
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0][0], USER);
    assert_eq!(roles[0][1], "true");
}

/// What psql runs for `\d name` (or `\d+ name`), returning the column listing.
async fn describe(h: &Harness, name: &str, verbose: bool) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let lookup = h.rows(&psql::DESCRIBE_LOOKUP.replace("{name}", name)).await;
    assert_eq!(lookup.len(), 1, "\\d {name} finds one relation: {lookup:?}");
    let oid = lookup[0][0].clone();
    let (relation_sql, columns_sql) = if verbose {
        (
            psql::DESCRIBE_RELATION_VERBOSE,
            psql::DESCRIBE_COLUMNS_VERBOSE,
        )
    } else {
        (psql::DESCRIBE_RELATION, psql::DESCRIBE_COLUMNS)
    };
    let relation = h.rows(&relation_sql.replace("{oid}", &oid)).await;
    let columns = h.rows(&columns_sql.replace("{oid}", &oid)).await;
    for footer in [
        psql::DESCRIBE_POLICIES,
        psql::DESCRIBE_STATISTICS,
        psql::DESCRIBE_PUBLICATIONS,
        psql::DESCRIBE_PARENTS,
        psql::DESCRIBE_CHILDREN,
    ] {
        assert!(h.rows(&footer.replace("{oid}", &oid)).await.is_empty());
    }
    (relation, columns)
}

#[tokio::test]
async fn psql_describe_table() {
    let h = harness();
    assert_eq!(
        h.rows(&psql::DESCRIBE_LOOKUP.replace("{name}", "lineitem"))
            .await,
        strings(&[&["16386", "public", "lineitem"]])
    );
    let (relation, columns) = describe(&h, "lineitem", false).await;
    // relchecks, relkind, relhasindex, relhasrules, relhastriggers, relrowsecurity,
    // relforcerowsecurity, relhasoids, relispartition, '', reltablespace, reloftype,
    // relpersistence, relreplident, amname
    assert_eq!(
        relation,
        strings(&[&[
            "0", "r", "false", "false", "false", "false", "false", "false", "false", "", "0", "",
            "p", "d", "heap"
        ]])
    );
    let types: Vec<(&str, &str, &str)> = columns
        .iter()
        .map(|c| (c[0].as_str(), c[1].as_str(), c[3].as_str()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("l_orderkey", "bigint", "true"),
            ("l_partkey", "integer", "false"),
            ("l_quantity", "numeric(15,2)", "false"),
            ("l_shipdate", "date", "false"),
            ("l_comment", "text", "false"),
            ("l_ts", "timestamp without time zone", "false"),
            ("l_tstz", "timestamp with time zone", "false"),
            ("l_d", "double precision", "false"),
            ("l_f", "real", "false"),
            ("l_b", "boolean", "false"),
            ("l_bin", "bytea", "false"),
            ("l_s", "smallint", "false"),
        ]
    );
    // No default, no collation override, no identity, not generated.
    for c in &columns {
        assert_eq!(
            (c[2].as_str(), c[4].as_str(), c[5].as_str(), c[6].as_str()),
            ("NULL", "NULL", "", ""),
            "{c:?}"
        );
    }
}

#[tokio::test]
async fn psql_describe_verbose_table_and_view() {
    let h = harness();
    let (relation, columns) = describe(&h, "lineitem", true).await;
    assert_eq!(relation[0][1], "r");
    assert_eq!(relation[0][9], "", "no reloptions");
    // attstorage, attcompression, attstattarget, description
    assert_eq!(&columns[0][7..], &["p", "", "NULL", "NULL"]);
    assert_eq!(&columns[2][7..9], &["m", ""], "numeric is stored main");
    assert_eq!(&columns[4][7..9], &["x", ""], "text is stored extended");

    let (relation, columns) = describe(&h, "v_nation", false).await;
    assert_eq!(relation[0][1], "v");
    assert_eq!(relation[0][14], "NULL", "views have no access method");
    assert_eq!(
        columns
            .iter()
            .map(|c| (c[0].as_str(), c[1].as_str()))
            .collect::<Vec<_>>(),
        vec![("n_nationkey", "integer"), ("n_name", "text")]
    );
}

#[tokio::test]
async fn psql_describe_catalog_table() {
    // `\d pg_catalog.pg_class` looks the table up by schema and name.
    let h = harness();
    let sql = psql::DESCRIBE_LOOKUP
        .replace("c.relname OPERATOR(pg_catalog.~) '^({name})$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)",
                 "c.relname OPERATOR(pg_catalog.~) '^(pg_class)$' COLLATE pg_catalog.default\n  AND n.nspname OPERATOR(pg_catalog.~) '^(pg_catalog)$' COLLATE pg_catalog.default");
    assert_eq!(
        h.rows(&sql).await,
        strings(&[&["1259", "pg_catalog", "pg_class"]])
    );
    let columns = h
        .rows(&psql::DESCRIBE_COLUMNS.replace("{oid}", "1259"))
        .await;
    assert_eq!(
        (columns[0][0].as_str(), columns[0][1].as_str()),
        ("oid", "oid")
    );
    assert_eq!(
        (columns[1][0].as_str(), columns[1][1].as_str()),
        ("relname", "name")
    );
}

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

#[tokio::test]
async fn every_catalog_table_scans() {
    let h = harness();
    for (schema, spec) in super::snapshot::system_specs() {
        let sql = format!("SELECT * FROM {schema}.{}", spec.name);
        if let Err(e) = h.try_query(&sql).await {
            panic!("{sql}: {e}");
        }
    }
    // Unqualified catalog names resolve to pg_catalog, as with Postgres' implicit search path.
    assert_eq!(
        h.value("SELECT typname FROM pg_type WHERE oid = 16").await,
        "bool"
    );
    // Catalog tables describe themselves.
    assert_eq!(
        h.value(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'pg_catalog.pg_class'::regclass"
        )
        .await,
        "33"
    );
}

#[test]
fn rewrite_turns_postgres_syntax_into_datafusion_sql() {
    let cases = [
        (
            "SELECT 1 FROM t WHERE a OPERATOR(pg_catalog.~) '^x$' COLLATE pg_catalog.default",
            "SELECT 1 AS \"?column?\" FROM t WHERE a ~ '^x$'",
        ),
        (
            "SELECT pg_catalog.format_type(a, b)::pg_catalog.text FROM pg_attribute",
            "SELECT format_type(a, b)::TEXT AS \"format_type\" FROM pg_catalog.pg_attribute",
        ),
        (
            "SELECT x FROM t WHERE c.oid = 'foo'::regclass",
            "SELECT x FROM t WHERE c.oid = regclassin('foo')",
        ),
        (
            "SELECT c.oid::pg_catalog.regclass::pg_catalog.text FROM t",
            "SELECT regclassout(c.oid) AS \"oid\" FROM t",
        ),
        (
            "SELECT x::oid, y::\"char\", z::name, w::pg_catalog.int2[] FROM t",
            "SELECT x::INT UNSIGNED AS \"x\", y::TEXT AS \"y\", z::TEXT AS \"z\", w::SMALLINT[] AS \"w\" FROM t",
        ),
        (
            "SELECT current_schema, current_user",
            "SELECT current_schema AS \"current_schema\", current_user AS \"current_user\"",
        ),
        (
            "SELECT 1 FROM t WHERE oid = ANY('{23, \"1007\"}'::oid[])",
            "SELECT 1 AS \"?column?\" FROM t WHERE oid = ANY(ARRAY['23', '1007']::INT UNSIGNED[])",
        ),
    ];
    let mut mismatches = Vec::new();
    for (sql, expected) in cases {
        let mut statements =
            DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}).expect("parses");
        let Some(DFStatement::Statement(mut statement)) = statements.pop_front() else {
            panic!("a SQL statement");
        };
        rewrite(&mut statement);
        if statement.to_string() != expected {
            mismatches.push(format!("{sql}\n  got:  {statement}\n  want: {expected}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn array_literals_parse_like_postgres() {
    use super::rewrite::parse_array_text;
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(parse_array_text("{}"), Some(vec![]));
    assert_eq!(parse_array_text("{0}"), Some(vec![some("0")]));
    assert_eq!(
        parse_array_text(r#"{a, "b,c", NULL, "x\"y"}"#),
        Some(vec![some("a"), some("b,c"), None, some("x\"y")])
    );
    assert_eq!(parse_array_text("{{1,2},{3,4}}"), None);
    assert_eq!(parse_array_text("{1,,2}"), None);
    assert_eq!(parse_array_text("not an array"), None);
}

#[tokio::test]
async fn user_queries_still_plan() {
    let h = harness();
    for sql in [
        "SELECT count(*) FROM lineitem ORDER BY count(*)",
        "SELECT l_partkey + 1 FROM lineitem ORDER BY l_partkey + 1",
        "SELECT DISTINCT l_partkey FROM lineitem ORDER BY l_partkey",
        "SELECT upper(l_comment), count(*) FROM lineitem GROUP BY upper(l_comment) HAVING count(*) > 1 ORDER BY count(*) DESC",
        "SELECT 1, 2, 'a'::text, 'b'::text",
        "SELECT 1 UNION SELECT 2",
        "SELECT sum(l_quantity) FROM lineitem GROUP BY l_partkey ORDER BY 1",
        "SELECT n_name, (SELECT max(l_quantity) FROM lineitem WHERE l_partkey = n_nationkey) FROM nation",
        "SELECT n.n_name, (SELECT l.l_comment FROM lineitem l WHERE l.l_partkey = n.n_nationkey) FROM nation n WHERE n.n_nationkey IN (SELECT l_partkey FROM lineitem)",
        "SELECT n_name FROM nation n WHERE n.n_nationkey = ANY (SELECT l_partkey FROM lineitem)",
        "SELECT n_name FROM nation WHERE EXISTS (SELECT 1 FROM lineitem WHERE l_partkey = n_nationkey)",
    ] {
        if let Err(e) = h.try_query(sql).await {
            panic!("{sql}: {e}");
        }
    }
    let schema = h
        .schema("SELECT count(*), 1 + 1, upper('a'), CASE WHEN true THEN 1 END FROM nation")
        .await;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, vec!["count", "?column?", "upper", "case"]);
}
