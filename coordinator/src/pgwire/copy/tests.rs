//! Decoder tests: the formats, rows cut at every possible chunk boundary, and random bytes
//! that must come out as errors, never as panics.

use std::sync::Arc;

use arrow::array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int16Array,
    Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::sql::sqlparser::ast::{CopyTarget, Statement as SqlStatement};

use super::binary::{BinaryDecoder, SIGNATURE, numeric};
use super::options::{Format, TextOptions, column_targets, format};
use super::text::{TextDecoder, unescape};
use super::{DecodeError, Layout, RowDecoder, Status, Taken};
use crate::statements::parse;

fn layout(fields: Vec<Field>) -> Layout {
    let width = fields.len();
    Layout {
        targets: (0..width).collect(),
        schema: Arc::new(Schema::new(fields)),
    }
}

fn text_layout(names: &[&str]) -> Layout {
    layout(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect(),
    )
}

/// Feeds `data` in chunks of `chunk` bytes the way the connection does; returns every batch.
fn run(decoder: &mut dyn RowDecoder, data: &[u8], chunk: usize) -> Result<Vec<Taken>, DecodeError> {
    let mut batches = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut drain = |decoder: &mut dyn RowDecoder,
                     pending: &mut Vec<u8>,
                     at_end: bool|
     -> Result<(), DecodeError> {
        let mut at = 0;
        loop {
            let step = decoder.decode(&pending[at..], at_end)?;
            at += step.consumed;
            if step.status == Status::Full {
                batches.push(decoder.take());
            } else {
                break;
            }
        }
        pending.drain(..at);
        Ok(())
    };
    for piece in data.chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        drain(decoder, &mut pending, false)?;
    }
    drain(decoder, &mut pending, true)?;
    batches.push(decoder.take());
    Ok(batches)
}

/// Every row of every batch as text, NULL as `None`.
fn rows(batches: &[Taken]) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.rows {
            out.push(
                batch
                    .columns
                    .iter()
                    .map(|column| {
                        let strings = column
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .expect("text columns are Utf8");
                        strings.is_valid(row).then(|| strings.value(row).to_owned())
                    })
                    .collect(),
            );
        }
    }
    out
}

fn bad(batches: &[Taken]) -> Vec<DecodeError> {
    batches.iter().flat_map(|b| b.bad.clone()).collect()
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some((*v).to_owned())).collect()
}

fn decode_text(options: TextOptions, names: &[&str], data: &[u8]) -> Vec<Taken> {
    let mut decoder = TextDecoder::new(options, text_layout(names), false, true);
    run(&mut decoder, data, data.len()).expect("decodes")
}

#[test]
fn text_rows_with_escapes_nulls_and_end_marker() {
    let data = b"a\t1\tx\\ty\nb\t\\N\t\\101\\x42\\\\\nc\t3\tline\\nbreak\r\n\\.\nignored\n";
    let batches = decode_text(TextOptions::text(), &["k", "n", "s"], data);
    assert_eq!(
        rows(&batches),
        vec![
            some(&["a", "1", "x\ty"]),
            vec![Some("b".to_owned()), None, Some("AB\\".to_owned())],
            some(&["c", "3", "line\nbreak"]),
        ]
    );
    assert!(bad(&batches).is_empty());
}

#[test]
fn text_escaped_newline_and_delimiter_are_data() {
    let data = b"one\\\ntwo\tthree\\\tfour\n";
    let batches = decode_text(TextOptions::text(), &["a", "b"], data);
    assert_eq!(rows(&batches), vec![some(&["one\ntwo", "three\tfour"])]);
}

#[test]
fn unescape_covers_postgres_escapes() {
    let mut out = Vec::new();
    unescape(b"\\b\\f\\n\\r\\t\\v\\0\\7\\777\\x4\\xzz\\q\\", &mut out);
    assert_eq!(out, b"\x08\x0c\n\r\t\x0b\x00\x07\xff\x04xzzq\\");
}

