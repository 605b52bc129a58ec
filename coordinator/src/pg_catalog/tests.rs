//! The contract: the exact queries psql 15 sends for `\l`, `\dn`, `\dt`, `\dv`, `\d t`, `\df`
//! (and a few more), parsed and rewritten as the front end does, plan and return what psql
//! shows. Plus the functions and `information_schema` BI tools and drivers read.

mod clients;
mod orms;
mod psql;
mod rewriting;

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
            default_schema: None,
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
    assert_eq!(
        roles[0][8], "[]",
        "member of no roles: an empty array, not NULL"
    );
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
