//! The benchmark queries. TPC-H comes from the `.slt` corpus (`sql-tests/slt/tpch/q*.slt`, the
//! one source of truth, compiled into the binary): each file's `statement ok` records before
//! the query are its setup (Q15's view), those after it its teardown. The 99 TPC-DS texts come
//! from DuckDB's TPC-DS extension at run time ([`crate::duckdb_peer`]).

use anyhow::{Context, bail};

/// One benchmark query with the statements around it, which run untimed on every engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `q01` .. `q22` for TPC-H, `q1` .. `q99` for TPC-DS.
    pub name: String,
    pub setup: Vec<String>,
    pub sql: String,
    pub teardown: Vec<String>,
}

macro_rules! tpch_files {
    ($($n:literal),*) => {
        [$(($n, include_str!(concat!("../../sql-tests/slt/tpch/q", $n, ".slt")))),*]
    };
}

const TPCH_SLT: [(&str, &str); 22] = tpch_files!(
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22"
);

/// The 22 TPC-H queries, in order.
pub fn tpch() -> anyhow::Result<Vec<Query>> {
    TPCH_SLT
        .iter()
        .map(|(number, text)| {
            parse_slt(&format!("q{number}"), text).with_context(|| format!("parse q{number}.slt"))
        })
        .collect()
}

/// The TPC-DS queries as DuckDB numbers them, trailing semicolons dropped.
pub fn tpcds(texts: Vec<(u32, String)>) -> Vec<Query> {
    texts
        .into_iter()
        .map(|(number, sql)| Query {
            name: format!("q{number}"),
            setup: Vec::new(),
            sql: sql.trim().trim_end_matches(';').trim().to_owned(),
            teardown: Vec::new(),
        })
        .collect()
}

/// Keeps the queries `filter` names (`5`, `q5`, `q05` all name query 5); all when empty.
pub fn select(queries: Vec<Query>, filter: &[String]) -> Vec<Query> {
    if filter.is_empty() {
        return queries;
    }
    let wanted: Vec<u32> = filter
        .iter()
        .filter_map(|f| f.trim().trim_start_matches(['q', 'Q']).parse().ok())
        .collect();
    queries
        .into_iter()
        .filter(|q| {
            q.name
                .trim_start_matches('q')
                .parse::<u32>()
                .is_ok_and(|n| wanted.contains(&n))
        })
        .collect()
}

/// The `statement ok` and `query` records of an `.slt` file: enough of the format for the
/// TPC-H corpus (`include` and `control` records are skipped).
fn parse_slt(name: &str, text: &str) -> anyhow::Result<Query> {
    let lines: Vec<&str> = text.lines().collect();
    let mut setup = Vec::new();
    let mut teardown = Vec::new();
    let mut query = None;
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].split_whitespace().next();
        let kind = match first {
            Some("statement") => "statement",
            Some("query") => "query",
            _ => {
                i += 1;
                continue;
            }
        };
        i += 1;
        let mut sql = Vec::new();
        while i < lines.len() && !matches!(lines[i].trim(), "" | "----") {
            sql.push(lines[i]);
            i += 1;
        }
        // Skip the expected answer.
        if i < lines.len() && lines[i].trim() == "----" {
            while i < lines.len() && !lines[i].trim().is_empty() {
                i += 1;
            }
        }
        let sql = sql.join("\n");
        match (kind, query.is_some()) {
            ("query", false) => query = Some(sql),
            ("query", true) => bail!("more than one query record"),
            (_, false) => setup.push(sql),
            (_, true) => teardown.push(sql),
        }
    }
    let Some(sql) = query else {
        bail!("no query record")
    };
    Ok(Query {
        name: name.to_owned(),
        setup,
        sql,
        teardown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpch_has_22_queries_and_q15_keeps_its_view() {
        let queries = tpch().expect("the corpus parses");
        assert_eq!(queries.len(), 22);
        assert!(queries[0].sql.starts_with("select\n    l_returnflag"));
        assert!(queries[0].setup.is_empty() && queries[0].teardown.is_empty());
        let q15 = &queries[14];
        assert_eq!(q15.name, "q15");
        assert!(q15.setup[0].starts_with("create view revenue0"));
        assert_eq!(q15.teardown, ["drop view revenue0"]);
        assert!(!q15.sql.contains("----"));
    }

    #[test]
    fn selects_by_number() {
        let picked = select(
            tpch().expect("parses"),
            &["1".into(), "q15".into(), "Q06".into()],
        );
        let names: Vec<&str> = picked.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["q01", "q06", "q15"]);
    }
}