#[test]
fn text_last_row_without_newline_and_header() {
    let options = TextOptions {
        header: true,
        ..TextOptions::text()
    };
    let batches = decode_text(options, &["a"], b"title\nfirst\nlast");
    assert_eq!(rows(&batches), vec![some(&["first"]), some(&["last"])]);
}

#[test]
fn csv_quotes_empty_strings_and_embedded_newlines() {
    let options = TextOptions {
        header: true,
        ..TextOptions::csv()
    };
    let data = b"a,b,c\r\n1,\"x, \"\"y\"\"\",\r\n2,\"\",\"multi\nline\"\n3,plain,\"\"\"\"\n\\.\n";
    let batches = decode_text(options, &["a", "b", "c"], data);
    assert_eq!(
        rows(&batches),
        vec![
            vec![Some("1".to_owned()), Some("x, \"y\"".to_owned()), None],
            some(&["2", "", "multi\nline"]),
            some(&["3", "plain", "\""]),
        ]
    );
}

#[test]
fn csv_with_other_escape_quote_and_delimiter() {
    let options = TextOptions {
        delimiter: b';',
        quote: b'\'',
        escape: b'\\',
        null: b"NULL".to_vec(),
        ..TextOptions::csv()
    };
    let data = b"'it\\'s';NULL;'NULL';'a\\\\b'\n";
    let batches = decode_text(options, &["a", "b", "c", "d"], data);
    assert_eq!(
        rows(&batches),
        vec![vec![
            Some("it's".to_owned()),
            None,
            Some("NULL".to_owned()),
            Some("a\\b".to_owned()),
        ]]
    );
}

#[test]
fn every_chunk_boundary_gives_the_same_rows() {
    let text = b"a\t\\N\tq\\\\\nb\\\nc\t2\t\\x41\r\nlast\t3\tz".to_vec();
    let csv = b"h1,h2,h3\n\"a,\"\"\nb\",,\"\"\nc,2,\"z\"\r\nlast,3,x".to_vec();
    for (options, data) in [
        (TextOptions::text(), text),
        (
            TextOptions {
                header: true,
                ..TextOptions::csv()
            },
            csv,
        ),
    ] {
        let whole = decode_text(options.clone(), &["a", "b", "c"], &data);
        assert!(bad(&whole).is_empty(), "{:?}", bad(&whole));
        for chunk in 1..data.len() {
            let mut decoder =
                TextDecoder::new(options.clone(), text_layout(&["a", "b", "c"]), false, true);
            let batches = run(&mut decoder, &data, chunk).expect("decodes");
            assert_eq!(rows(&batches), rows(&whole), "chunk size {chunk}");
        }
    }
}

#[test]
fn wrong_field_counts_and_bad_utf8_are_bad_rows_with_columns() {
    let data = b"1\t2\n1\n1\t2\t3\n\xff\t2\nok\tok\n";
    let batches = decode_text(TextOptions::text(), &["a", "b"], data);
    let errors = bad(&batches);
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0].index, Some(1));
    assert_eq!(errors[0].column.as_deref(), Some("b"));
    assert_eq!(errors[0].sqlstate, "22P04");
    assert_eq!(errors[1].message, "extra data after last expected column");
    assert_eq!(errors[2].sqlstate, "22021");
    // The bad rows hold NULLs until conversion drops them; the raw text is kept.
    assert_eq!(rows(&batches)[1], vec![None, None]);
    assert_eq!(rows(&batches)[4], some(&["ok", "ok"]));
    assert_eq!(
        batches[0].raw.as_ref().map(|r| r.line(2)),
        Some("1\t2\t3".to_owned())
    );
}

#[test]
fn reject_mode_stops_at_the_first_bad_row() {
    let mut decoder = TextDecoder::new(TextOptions::text(), text_layout(&["a", "b"]), true, false);
    let step = decoder.decode(b"1\t2\n3\n5\t6\n", false).expect("decodes");
    assert_eq!(step.consumed, 6);
    assert!(decoder.has_bad());
    assert_eq!(decoder.rows(), 2);
}

