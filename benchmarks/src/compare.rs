//! Answer checking across engines. Every engine's rows arrive as text (`None` for NULL); cells
//! are normalised (numbers parsed, booleans and timestamp spellings unified) and rows compared
//! as multisets, since ties in `ORDER BY` may come back in any order. Numbers agree within a
//! relative 1e-6 or an absolute 0.01: engines keep decimals at different scales (an average as
//! `decimal(19,6)` here, a double there) and TPC-DS reports money rounded to cents.

use std::cmp::Ordering;

/// A result set: rows of cells as text, `None` for NULL.
pub type Rows = Vec<Vec<Option<String>>>;

const RELATIVE_TOLERANCE: f64 = 1e-6;
const ABSOLUTE_TOLERANCE: f64 = 0.01;
/// Above this many rows the fallback matching (quadratic) is skipped.
const MATCHING_LIMIT: usize = 5_000;

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Number(f64),
    Text(String),
}

impl Cell {
    fn parse(value: Option<&str>) -> Self {
        let Some(raw) = value else { return Cell::Null };
        let text = raw.trim();
        if looks_numeric(text)
            && let Ok(number) = text.parse::<f64>()
        {
            return Cell::Number(number);
        }
        match text.to_ascii_lowercase().as_str() {
            "nan" => return Cell::Number(f64::NAN),
            "inf" | "infinity" | "+inf" | "+infinity" => return Cell::Number(f64::INFINITY),
            "-inf" | "-infinity" => return Cell::Number(f64::NEG_INFINITY),
            _ => {}
        }
        match text {
            "true" | "t" => return Cell::Text("t".into()),
            "false" | "f" => return Cell::Text("f".into()),
            _ => {}
        }
        Cell::Text(normalise_time(text))
    }

    fn agrees(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Number(a), Cell::Number(b)) => numbers_agree(*a, *b),
            (Cell::Text(a), Cell::Text(b)) => a == b,
            _ => false,
        }
    }

    /// A key that orders rows the same way on both sides when their cells agree.
    fn sort_key(&self) -> String {
        match self {
            Cell::Null => "\u{0}".into(),
            Cell::Number(n) => format!("{n:+022.2}"),
            Cell::Text(t) => t.clone(),
        }
    }
}

fn looks_numeric(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty()
        && digits
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

fn numbers_agree(a: f64, b: f64) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    let difference = (a - b).abs();
    difference <= ABSOLUTE_TOLERANCE || difference <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

/// `2000-01-01T00:00:00` and `2000-01-01 00:00:00` and `2000-01-01` are the same day to the
/// checker: engines differ in whether date arithmetic yields a date or a timestamp.
fn normalise_time(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_date_prefix = bytes.len() >= 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[..4].iter().all(u8::is_ascii_digit);
    if !is_date_prefix {
        return text.to_owned();
    }
    let mut out = text.replacen('T', " ", 1);
    for suffix in [" 00:00:00.000", " 00:00:00"] {
        if let Some(day) = out.strip_suffix(suffix) {
            out = day.to_owned();
            break;
        }
    }
    out
}

/// Whether two engines gave the same answer, and where not, the first difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch(String),
}

impl Verdict {
    pub fn is_match(&self) -> bool {
        matches!(self, Verdict::Match)
    }
}

/// Compares two result sets as multisets of normalised rows.
pub fn compare(left: &Rows, right: &Rows) -> Verdict {
    if left.len() != right.len() {
        return Verdict::Mismatch(format!("{} rows vs {} rows", left.len(), right.len()));
    }
    let left = normalise(left);
    let right = normalise(right);
    if let Some((l, r)) = left.iter().zip(&right).find(|(l, r)| l.len() != r.len()) {
        return Verdict::Mismatch(format!("{} columns vs {} columns", l.len(), r.len()));
    }
    let first_difference = left.iter().zip(&right).position(|(l, r)| !rows_agree(l, r));
    let Some(index) = first_difference else {
        return Verdict::Match;
    };
    // Sorting by rounded keys can order two nearly equal numbers differently on each side:
    // fall back to matching every row with any equal unmatched row.
    if left.len() <= MATCHING_LIMIT && multiset_match(&left, &right) {
        return Verdict::Match;
    }
    Verdict::Mismatch(format!(
        "row {index} differs: {} vs {}",
        show(&left[index]),
        show(&right[index])
    ))
}

