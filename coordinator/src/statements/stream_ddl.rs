//! `CREATE TABLE ... (..., WATERMARK FOR ts AS ts - INTERVAL '5 seconds') APPEND ONLY
//! [WITH (...)]`: the streaming-table DDL. sqlparser knows neither `WATERMARK FOR` nor
//! `APPEND ONLY`, so a token pass takes them out before parsing and remembers them per
//! statement; the rest is an ordinary `CREATE TABLE` that DataFusion plans for the columns.

use std::sync::Arc;

use basin_catalog::streams::StreamDefinition;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CreateTableOptions, Expr as SqlExpr, SqlOption, Statement as SqlStatement, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::Output;
use super::ddl::resolve;
use crate::error::{Error, Result};
use crate::session::Session;

/// What the token pass took out of one `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamClause {
    /// `WATERMARK FOR <column> AS <expression>`.
    pub(crate) watermark: Option<(String, String)>,
}

/// Cheap test before tokenizing: only SQL mentioning these words can hold streaming DDL.
fn may_hold_stream_ddl(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("append") || lower.contains("watermark")
}

/// Removes `WATERMARK FOR ...` and `APPEND ONLY` from every `CREATE TABLE` in `sql`. Returns
/// the SQL to parse and, per non-empty statement, the streaming clause if it had one.
///
/// Only byte ranges of the original text are cut out; tokens are never rendered back to text,
/// which would lose quote escaping (`'it''s'`) and change what the SQL means.
pub(crate) fn extract(sql: &str) -> Result<(String, Vec<Option<StreamClause>>)> {
    if !may_hold_stream_ddl(sql) {
        return Ok((sql.to_owned(), Vec::new()));
    }
    let dialect = PostgreSqlDialect {};
    let spanned = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Error::syntax(e.to_string()))?;
    let lines = line_starts(sql);
    let mut starts: Vec<usize> = spanned
        .iter()
        .map(|t| byte_offset(sql, &lines, t.span.start.line, t.span.start.column))
        .collect();
    starts.push(sql.len());
    let tokens: Vec<Token> = spanned.into_iter().map(|t| t.token).collect();
    let mut clauses = Vec::new();
    let mut cut: Vec<std::ops::Range<usize>> = Vec::new();
    let mut begin = 0;
    for end in (0..=tokens.len()).filter(|&i| i == tokens.len() || tokens[i] == Token::SemiColon) {
        let statement = &tokens[begin..end];
        if statement.iter().any(|t| !is_space(t)) {
            let (clause, removals) = analyze_statement(statement)?;
            for (from, to) in removals {
                cut.push(starts[begin + from]..starts[begin + to]);
            }
            clauses.push(clause);
        }
        begin = end + 1;
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for range in cut {
        out.push_str(sql.get(at..range.start).unwrap_or_default());
        at = range.end;
    }
    out.push_str(sql.get(at..).unwrap_or_default());
    Ok((out, clauses))
}

/// Byte offset of each line's start.
fn line_starts(sql: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Byte offset of a tokenizer location (1-based line and character column).
fn byte_offset(sql: &str, lines: &[usize], line: u64, column: u64) -> usize {
    let Some(&line_start) = usize::try_from(line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|l| lines.get(l))
    else {
        return sql.len();
    };
    let rest = sql.get(line_start..).unwrap_or_default();
    let skip = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    rest.char_indices()
        .nth(skip)
        .map_or(sql.len(), |(i, _)| line_start + i)
}

fn is_space(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

fn is_word(token: &Token, keyword: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(keyword))
}

/// Text of tokens, for the watermark expression as stored and shown (not re-parsed).
fn text(tokens: &[Token]) -> String {
    tokens.iter().map(ToString::to_string).collect::<String>()
}

/// An identifier as Postgres folds it: unquoted names are lower-cased.
fn identifier(token: &Token) -> Option<String> {
    match token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_lowercase()),
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}

/// The streaming clause of one statement and the token index ranges to cut out for it.
type Removals = Vec<(usize, usize)>;

