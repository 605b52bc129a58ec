use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use super::frames::HEADER_BYTES;
use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("body", DataType::Utf8, true),
    ]))
}

fn batch(from: i64, rows: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..from + rows).collect();
    let bodies: Vec<String> = ids.iter().map(|i| format!("row {i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(bodies)),
        ],
    )
    .expect("batch")
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ids")
                .values()
                .to_vec()
        })
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn acknowledged_rows_are_visible_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("open");
    assert_eq!(log.append(batch(0, 3)).await.expect("append"), 3);
    assert_eq!(ids(&log.batches()), vec![0, 1, 2], "read-your-writes");
    assert_eq!(log.append(batch(3, 2)).await.expect("append"), 5);
    drop(log);

    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("reopen");
    assert_eq!(log.rows(), 5);
    assert_eq!(ids(&log.batches()), vec![0, 1, 2, 3, 4]);
    assert_eq!(log.append(batch(5, 1)).await.expect("append"), 6);
}

#[tokio::test]
async fn concurrent_appends_commit_in_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
            .await
            .expect("open"),
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.append(batch(i * 10, 10)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("append");
    }
    assert_eq!(log.rows(), 2000);
    assert!(
        log.commit_groups() < 200,
        "200 appends took {} syncs",
        log.commit_groups()
    );
    let mut all = ids(&log.batches());
    all.sort_unstable();
    assert_eq!(all, (0..2000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_torn_last_frame_is_cut_off_and_the_log_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("open");
    log.append(batch(0, 4)).await.expect("append");
    drop(log);
    let segment = segments(dir.path()).pop().expect("a segment");
    let valid = fs::metadata(&segment).expect("meta").len();
    // Half a frame: what a crash in the middle of a write leaves.
    let frame = frame(&crate::ipc::encode_batch(&batch(4, 4)).expect("encode"), 4).expect("frame");
    let mut file = OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("open");
    file.write_all(&frame[..frame.len() / 2]).expect("write");
    drop(file);

    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("reopen");
    assert_eq!(ids(&log.batches()), vec![0, 1, 2, 3]);
    assert_eq!(fs::metadata(&segment).expect("meta").len(), valid);
    log.append(batch(4, 1))
        .await
        .expect("append after recovery");
    drop(log);
    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("reopen");
    assert_eq!(ids(&log.batches()), vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn damage_before_the_end_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("open");
    log.append(batch(0, 4)).await.expect("append");
    log.append(batch(4, 4)).await.expect("append");
    drop(log);
    let segment = segments(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&segment).expect("read");
    bytes[HEADER_BYTES + 40] ^= 0xff; // inside the first frame's payload
    fs::write(&segment, bytes).expect("write");

    let err = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect_err("corruption must not read as fewer rows");
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn segments_roll_and_are_all_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        segment_bytes: 1,
        ..LogOptions::default()
    };
    let log = StreamLog::open(dir.path(), schema(), options, 0)
        .await
        .expect("open");
    for i in 0..5 {
        log.append(batch(i * 2, 2)).await.expect("append");
    }
    drop(log);
    let names: Vec<String> = segments(dir.path())
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(names[1], segment_name(2));
    let log = StreamLog::open(dir.path(), schema(), options, 0)
        .await
        .expect("reopen");
    assert_eq!(ids(&log.batches()), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn batches_of_another_shape_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("open");
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .expect("batch");
    assert!(matches!(log.append(other).await, Err(LogError::Schema(_))));
    assert_eq!(log.rows(), 0);
}

#[tokio::test]
async fn released_rows_leave_memory_and_disk_but_offsets_carry_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        segment_bytes: 1,
        ..LogOptions::default()
    };
    let log = StreamLog::open(dir.path(), schema(), options, 0)
        .await
        .expect("open");
    for i in 0..5 {
        log.append(batch(i * 2, 2)).await.expect("append");
    }
    let tail = log.tail(4);
    assert_eq!(tail.first().map(|(offset, _)| *offset), Some(4));
    log.release_below(6).await.expect("release");
    assert_eq!(ids(&log.batches()), vec![6, 7, 8, 9]);
    // Segments 0, 2 and 4 held only released rows.
    assert_eq!(segments(dir.path()).len(), 2);
    drop(log);
    // Reopened knowing rows before 6 are in the lake: offsets keep counting from the log.
    let log = StreamLog::open(dir.path(), schema(), options, 6)
        .await
        .expect("reopen");
    assert_eq!(ids(&log.batches()), vec![6, 7, 8, 9]);
    assert_eq!(log.append(batch(10, 1)).await.expect("append"), 11);
    assert_eq!(log.tail(10).len(), 1);
}

#[tokio::test]
async fn a_lake_offset_the_log_cannot_match_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 0)
        .await
        .expect("open");
    log.append(batch(0, 4)).await.expect("append");
    drop(log);
    // Beyond the end: segments were lost.
    let err = StreamLog::open(dir.path(), schema(), LogOptions::default(), 9)
        .await
        .expect_err("beyond the end");
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    // Inside a batch: its rows would be half in the lake.
    let err = StreamLog::open(dir.path(), schema(), LogOptions::default(), 2)
        .await
        .expect_err("inside a batch");
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    // At the end: everything compacted, the log opens empty and carries on.
    let log = StreamLog::open(dir.path(), schema(), LogOptions::default(), 4)
        .await
        .expect("at the end");
    assert!(log.batches().is_empty());
    assert_eq!(log.append(batch(4, 1)).await.expect("append"), 5);
}
