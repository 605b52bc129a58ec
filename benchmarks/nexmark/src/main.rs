//! Pre-generates Nexmark events with the `nexmark` crate (`EventGenerator::new(
//! NexmarkConfig::default())`) into Arrow IPC stream files, one per event type and generator
//! thread, for `benchmarks/streaming/nexmark_bench.py` to replay through Arrow Flight.
//!
//! ```sh
//! cargo run --release --manifest-path benchmarks/nexmark/Cargo.toml -- <events> <out dir> [threads]
//! ```
//!
//! Writes `<out dir>/{person,auction,bid}-<thread>.arrow` (8192-row batches, event time as
//! `timestamptz`) and prints the counts per type.

#![allow(
    clippy::print_stdout,
    reason = "the report on stdout is this program's output"
)]

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ipc::writer::StreamWriter;
use nexmark::EventGenerator;
use nexmark::config::NexmarkConfig;
use nexmark::event::Event;

const BATCH: usize = 8192;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

fn person_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("email_address", DataType::Utf8, false),
        Field::new("credit_card", DataType::Utf8, false),
        Field::new("city", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("date_time", timestamp(), false),
        Field::new("extra", DataType::Utf8, false),
    ]))
}

fn auction_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("item_name", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("initial_bid", DataType::Int64, false),
        Field::new("reserve", DataType::Int64, false),
        Field::new("date_time", timestamp(), false),
        Field::new("expires", timestamp(), false),
        Field::new("seller", DataType::Int64, false),
        Field::new("category", DataType::Int64, false),
        Field::new("extra", DataType::Utf8, false),
    ]))
}

fn bid_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, false),
        Field::new("bidder", DataType::Int64, false),
        Field::new("price", DataType::Int64, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("date_time", timestamp(), false),
        Field::new("extra", DataType::Utf8, false),
    ]))
}

fn int(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn micros(millis: u64) -> i64 {
    i64::try_from(millis).unwrap_or(i64::MAX / 1000) * 1000
}

/// Column builders of one event type, flushed to its file every [`BATCH`] rows.
struct Sink {
    schema: SchemaRef,
    writer: StreamWriter<BufWriter<File>>,
    ints: Vec<Int64Builder>,
    texts: Vec<StringBuilder>,
    times: Vec<TimestampMicrosecondBuilder>,
    rows: usize,
    written: usize,
}

impl Sink {
    fn create(path: &Path, schema: SchemaRef) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        let writer = StreamWriter::try_new(BufWriter::new(file), &schema)?;
        let count =
            |t: fn(&DataType) -> bool| schema.fields().iter().filter(|f| t(f.data_type())).count();
        Ok(Self {
            writer,
            ints: (0..count(|t| *t == DataType::Int64))
                .map(|_| Int64Builder::new())
                .collect(),
            texts: (0..count(|t| *t == DataType::Utf8))
                .map(|_| StringBuilder::new())
                .collect(),
            times: (0..count(|t| matches!(t, DataType::Timestamp(..))))
                .map(|_| TimestampMicrosecondBuilder::new().with_timezone("+00:00"))
                .collect(),
            schema,
            rows: 0,
            written: 0,
        })
    }

    fn row_done(&mut self) -> anyhow::Result<()> {
        self.rows += 1;
        if self.rows == BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let (mut ints, mut texts, mut times) = (
            self.ints.iter_mut(),
            self.texts.iter_mut(),
            self.times.iter_mut(),
        );
        let mut columns: Vec<ArrayRef> = Vec::new();
        for field in self.schema.fields() {
            let column: ArrayRef = match field.data_type() {
                DataType::Int64 => Arc::new(ints.next().context("int column")?.finish()),
                DataType::Utf8 => Arc::new(texts.next().context("text column")?.finish()),
                _ => Arc::new(times.next().context("time column")?.finish()),
            };
            columns.push(column);
        }
        self.writer
            .write(&RecordBatch::try_new(Arc::clone(&self.schema), columns)?)?;
        self.written += self.rows;
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<usize> {
        self.flush()?;
        self.writer.finish()?;
        Ok(self.written)
    }
}

fn generate(events: u64, dir: &Path, thread: u64, threads: u64) -> anyhow::Result<[usize; 3]> {
    let file = |kind: &str| dir.join(format!("{kind}-{thread}.arrow"));
    let mut person = Sink::create(&file("person"), person_schema())?;
    let mut auction = Sink::create(&file("auction"), auction_schema())?;
    let mut bid = Sink::create(&file("bid"), bid_schema())?;
    let generator = EventGenerator::new(NexmarkConfig::default())
        .with_offset(thread)
        .with_step(threads);
    let mine = events / threads + u64::from(thread < events % threads);
    for event in generator.take(usize::try_from(mine)?) {
        match event {
            Event::Person(p) => {
                person.ints[0].append_value(int(p.id));
                for (builder, text) in person.texts.iter_mut().zip([
                    &p.name,
                    &p.email_address,
                    &p.credit_card,
                    &p.city,
                    &p.state,
                    &p.extra,
                ]) {
                    builder.append_value(text);
                }
                person.times[0].append_value(micros(p.date_time));
                person.row_done()?;
            }
            Event::Auction(a) => {
                for (builder, value) in auction.ints.iter_mut().zip([
                    a.id,
                    a.initial_bid,
                    a.reserve,
                    a.seller,
                    a.category,
                ]) {
                    builder.append_value(int(value));
                }
                for (builder, text) in
                    auction
                        .texts
                        .iter_mut()
                        .zip([&a.item_name, &a.description, &a.extra])
                {
                    builder.append_value(text);
                }
                auction.times[0].append_value(micros(a.date_time));
                auction.times[1].append_value(micros(a.expires));
                auction.row_done()?;
            }
            Event::Bid(b) => {
                for (builder, value) in bid.ints.iter_mut().zip([b.auction, b.bidder, b.price]) {
                    builder.append_value(int(value));
                }
                for (builder, text) in bid.texts.iter_mut().zip([&b.channel, &b.url, &b.extra]) {
                    builder.append_value(text);
                }
                bid.times[0].append_value(micros(b.date_time));
                bid.row_done()?;
            }
        }
    }
    Ok([person.finish()?, auction.finish()?, bid.finish()?])
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .context("usage: nexmark_gen <events> <out dir> [threads]")?
        .parse()?;
    let dir = PathBuf::from(
        args.next()
            .context("usage: nexmark_gen <events> <out dir> [threads]")?,
    );
    let threads: u64 = args
        .next()
        .map(|t| t.parse())
        .transpose()?
        .unwrap_or(2)
        .max(1);
    std::fs::create_dir_all(&dir)?;
    let started = std::time::Instant::now();
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let dir = dir.clone();
                scope.spawn(move || generate(events, &dir, thread, threads))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("generator thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let total = counts.iter().fold([0usize; 3], |acc, c| {
        [acc[0] + c[0], acc[1] + c[1], acc[2] + c[2]]
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"events\": {events}, \"person\": {}, \"auction\": {}, \"bid\": {}, \"threads\": {threads}, \"seconds\": {seconds:.3}}}",
        total[0], total[1], total[2]
    );
    Ok(())
}