fn analyze_statement(tokens: &[Token]) -> Result<(Option<StreamClause>, Removals)> {
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !is_space(&tokens[i]))
        .collect();
    let is_create_table = words.len() >= 2
        && is_word(&tokens[words[0]], "create")
        && is_word(&tokens[words[1]], "table");
    if !is_create_table {
        return Ok((None, Vec::new()));
    }
    let mut keep = vec![true; tokens.len()];
    let mut watermark = None;
    let mut append_only = false;
    let mut depth = 0usize;
    let mut list_seen = false;
    // Just after the column list's "(" or a "," in it: a new element may start.
    let mut at_element_start = false;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        if is_space(token) {
            i += 1;
            continue;
        }
        let next_word = (i + 1..tokens.len()).find(|&j| !is_space(&tokens[j]));
        if depth == 1
            && at_element_start
            && is_word(token, "watermark")
            && next_word.is_some_and(|j| is_word(&tokens[j], "for"))
        {
            let end = element_end(tokens, i);
            let (column, expression) = parse_watermark(&tokens[i..end])?;
            if watermark.replace((column, expression)).is_some() {
                return Err(Error::syntax("a table can have only one WATERMARK"));
            }
            // Drop the element and the comma before it (or after it, for the first one).
            let comma_before = (0..i)
                .rev()
                .find(|&j| !is_space(&tokens[j]))
                .filter(|&j| tokens[j] == Token::Comma);
            let from = comma_before.unwrap_or(i);
            let mut to = end;
            if comma_before.is_none() && tokens.get(end) == Some(&Token::Comma) {
                to = end + 1;
            }
            for flag in &mut keep[from..to] {
                *flag = false;
            }
            i = end;
            at_element_start = false;
            continue;
        }
        at_element_start = false;
        match token {
            Token::LParen => {
                depth += 1;
                if depth == 1 && !list_seen {
                    list_seen = true;
                    at_element_start = true;
                }
            }
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 1 => at_element_start = true,
            _ if depth == 0 && is_word(token, "append") => {
                if let Some(next) = next_word.filter(|&j| is_word(&tokens[j], "only")) {
                    for flag in &mut keep[i..=next] {
                        *flag = false;
                    }
                    append_only = true;
                    i = next + 1;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !append_only && watermark.is_none() {
        return Ok((None, Vec::new()));
    }
    let mut removals = Vec::new();
    let mut i = 0;
    while i < keep.len() {
        if keep[i] {
            i += 1;
            continue;
        }
        let from = i;
        while i < keep.len() && !keep[i] {
            i += 1;
        }
        removals.push((from, i));
    }
    Ok((Some(StreamClause { watermark }), removals))
}

/// Index just past a column-list element starting at `from`: the next comma or closing
/// parenthesis at the same depth.
fn element_end(tokens: &[Token], from: usize) -> usize {
    let mut depth = 0usize;
    for (j, token) in tokens.iter().enumerate().skip(from) {
        match token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => return j,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => return j,
            _ => {}
        }
    }
    tokens.len()
}

/// `WATERMARK FOR <column> AS <expression>`.
fn parse_watermark(tokens: &[Token]) -> Result<(String, String)> {
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !is_space(&tokens[i]))
        .collect();
    let malformed = || Error::syntax("expected WATERMARK FOR <column> AS <expression>".to_owned());
    if words.len() < 5 || !is_word(&tokens[words[1]], "for") || !is_word(&tokens[words[3]], "as") {
        return Err(malformed());
    }
    let column = identifier(&tokens[words[2]]).ok_or_else(malformed)?;
    let expression = text(&tokens[words[4]..]).trim().to_owned();
    Ok((column, expression))
}

