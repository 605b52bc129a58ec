//! A mismatch written out twice: the full statement list with the seed and round that reproduce
//! it (`<out>/...sql`), and a `.slt` regression file (`<slt-dir>/...slt`, which the corpus runner
//! picks up like any other file under `sql-tests/slt/`). The `.slt` expects the left side's rows
//! from both queries (the right side's if the left one failed), so it fails until the two agree.

use std::fmt::Write as _;
use std::fs;

use super::Options;
use super::checks::{Check, Query};
use super::compare::{Outcome, Rows};
use super::runner::Variant;
use super::schema::{Class, Schema};

/// One side of a mismatch: where it ran and what it returned.
#[derive(Clone, Debug)]
pub(super) struct Side {
    pub(super) label: String,
    pub(super) settings: Vec<String>,
    pub(super) outcome: Outcome,
    /// Ran on the reference cluster rather than the cluster under test.
    pub(super) reference: bool,
}

impl Side {
    pub(super) fn defaults(outcome: &Outcome) -> Self {
        Self {
            label: "default settings".to_string(),
            settings: Vec::new(),
            outcome: outcome.clone(),
            reference: false,
        }
    }

    pub(super) fn variant(variant: &Variant, outcome: &Outcome) -> Self {
        Self {
            label: format!("config {}", variant.name),
            settings: set_statements(variant),
            outcome: outcome.clone(),
            reference: false,
        }
    }

    pub(super) fn cluster(executors: u32, outcome: &Outcome, reference: bool) -> Self {
        Self {
            label: format!("cluster with {executors} executors"),
            settings: Vec::new(),
            outcome: outcome.clone(),
            reference,
        }
    }
}

fn set_statements(variant: &Variant) -> Vec<String> {
    variant
        .settings
        .iter()
        .map(|(name, value)| format!("SET {name} = '{value}'"))
        .collect()
}

/// A pair of queries that should have agreed and did not.
#[derive(Clone, Debug)]
pub(super) struct Mismatch {
    /// What disagreed, for people: `tlp_where under config batch_size=1`.
    pub(super) oracle: String,
    /// The counter it was counted under.
    pub(super) stats_key: String,
    /// The known bug it was attributed to, if any.
    pub(super) known: Option<&'static str>,
    pub(super) seed: u64,
    pub(super) round: u64,
    pub(super) index: usize,
    pub(super) executors: u32,
    pub(super) left_sql: String,
    pub(super) right_sql: String,
    pub(super) classes: Vec<Class>,
    pub(super) left: Side,
    pub(super) right: Side,
}

impl Mismatch {
    /// The two queries of a check disagreed (under the defaults, or under `variant`).
    pub(super) fn oracle(
        options: &Options,
        round: u64,
        index: usize,
        check: &Check,
        left: &Outcome,
        right: &Outcome,
        variant: Option<&Variant>,
    ) -> Self {
        let side = |outcome: &Outcome| match variant {
            Some(variant) => Side::variant(variant, outcome),
            None => Side::defaults(outcome),
        };
        Self {
            oracle: match variant {
                Some(variant) => format!("{} under config {}", check.oracle, variant.name),
                None => check.oracle.to_string(),
            },
            stats_key: check.oracle.to_string(),
            known: None,
            seed: options.seed,
            round,
            index,
            executors: options.executors,
            left_sql: check.left.sql.clone(),
            right_sql: check.right.sql.clone(),
            classes: check.left.classes.clone(),
            left: side(left),
            right: side(right),
        }
    }

    /// One query gave different answers in two configurations or on two clusters.
    pub(super) fn differential(
        options: &Options,
        round: u64,
        index: usize,
        name: &str,
        query: &Query,
        left: Side,
        right: Side,
    ) -> Self {
        Self {
            oracle: name.to_string(),
            stats_key: name.to_string(),
            known: None,
            seed: options.seed,
            round,
            index,
            executors: options.executors,
            left_sql: query.sql.clone(),
            right_sql: query.sql.clone(),
            classes: query.classes.clone(),
            left,
            right,
        }
    }

    fn slug(&self) -> String {
        let oracle: String = self
            .oracle
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!(
            "seed{}_round{}_check{}_{}",
            self.seed,
            self.round,
            self.index,
            oracle.trim_matches('_')
        )
    }

