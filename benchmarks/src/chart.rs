//! A hand-written SVG chart of a suite: one row per query, one bar per engine, on a log scale
//! (query times span four orders of magnitude), with the geometric means on top.

use std::fmt::Write as _;

use crate::report::{summarise, title};
use crate::runner::{ENGINES, SuiteResult, scale_name};

const COLOURS: [&str; 3] = ["#2b6cb0", "#d69e2e", "#718096"];
const LABELS: [&str; 3] = ["Basin", "DuckDB", "DataFusion"];
const BAR: f64 = 6.0;
const ROW: f64 = 3.0 * BAR + 6.0;
const LEFT: f64 = 70.0;
const WIDTH: f64 = 760.0;
const TOP: f64 = 60.0;

pub fn svg(result: &SuiteResult) -> String {
    let summary = summarise(result);
    let mut rows: Vec<(String, [Option<f64>; 3])> = vec![("geomean".into(), summary.geomean_ms)];
    for query in &result.queries {
        rows.push((
            query.name.clone(),
            ENGINES.map(|e| {
                let engine = query.engine(e);
                engine.error.is_none().then_some(engine.median_ms).flatten()
            }),
        ));
    }
    let values = rows.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let low = values.clone().fold(f64::INFINITY, f64::min).max(0.1);
    let high = values.fold(0.0_f64, f64::max).max(low * 10.0);
    let (low_exp, high_exp) = (low.log10().floor(), high.log10().ceil());
    let plot = WIDTH - LEFT - 20.0;
    let x = |ms: f64| LEFT + (ms.max(0.1).log10() - low_exp) / (high_exp - low_exp) * plot;
    let height = TOP + rows.len() as f64 * ROW + 30.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{} {}: median ms per query (log scale, shorter is faster)</text>"#,
        title(&result.suite),
        scale_name(result.scale).to_uppercase()
    );
    for (index, label) in LABELS.iter().enumerate() {
        let lx = LEFT + index as f64 * 110.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="28" width="10" height="10" fill="{}"/><text x="{}" y="37">{label}</text>"#,
            COLOURS[index],
            lx + 14.0
        );
    }
    let mut exponent = low_exp;
    while exponent <= high_exp {
        let gx = x(10f64.powf(exponent));
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{}" x2="{gx:.1}" y2="{}" stroke="#ddd"/><text x="{gx:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP - 8.0,
            height - 25.0,
            height - 12.0,
            format_ms(10f64.powf(exponent))
        );
        exponent += 1.0;
    }
    for (row, (name, values)) in rows.iter().enumerate() {
        let y = TOP + row as f64 * ROW;
        let weight = if row == 0 { "bold" } else { "normal" };
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-weight="{weight}">{name}</text>"#,
            LEFT - 6.0,
            y + ROW / 2.0
        );
        for (index, value) in values.iter().enumerate() {
            let by = y + index as f64 * BAR;
            match value {
                Some(ms) => {
                    let _ = writeln!(
                        svg,
                        r#"<rect x="{LEFT}" y="{by:.1}" width="{:.1}" height="{}" fill="{}"><title>{} {name}: {ms:.1} ms</title></rect>"#,
                        (x(*ms) - LEFT).max(1.0),
                        BAR - 1.0,
                        COLOURS[index],
                        LABELS[index]
                    );
                }
                None => {
                    let _ = writeln!(
                        svg,
                        r##"<text x="{}" y="{:.1}" font-size="7" fill="#c53030">{} failed</text>"##,
                        LEFT + 2.0,
                        by + BAR - 1.0,
                        LABELS[index]
                    );
                }
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{}s", ms / 1000.0)
    } else {
        format!("{ms}ms")
    }
}