/// Executes a `CREATE TABLE` that the token pass marked as streaming.
pub(super) async fn execute(
    session: &Arc<Session>,
    statement: &DfStatement,
    clause: &StreamClause,
) -> Result<Output> {
    let DfStatement::Statement(inner) = statement else {
        return Err(Error::syntax("APPEND ONLY applies to CREATE TABLE only"));
    };
    let SqlStatement::CreateTable(create) = inner.as_ref() else {
        return Err(Error::syntax("APPEND ONLY applies to CREATE TABLE only"));
    };
    if create.query.is_some() {
        return Err(Error::unsupported(
            "CREATE TABLE ... APPEND ONLY AS SELECT is not supported; create the table, then \
             INSERT ... SELECT",
        ));
    }
    if create.or_replace || create.temporary || create.external {
        return Err(Error::unsupported(
            "a streaming table cannot be OR REPLACE, TEMPORARY or EXTERNAL",
        ));
    }
    let options = with_options(&create.table_options)?;
    let mut plain = create.clone();
    plain.table_options = CreateTableOptions::None;
    plain.if_not_exists = false;
    let plan = session
        .ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(SqlStatement::CreateTable(
            plain,
        ))))
        .await?;
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) = plan else {
        return Err(Error::Internal(
            "CREATE TABLE did not plan as a table".to_owned(),
        ));
    };
    let columns = basin_catalog::model::columns_of(cmd.input.schema().as_arrow());
    let target = resolve(session, &cmd.name);
    let definition = StreamDefinition {
        columns,
        watermark: clause.watermark.clone(),
        options,
    };
    session
        .server
        .catalog
        .create_stream_table(&target, &definition, create.if_not_exists)
        .await?;
    Ok(Output::Command("CREATE TABLE".to_owned()))
}

/// `WITH (key = 'value', ...)` as lower-case keys and plain values.
fn with_options(options: &CreateTableOptions) -> Result<Vec<(String, String)>> {
    let list = match options {
        CreateTableOptions::None => return Ok(Vec::new()),
        CreateTableOptions::With(list) => list,
        other => {
            return Err(Error::unsupported(format!(
                "table options {other} are not supported; use WITH (key = 'value')"
            )));
        }
    };
    list.iter()
        .map(|option| match option {
            SqlOption::KeyValue { key, value } => {
                let value = match value {
                    SqlExpr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                        Value::Number(n, _) => n.clone(),
                        Value::Boolean(b) => b.to_string(),
                        other => other.to_string(),
                    },
                    SqlExpr::Identifier(ident) => ident.value.clone(),
                    other => other.to_string(),
                };
                Ok((key.value.to_lowercase(), value))
            }
            other => Err(Error::unsupported(format!(
                "table option {other} is not supported; use WITH (key = 'value')"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_and_append_only_are_taken_out() {
        let (sql, clauses) = extract(
            "CREATE TABLE events (device_id TEXT, ts TIMESTAMPTZ, temp DOUBLE PRECISION, \
             WATERMARK FOR ts AS ts - INTERVAL '5 seconds') APPEND ONLY WITH (shards = 2); \
             SELECT 1",
        )
        .expect("extract");
        assert_eq!(
            sql,
            "CREATE TABLE events (device_id TEXT, ts TIMESTAMPTZ, temp DOUBLE PRECISION)  \
             WITH (shards = 2); SELECT 1"
        );
        assert_eq!(
            clauses,
            vec![
                Some(StreamClause {
                    watermark: Some(("ts".into(), "ts - INTERVAL '5 seconds'".into()))
                }),
                None
            ]
        );
    }

    #[test]
    fn watermark_first_and_plain_tables() {
        let (sql, clauses) =
            extract("create table t (watermark for ts as ts, ts timestamp) append only")
                .expect("extract");
        assert_eq!(sql, "create table t ( ts timestamp) ");
        assert!(clauses[0].is_some());
        let (sql, clauses) = extract("create table t (append_col int)").expect("extract");
        assert_eq!(sql, "create table t (append_col int)");
        assert_eq!(clauses, vec![None]);
        assert!(extract("create table t (a int, watermark for ts) append only").is_err());
        let (sql, _) = extract("create table t (watermark int) append only").expect("extract");
        assert_eq!(sql, "create table t (watermark int) ");
    }

    #[test]
    fn other_text_is_kept_byte_for_byte() {
        // Quote escapes survive: re-rendering tokens would turn '' into ' and change meaning.
        let input = "INSERT INTO notes VALUES ('x''); DROP TABLE accounts; --append');\n\
                     SELECT E'a\\'b append', \"we\"\"ird\" FROM t;\n\
                     CREATE TABLE ü (a TEXT, WATERMARK FOR a AS a) APPEND ONLY";
        let (sql, clauses) = extract(input).expect("extract");
        assert_eq!(
            sql,
            input
                .replace(", WATERMARK FOR a AS a", "")
                .replace("APPEND ONLY", "")
        );
        assert_eq!(clauses.len(), 3);
        assert_eq!(clauses[0], None);
        assert_eq!(clauses[1], None);
        assert!(clauses[2].is_some());
    }
}