fn normalise(rows: &Rows) -> Vec<Vec<Cell>> {
    let mut cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|row| row.iter().map(|v| Cell::parse(v.as_deref())).collect())
        .collect();
    cells.sort_by(|a, b| compare_keys(a, b));
    cells
}

fn compare_keys(a: &[Cell], b: &[Cell]) -> Ordering {
    a.iter()
        .map(Cell::sort_key)
        .cmp(b.iter().map(Cell::sort_key))
}

fn rows_agree(a: &[Cell], b: &[Cell]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.agrees(y))
}

fn multiset_match(left: &[Vec<Cell>], right: &[Vec<Cell>]) -> bool {
    let mut used = vec![false; right.len()];
    left.iter().all(|row| {
        let found = right
            .iter()
            .enumerate()
            .find(|(i, other)| !used[*i] && rows_agree(row, other));
        match found {
            Some((i, _)) => {
                used[i] = true;
                true
            }
            None => false,
        }
    })
}

fn show(row: &[Cell]) -> String {
    let cells: Vec<String> = row
        .iter()
        .map(|cell| match cell {
            Cell::Null => "NULL".into(),
            Cell::Number(n) => n.to_string(),
            Cell::Text(t) => format!("{t:?}"),
        })
        .collect();
    let mut text = format!("({})", cells.join(", "));
    if text.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[&[Option<&str>]]) -> Rows {
        values
            .iter()
            .map(|row| row.iter().map(|v| v.map(str::to_owned)).collect())
            .collect()
    }

    #[test]
    fn decimals_and_doubles_agree_within_tolerance() {
        let basin = rows(&[&[Some("A"), Some("25.522005"), Some("505822441.4861")]]);
        let duckdb = rows(&[&[Some("A"), Some("25.52200502"), Some("505822441.48610014")]]);
        assert_eq!(compare(&basin, &duckdb), Verdict::Match);
        let off = rows(&[&[Some("A"), Some("25.6"), Some("505822441.4861")]]);
        assert!(!compare(&basin, &off).is_match());
    }

    #[test]
    fn order_nulls_booleans_and_dates_are_normalised() {
        let left = rows(&[
            &[Some("b"), None, Some("t")],
            &[Some("a"), Some("1998-01-01"), Some("false")],
        ]);
        let right = rows(&[
            &[Some("a"), Some("1998-01-01T00:00:00"), Some("f")],
            &[Some("b"), None, Some("true")],
        ]);
        assert_eq!(compare(&left, &right), Verdict::Match);
        let null_vs_text = rows(&[
            &[Some("a"), Some("1998-01-01"), Some("f")],
            &[Some("b"), Some("NULL"), Some("t")],
        ]);
        assert!(!compare(&left, &null_vs_text).is_match());
    }

    #[test]
    fn row_counts_and_duplicates_matter() {
        let one = rows(&[&[Some("1")], &[Some("1")], &[Some("2")]]);
        let other = rows(&[&[Some("1")], &[Some("2")], &[Some("2")]]);
        assert!(!compare(&one, &other).is_match());
        assert!(!compare(&one, &one[..2].to_vec()).is_match());
    }

    #[test]
    fn text_that_looks_like_a_number_only_when_it_is_one() {
        assert_eq!(
            Cell::parse(Some("12-253-590-5816")),
            Cell::Text("12-253-590-5816".into())
        );
        assert_eq!(Cell::parse(Some("-1.5e3")), Cell::Number(-1500.0));
        assert_eq!(
            Cell::parse(Some("Supplier#1")),
            Cell::Text("Supplier#1".into())
        );
    }
}