    /// The setup statements of the tables the queries use.
    fn setup<'a>(&self, schema: &'a Schema) -> Vec<&'a str> {
        let used: Vec<&str> = schema
            .tables
            .iter()
            .map(|table| table.name.as_str())
            .filter(|name| {
                let needle = format!("{name} AS ");
                self.left_sql.contains(&needle) || self.right_sql.contains(&needle)
            })
            .collect();
        schema
            .setup
            .iter()
            .map(String::as_str)
            .filter(|statement| {
                used.iter().any(|name| {
                    statement.starts_with(&format!("CREATE TABLE {name} "))
                        || statement.starts_with(&format!("INSERT INTO {name} "))
                })
            })
            .collect()
    }

    fn reproduce_command(&self, options: &Options) -> String {
        format!(
            "cargo run -p basin-sql-tests --bin basin-oracle -- --seed {} --schemas {} --round {} --executors {}{}",
            self.seed,
            options.schemas,
            self.round,
            self.executors,
            options
                .reference_executors
                .map(|n| format!(" --reference-executors {n}"))
                .unwrap_or_default()
        )
    }

    /// Writes the statement list and the `.slt` file; returns what was written (or why not).
    pub(super) fn write(&self, schema: &Schema, options: &Options) -> String {
        let slug = self.slug();
        let setup = self.setup(schema);
        let mut sql = String::new();
        let _ = writeln!(sql, "-- basin-oracle mismatch: {}", self.oracle);
        if let Some(known) = self.known {
            let _ = writeln!(
                sql,
                "-- looks like the known bug {known} (basin-oracle --list-known)"
            );
        }
        let _ = writeln!(
            sql,
            "-- seed {}, round {}, check {}; reproduce: {}",
            self.seed,
            self.round,
            self.index,
            self.reproduce_command(options)
        );
        for statement in &setup {
            let _ = writeln!(sql, "{statement};");
        }
        for (side, query) in [(&self.left, &self.left_sql), (&self.right, &self.right_sql)] {
            let _ = writeln!(sql, "-- {}: {}", side.label, summary(&side.outcome));
            for set in &side.settings {
                let _ = writeln!(sql, "{set};");
            }
            let _ = writeln!(sql, "{query};");
        }

        let slt = self.slt(&setup, options);
        let mut written = Vec::new();
        for (dir, extension, text) in [
            (&options.out_dir, "sql", &sql),
            (&options.slt_dir, "slt", &slt),
        ] {
            let path = dir.join(format!("{slug}.{extension}"));
            match fs::create_dir_all(dir).and_then(|()| fs::write(&path, text)) {
                Ok(()) => written.push(path.display().to_string()),
                Err(err) => written.push(format!("(could not write {}: {err})", path.display())),
            }
        }
        format!(
            "{}{}: {} vs {}\n  {}",
            self.oracle,
            self.known
                .map(|known| format!(" (looks like known {known})"))
                .unwrap_or_default(),
            summary(&self.left.outcome),
            summary(&self.right.outcome),
            written.join("\n  ")
        )
    }

    fn slt(&self, setup: &[&str], options: &Options) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# basin-oracle mismatch: {}", self.oracle);
        if let Some(known) = self.known {
            let _ = writeln!(
                out,
                "# looks like the known bug {known} (basin-oracle --list-known)"
            );
        }
        let _ = writeln!(
            out,
            "# seed {}, round {}, check {}; found on a cluster with {} executors",
            self.seed, self.round, self.index, self.executors
        );
        let _ = writeln!(out, "# reproduce: {}", self.reproduce_command(options));
        let _ = writeln!(
            out,
            "# {}: {}\n# {}: {}",
            self.left.label,
            summary(&self.left.outcome),
            self.right.label,
            summary(&self.right.outcome)
        );
        let _ = writeln!(
            out,
            "# Both queries must return the rows below ({} side's answer).\n",
            if matches!(self.left.outcome, Outcome::Rows(_)) {
                "the left"
            } else {
                "the right"
            }
        );
        for statement in setup {
            let _ = writeln!(out, "statement ok\n{statement}\n");
        }
        let expected = match (&self.left.outcome, &self.right.outcome) {
            (Outcome::Rows(rows), _) | (_, Outcome::Rows(rows)) => Some(rows),
            _ => None,
        };
        let types: String = self
            .classes
            .iter()
            .map(|class| class.slt_letter())
            .collect();
        let queries: Vec<(&Side, &String)> = if self.left_sql == self.right_sql
            && self.left.settings.is_empty()
            && self.right.settings.is_empty()
        {
            // Two clusters, one query: the corpus runs every file on every cluster shape.
            vec![(&self.left, &self.left_sql)]
        } else {
            vec![(&self.left, &self.left_sql), (&self.right, &self.right_sql)]
        };
        let mut current: &[String] = &[];
        for (side, query) in queries {
            // Only the left side may run with the defaults; RESET does not restore a
            // `datafusion.*` setting in Basin, so a side's settings are applied once and kept.
            if side.settings.as_slice() != current {
                for set in &side.settings {
                    let _ = writeln!(out, "statement ok\n{set}\n");
                }
                current = &side.settings;
            }
            match (expected, &side.outcome) {
                (Some(rows), _) => {
                    let _ = writeln!(out, "query {types} rowsort\n{query}\n----");
                    for line in slt_rows(rows) {
                        let _ = writeln!(out, "{line}");
                    }
                    let _ = writeln!(out);
                }
                (None, Outcome::Error { sqlstate, .. }) => {
                    let _ = writeln!(out, "statement error ({sqlstate})\n{query}\n");
                }
                (None, Outcome::Rows(_)) => {}
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
        out
    }
}

/// Rows as the corpus harness renders and `rowsort` orders them.
fn slt_rows(rows: &Rows) -> Vec<String> {
    let mut rendered: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|value| match value.as_deref() {
                    None => "NULL".to_string(),
                    Some("") => "(empty)".to_string(),
                    Some(text) => text.to_string(),
                })
                .collect()
        })
        .collect();
    rendered.sort_unstable();
    rendered
        .iter()
        .map(|row| {
            row.iter()
                .map(|value| value.split_ascii_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// A one-line description of an outcome.
pub(super) fn summary(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Rows(rows) => {
            let preview: Vec<String> = rows
                .iter()
                .take(4)
                .map(|row| {
                    let values: Vec<&str> = row
                        .iter()
                        .map(|value| value.as_deref().unwrap_or("NULL"))
                        .collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            format!(
                "{} rows [{}{}]",
                rows.len(),
                preview.join(" "),
                if rows.len() > 4 { " ..." } else { "" }
            )
        }
        Outcome::Error { sqlstate, message } => format!("error {sqlstate}: {message}"),
    }
}
