//! The rewrite on its own: what it turns Postgres syntax into, and that ordinary queries over
//! user tables keep planning (and keep DataFusion's semantics).

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

use super::harness;
use crate::pg_catalog::rewrite;
use crate::pg_catalog::rewrite::parse_array_text;

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
        (
            "SELECT a AS x FROM t ORDER BY CASE WHEN b IN (SELECT c FROM u) THEN 0 ELSE 1 END, 1, x, t.d LIMIT 5",
            "SELECT * EXCLUDE (__basin_order_1, __basin_order_2) FROM (SELECT a AS x, \
             CASE WHEN coalesce(array_has((SELECT array_agg(__basin_in.v) FROM (SELECT c FROM u) AS __basin_in (v)), b), false) \
             THEN 0 ELSE 1 END AS __basin_order_1, t.d AS __basin_order_2 \
             FROM t) AS __basin_ordered ORDER BY __basin_order_1, 1, x, __basin_order_2 LIMIT 5",
        ),
        (
            "SELECT CASE WHEN a IN (SELECT b FROM u) THEN 1 END AS x FROM t WHERE a NOT IN (SELECT c FROM v)",
            "SELECT CASE WHEN coalesce(array_has((SELECT array_agg(__basin_in.v) FROM (SELECT b FROM u) AS __basin_in (v)), a), false) \
             THEN 1 END AS x FROM t WHERE a NOT IN (SELECT c FROM v)",
        ),
        (
            "SELECT row_number() OVER (PARTITION BY a ORDER BY b) AS n FROM t",
            "SELECT CAST(row_number() OVER (PARTITION BY a ORDER BY b) AS BIGINT) AS n FROM t",
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
        "SELECT n.n_name FROM nation n WHERE n.n_nationkey IN (SELECT l_partkey FROM lineitem)",
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