#[test]
fn unterminated_csv_quote_at_the_end_is_a_bad_row() {
    let batches = decode_text(TextOptions::csv(), &["a"], b"\"open\nstill open");
    let errors = bad(&batches);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "unterminated CSV quoted field");
}

#[test]
fn batches_split_at_the_row_limit() {
    let mut data = Vec::new();
    for i in 0..(super::BATCH_ROWS + 10) {
        data.extend_from_slice(format!("{i}\n").as_bytes());
    }
    let mut decoder = TextDecoder::new(TextOptions::text(), text_layout(&["a"]), false, false);
    let batches = run(&mut decoder, &data, 1 << 16).expect("decodes");
    assert_eq!(batches[0].rows, super::BATCH_ROWS);
    assert_eq!(
        batches.iter().map(|b| b.rows).sum::<usize>(),
        super::BATCH_ROWS + 10
    );
}

/// A binary COPY stream of `rows`, each a list of fields (`None` = NULL).
fn binary_stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&4u32.to_be_bytes());
    out.extend_from_slice(b"ext!");
    for row in rows {
        out.extend_from_slice(&(row.len() as i16).to_be_bytes());
        for field in row {
            match field {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(bytes) => {
                    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// Postgres' binary numeric for the digits groups given.
fn numeric_bytes(weight: i16, negative: bool, scale: u16, groups: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&(if negative { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    out
}

fn all_types() -> Layout {
    layout(vec![
        Field::new("s", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("f", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("i2", DataType::Int16, true),
        Field::new("i8", DataType::Int64, true),
        Field::new("d", DataType::Date32, true),
        Field::new("n", DataType::Decimal128(10, 2), true),
        Field::new("bytes", DataType::Binary, true),
    ])
}

fn all_types_rows() -> Vec<Vec<Option<Vec<u8>>>> {
    vec![
        vec![
            Some(b"dev-1".to_vec()),
            Some(0i64.to_be_bytes().to_vec()),
            Some(21.5f64.to_be_bytes().to_vec()),
            Some(vec![1]),
            Some(7i16.to_be_bytes().to_vec()),
            // An int4 into a bigint column, as psycopg sends small Python ints.
            Some(1_000_000i32.to_be_bytes().to_vec()),
            Some(31i32.to_be_bytes().to_vec()),
            Some(numeric_bytes(0, true, 2, &[12, 3400])),
            Some(vec![0, 255]),
        ],
        vec![
            Some("ünï".as_bytes().to_vec()),
            None,
            Some(1.25f64.to_be_bytes().to_vec()),
            None,
            None,
            Some(i64::MAX.to_be_bytes().to_vec()),
            None,
            None,
            Some(Vec::new()),
        ],
    ]
}

#[test]
fn binary_decodes_every_supported_type() {
    let data = binary_stream(&all_types_rows());
    let mut decoder = BinaryDecoder::try_new(all_types(), false).expect("supported");
    let batches = run(&mut decoder, &data, data.len()).expect("decodes");
    assert!(bad(&batches).is_empty(), "{:?}", bad(&batches));
    let batch = &batches[0];
    assert_eq!(batch.rows, 2);
    let column = |i: usize| &batch.columns[i];
    let strings = column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8");
    assert_eq!(strings.value(1), "ünï");
    let ts = column(1)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("timestamp");
    assert_eq!(ts.value(0), 946_684_800_000_000);
    assert!(ts.is_null(1));
    assert_eq!(
        column(1).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let floats = column(2)
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("f64");
    assert_eq!((floats.value(0), floats.value(1)), (21.5, 1.25));
    let booleans = column(3)
        .as_any()
        .downcast_ref::<BooleanArray>()
        .expect("bool");
    assert!(booleans.value(0));
    let small = column(4)
        .as_any()
        .downcast_ref::<Int16Array>()
        .expect("i16");
    assert_eq!(small.value(0), 7);
    let big = column(5)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("i64");
    assert_eq!((big.value(0), big.value(1)), (1_000_000, i64::MAX));
    let dates = column(6)
        .as_any()
        .downcast_ref::<Date32Array>()
        .expect("date");
    assert_eq!(dates.value(0), 10_957 + 31);
    let numbers = column(7)
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .expect("decimal");
    assert_eq!(numbers.value(0), -1234);
    assert_eq!(column(7).data_type(), &DataType::Decimal128(10, 2));
    let bytes = column(8)
        .as_any()
        .downcast_ref::<BinaryArray>()
        .expect("binary");
    assert_eq!((bytes.value(0), bytes.value(1)), (&[0u8, 255][..], &[][..]));
}

#[test]
fn binary_every_chunk_boundary_gives_the_same_rows() {
    let data = binary_stream(&all_types_rows());
    let whole = {
        let mut decoder = BinaryDecoder::try_new(all_types(), false).expect("supported");
        run(&mut decoder, &data, data.len()).expect("decodes")
    };
    for chunk in 1..data.len() {
        let mut decoder = BinaryDecoder::try_new(all_types(), false).expect("supported");
        let batches = run(&mut decoder, &data, chunk).expect("decodes");
        let total: usize = batches.iter().map(|b| b.rows).sum();
        assert_eq!(total, 2, "chunk size {chunk}");
        let last = batches.iter().rev().find(|b| b.rows > 0).expect("rows");
        assert_eq!(
            last.columns[0].to_data(),
            whole[0].columns[0].to_data(),
            "chunk size {chunk}"
        );
    }
}

#[test]
fn binary_bad_values_are_bad_rows_and_bad_framing_is_fatal() {
    let mut rows = all_types_rows();
    rows[0][2] = Some(vec![1, 2, 3]); // a float8 of three bytes
    rows[1].pop(); // eight fields instead of nine
    let data = binary_stream(&rows);
    let mut decoder = BinaryDecoder::try_new(all_types(), false).expect("supported");
    let batches = run(&mut decoder, &data, 7).expect("decodes");
    let errors = bad(&batches);
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].column.as_deref(), Some("f"));
    assert_eq!(errors[0].sqlstate, "22P03");
    assert_eq!(errors[1].message, "row field count is 8, expected 9");

    let mut decoder = BinaryDecoder::try_new(all_types(), false).expect("supported");
    let error = run(&mut decoder, b"PGCOPY\nXXXXXXXXXXXXXXX", 5)
        .err()
        .expect("refused");
    assert_eq!(error.message, "COPY file signature not recognized");

    let truncated = &binary_stream(&all_types_rows())[..40];
    let mut decoder = BinaryDecoder::try_new(all_types(), false).expect("supported");
    let error = run(&mut decoder, truncated, 3).err().expect("refused");
    assert_eq!(error.message, "unexpected EOF in COPY data");

    let mut trailing = binary_stream(&[]);
    trailing.push(0);
    let mut decoder = BinaryDecoder::try_new(all_types(), false).expect("supported");
    assert!(run(&mut decoder, &trailing, 100).is_err());
}

#[test]
fn binary_integer_out_of_range() {
    let schema = layout(vec![Field::new("i", DataType::Int16, true)]);
    let data = binary_stream(&[vec![Some(70_000i32.to_be_bytes().to_vec())]]);
    let mut decoder = BinaryDecoder::try_new(schema, false).expect("supported");
    let batches = run(&mut decoder, &data, 100).expect("decodes");
    assert_eq!(bad(&batches)[0].sqlstate, "22003");
}

#[test]
fn numeric_to_decimal() {
    // 12.34 = [12, 3400] with weight 0.
    assert_eq!(
        numeric(&numeric_bytes(0, false, 2, &[12, 3400]), 10, 2),
        Ok(1234)
    );
    // 123456789.5 = [1, 2345, 6789, 5000] weight 2; rounds half away from zero at scale 0.
    let bytes = numeric_bytes(2, true, 1, &[1, 2345, 6789, 5000]);
    assert_eq!(numeric(&bytes, 20, 0), Ok(-123_456_790));
    assert_eq!(numeric(&bytes, 20, 3), Ok(-123_456_789_500));
    // 0.0001 at scale 2 is 0; 0.005 rounds up to 0.01.
    assert_eq!(numeric(&numeric_bytes(-1, false, 4, &[1]), 10, 2), Ok(0));
    assert_eq!(numeric(&numeric_bytes(-1, false, 3, &[50]), 10, 2), Ok(1));
    // 10000 (one group, weight 1) with no digits after.
    assert_eq!(
        numeric(&numeric_bytes(1, false, 0, &[1]), 10, 2),
        Ok(1_000_000)
    );
    assert_eq!(numeric(&numeric_bytes(0, false, 0, &[]), 10, 2), Ok(0));
    // Too many digits for the precision, a huge weight, NaN, garbage.
    assert_eq!(
        numeric(&numeric_bytes(2, false, 0, &[1, 0, 0]), 5, 2).map_err(|e| e.1),
        Err("22003")
    );
    assert!(numeric(&numeric_bytes(i16::MAX, false, 0, &[1]), 38, 2).is_err());
    let mut nan = numeric_bytes(0, false, 0, &[]);
    nan[4] = 0xC0;
    assert!(numeric(&nan, 10, 2).is_err());
    assert!(numeric(&[0, 1, 0, 0], 10, 2).is_err());
    assert!(numeric(&numeric_bytes(0, false, 0, &[10_000]), 10, 2).is_err());
}

/// xorshift: reproducible noise without a dependency.
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn random_bytes_never_panic() {
    let base = binary_stream(&all_types_rows());
    for seed in 1..400u64 {
        let junk = noise(seed, (seed as usize * 7) % 300);
        // Pure noise, noise after a valid header, and a valid stream with bytes flipped.
        let mut after_header = base[..23].to_vec();
        after_header.extend_from_slice(&junk);
        let mut flipped = base.clone();
        for (i, byte) in junk.iter().enumerate().take(8) {
            let at = (usize::from(*byte) * 31 + i * 7) % flipped.len();
            flipped[at] ^= byte | 1;
        }
        let chunk = (seed as usize % 13) + 1;
        for data in [&junk, &after_header, &flipped] {
            let mut decoder =
                BinaryDecoder::try_new(all_types(), seed % 2 == 0).expect("supported");
            let _ = run(&mut decoder, data, chunk);
            for options in [TextOptions::text(), TextOptions::csv()] {
                let mut decoder =
                    TextDecoder::new(options, text_layout(&["a", "b", "c"]), seed % 2 == 0, true);
                let _ = run(&mut decoder, data, chunk);
            }
        }
    }
}

fn copy_statement(sql: &str) -> SqlStatement {
    let mut parsed = parse(sql).expect("parses");
    assert_eq!(parsed.len(), 1, "{sql}");
    let parsed = parsed.remove(0);
    super::from_stdin(&parsed)
        .cloned()
        .expect("COPY FROM STDIN")
}

fn format_of(sql: &str) -> crate::error::Result<Format> {
    match copy_statement(sql) {
        SqlStatement::Copy {
            options,
            legacy_options,
            ..
        } => format(&options, &legacy_options),
        other => panic!("not a COPY: {other}"),
    }
}

#[test]
fn copy_statements_parse_in_every_spelling() {
    assert_eq!(
        format_of("COPY events FROM STDIN").expect("text"),
        Format::Text(TextOptions::text())
    );
    assert_eq!(
        format_of("copy events from stdin;").expect("text"),
        Format::Text(TextOptions::text())
    );
    let csv_header = Format::Text(TextOptions {
        header: true,
        ..TextOptions::csv()
    });
    assert_eq!(
        format_of("COPY events FROM STDIN WITH (FORMAT csv, HEADER)").expect("csv"),
        csv_header
    );
    assert_eq!(
        format_of("COPY  events FROM STDIN CSV HEADER").expect("legacy csv"),
        csv_header
    );
    assert_eq!(
        format_of("COPY public.events (device_id, temp) FROM STDIN (FORMAT BINARY)")
            .expect("binary"),
        Format::Binary
    );
    assert_eq!(
        format_of("COPY events FROM STDIN (FORMAT csv, DELIMITER ';', NULL 'NA', QUOTE '''')")
            .expect("csv options"),
        Format::Text(TextOptions {
            delimiter: b';',
            null: b"NA".to_vec(),
            quote: b'\'',
            escape: b'\'',
            ..TextOptions::csv()
        })
    );
    assert!(format_of("COPY events FROM STDIN (FORMAT binary, HEADER)").is_err());
    assert!(format_of("COPY events FROM STDIN (FORMAT parquet)").is_err());
    assert!(format_of("COPY events FROM STDIN (DELIMITER ',', DELIMITER ';')").is_err());
    assert!(format_of("COPY events FROM STDIN (QUOTE '\"')").is_err());
}

#[test]
fn copy_is_parsed_on_its_own_tokens() {
    // What follows `FROM STDIN;` is the next statement, not inline data.
    let parsed = parse("COPY events FROM STDIN; SELECT 1").expect("parses");
    assert_eq!(parsed.len(), 2);
    assert!(super::from_stdin(&parsed[0]).is_some());
    assert!(parsed[1].sql.starts_with("SELECT"));
    // COPY TO and COPY FROM a file parse, and are refused when run.
    for sql in ["COPY events TO STDOUT", "COPY events FROM '/etc/passwd'"] {
        let parsed = parse(sql).expect("parses");
        assert!(super::from_stdin(&parsed[0]).is_none());
        assert!(matches!(
            &parsed[0].statement,
            datafusion::sql::parser::Statement::Statement(s)
                if matches!(s.as_ref(), SqlStatement::Copy { target, .. } if *target != CopyTarget::Stdin)
        ));
    }
    // DataFusion's own COPY ... TO syntax still reaches DataFusion.
    let parsed = parse("COPY events TO 'out.parquet' STORED AS PARQUET").expect("parses");
    assert!(matches!(
        parsed[0].statement,
        datafusion::sql::parser::Statement::CopyTo(_)
    ));
    assert!(parse("COPY events FROM STDIN (FORMAT").is_err());
}

#[test]
fn column_lists_map_to_table_columns() {
    let schema = Schema::new(vec![
        Field::new("device_id", DataType::Utf8, false),
        Field::new("ts", DataType::Utf8, true),
        Field::new("temp", DataType::Float64, true),
    ]);
    let columns = |sql: &str| match copy_statement(sql) {
        SqlStatement::Copy {
            source: datafusion::sql::sqlparser::ast::CopySource::Table { columns, .. },
            ..
        } => column_targets(&schema, &columns, "events"),
        other => panic!("not a COPY: {other}"),
    };
    assert_eq!(
        columns("COPY events (temp, DEVICE_ID) FROM STDIN").expect("maps"),
        vec![2, 0]
    );
    assert_eq!(
        columns("COPY events FROM STDIN").expect("maps"),
        vec![0, 1, 2]
    );
    let error = |sql: &str| columns(sql).expect_err("refused").sqlstate();
    assert_eq!(error("COPY events (nope) FROM STDIN"), "42703");
    assert_eq!(
        error("COPY events (temp, temp, device_id) FROM STDIN"),
        "42701"
    );
    assert_eq!(error("COPY events (temp) FROM STDIN"), "23502");
    assert_eq!(error("COPY events (\"DEVICE_ID\") FROM STDIN"), "42703");
}

#[test]
fn assemble_fills_left_out_columns_with_nulls() {
    let layout = Layout {
        targets: vec![2],
        schema: Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float64, true),
        ])),
    };
    let input: arrow::array::ArrayRef = Arc::new(Float64Array::from(vec![1.0, 2.0]));
    let typed = layout.assemble(vec![Arc::clone(&input)], 2, false);
    assert_eq!(typed[0].data_type(), &DataType::Int64);
    assert_eq!(typed[0].null_count(), 2);
    assert_eq!(typed[2].len(), 2);
    let text = layout.assemble(vec![input], 2, true);
    assert_eq!(text[0].data_type(), &DataType::Utf8);
}
