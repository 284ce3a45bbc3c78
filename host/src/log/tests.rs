//! Tests of the log as a whole: group commit, limits, retention and
//! notifications, plus property tests of crash recovery, corruption reporting
//! and interleaved appends, reads and cursor commits with retention.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;

use super::segment::{CORRUPT_BYTES_CAP, HEADER_LEN, MAX_RECORD_BYTES, parse_segment_name, segment_name};
use super::{Item, Log, LogError, LogOptions};

fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i * 7) as u8).collect()
}

fn open(dir: &Path, options: &LogOptions) -> Log {
    Log::open(dir, options.clone()).unwrap().0
}

fn read_all(log: &Log, from: u64) -> Vec<Item> {
    let (mut reader, mut out) = (log.reader(from), Vec::new());
    while reader.read(64, 1 << 20, &mut out).unwrap() > 0 {}
    out
}

/// Base seq → length of the segment files actually on disk.
fn segments_on_disk(dir: &Path) -> BTreeMap<u64, u64> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let base = parse_segment_name(e.file_name().to_str()?)?;
            Some((base, e.metadata().unwrap().len()))
        })
        .collect()
}

/// Where each record was written: seq → (segment path, offset, frame length).
fn layout(dir: &Path, sizes: &[usize]) -> Vec<(PathBuf, u64, u64)> {
    let bases: Vec<u64> = segments_on_disk(dir).into_keys().collect();
    let mut offset = 0;
    (0..sizes.len() as u64)
        .map(|seq| {
            let base = *bases.iter().rev().find(|b| **b <= seq).unwrap();
            if seq == base {
                offset = 0;
            }
            let len = (HEADER_LEN + sizes[seq as usize]) as u64;
            offset += len;
            (dir.join(segment_name(base)), offset - len, len)
        })
        .collect()
}

#[test]
fn log_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Log>();
    check::<super::Cursor>();
    check::<super::Reader>();
}

#[test]
fn concurrent_appenders_get_unique_consecutive_seqs_readable_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions { segment_bytes: 16 << 10, ..LogOptions::default() };
    let log = Arc::new(open(dir.path(), &options));
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..40u64 {
                    let batch: Vec<Vec<u8>> = (0..1 + i % 3).map(|k| format!("{t}/{i}/{k}").into_bytes()).collect();
                    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                    let range = log.append(&refs).unwrap();
                    assert_eq!(range.end - range.start, batch.len() as u64);
                    assert!(log.durable_seq() >= range.end);
                    mine.extend(range.zip(batch));
                }
                mine
            })
        })
        .collect();
    let mut written: Vec<(u64, Vec<u8>)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    written.sort();
    let total = written.len() as u64;
    assert_eq!(written.iter().map(|w| w.0).collect::<Vec<_>>(), (0..total).collect::<Vec<_>>());
    let syncs = log.shared.syncs.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("16 threads, 640 appends, {syncs} group commits");
    drop(log);
    let log = open(dir.path(), &options);
    assert!(segments_on_disk(dir.path()).len() > 1);
    let read: Vec<(u64, Vec<u8>)> = read_all(&log, 0)
        .into_iter()
        .map(|item| match item {
            Item::Record { seq, payload } => (seq, payload),
            corrupt => panic!("unexpected {corrupt:?}"),
        })
        .collect();
    assert_eq!(read, written);
}

#[test]
fn waiting_appenders_share_one_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), &LogOptions::default()));
    let turn = log.shared.sync_turn.lock().unwrap(); // a sync "in progress"
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.append(&[b"x"]).unwrap())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.next_seq() < 8 {
        assert!(Instant::now() < deadline, "appenders did not write");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(log.durable_seq(), 0);
    let before = log.shared.syncs.load(std::sync::atomic::Ordering::Relaxed);
    drop(turn);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.shared.syncs.load(std::sync::atomic::Ordering::Relaxed) - before, 1);
    assert_eq!(log.durable_seq(), 8);
}

#[test]
fn full_by_events_until_a_cursor_commits() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions { max_events: 10, segment_bytes: 100, ..LogOptions::default() };
    let log = open(dir.path(), &options);
    let mut cursor = log.cursor("sink").unwrap();
    for _ in 0..10 {
        log.append(&[b"e"]).unwrap();
    }
    assert!(log.is_full());
    let err = log.append(&[b"e"]).unwrap_err();
    assert!(matches!(err, LogError::Full { events: 10, adding_events: 1, max_events: 10, .. }), "{err:?}");
    assert!(err.to_string().contains("10 + 1 live events against max_events 10"), "{err}");
    cursor.commit(4, 0).unwrap();
    assert_eq!(log.live_events(), 6);
    assert!(!log.is_full());
    log.append(&[b"a", b"b", b"c", b"d"]).unwrap();
    assert!(log.is_full());
    drop(cursor); // without cursors, every retained record is live
    assert_eq!(log.live_events(), 14 - log.first_seq());
}

#[test]
fn full_by_bytes_until_a_cursor_commit_frees_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions { max_bytes: 500, segment_bytes: 100, ..LogOptions::default() };
    let log = open(dir.path(), &options);
    let record = [9u8; 100 - HEADER_LEN];
    for _ in 0..5 {
        log.append(&[&record]).unwrap();
    }
    assert_eq!(log.disk_bytes(), 500);
    assert!(log.is_full());
    let err = log.append(&[&record]).unwrap_err();
    assert!(matches!(err, LogError::Full { bytes: 500, adding_bytes: 100, max_bytes: 500, .. }), "{err:?}");
    log.cursor("sink").unwrap().commit(5, 0).unwrap();
    assert_eq!((log.disk_bytes(), log.first_seq()), (100, 4));
    assert!(!log.is_full());
    assert_eq!(log.append(&[&record]).unwrap(), 5..6);
    // Too big for any log of this size: one record, or one batch.
    let err = log.append(&[&[0; 500]]).unwrap_err();
    assert!(matches!(err, LogError::RecordTooLarge { len: 500, max: 479 }), "{err:?}");
    let err = log.append(&[&record[..]; 6]).unwrap_err();
    assert!(matches!(err, LogError::Full { adding_bytes: 600, .. }), "{err:?}");
    let big = vec![0; MAX_RECORD_BYTES + 1];
    let err = open(&dir.path().join("big"), &LogOptions::default()).append(&[&big]).unwrap_err();
    assert!(matches!(err, LogError::RecordTooLarge { max, .. } if max == MAX_RECORD_BYTES as u64), "{err:?}");
}

#[test]
fn retention_removes_only_segments_below_the_minimum_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions { segment_bytes: 100, ..LogOptions::default() };
    let log = open(dir.path(), &options);
    for seq in 0..10 {
        log.append(&[&payload(seq, 100 - HEADER_LEN)]).unwrap(); // one record per segment
    }
    let (mut fast, mut slow) = (log.cursor("fast").unwrap(), log.cursor("slow").unwrap());
    fast.commit(7, 0).unwrap();
    assert_eq!(segments_on_disk(dir.path()).len(), 10);
    slow.commit(3, 0).unwrap();
    let on_disk = segments_on_disk(dir.path());
    assert_eq!(on_disk.keys().copied().collect::<Vec<_>>(), (3..10).collect::<Vec<_>>());
    assert_eq!((log.first_seq(), log.disk_bytes()), (3, on_disk.values().sum()));
    drop(slow); // no longer holds anything back, from the next commit on
    fast.commit(7, 0).unwrap();
    assert_eq!(log.first_seq(), 7);
    fast.commit(10, 0).unwrap();
    // Every record is consumed, but the active segment stays.
    assert_eq!(segments_on_disk(dir.path()).into_keys().collect::<Vec<_>>(), [9]);
    assert_eq!(log.disk_bytes(), 100);
    let items = read_all(&log, 0);
    assert_eq!(items, [Item::Record { seq: 9, payload: payload(9, 100 - HEADER_LEN) }]);
}

#[test]
fn durable_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), &LogOptions::default()));
    let mut rx = log.subscribe();
    log.append(&[b"a"]).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 1);
    assert_eq!(log.wait_durable(0, Duration::ZERO), 1);
    let started = Instant::now();
    assert_eq!(log.wait_durable(1, Duration::from_millis(50)), 1);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let waiter = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.wait_durable(1, Duration::from_secs(30)))
    };
    std::thread::sleep(Duration::from_millis(20));
    log.append(&[b"b", b"c"]).unwrap();
    assert_eq!(waiter.join().unwrap(), 3);
    assert_eq!(*rx.borrow_and_update(), 3);

    let ephemeral = open(&dir.path().join("ephemeral"), &LogOptions { sync: false, ..LogOptions::default() });
    assert_eq!(ephemeral.append(&[b"x", b"y"]).unwrap(), 0..2);
    assert_eq!(ephemeral.durable_seq(), 2);
    assert_eq!(read_all(&ephemeral, 0).len(), 2);
}

fn sizes() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0usize..4096, 1..4), 1..16)
}

fn append_all(log: &Log, batches: &[Vec<usize>]) -> Vec<usize> {
    let mut all = Vec::new();
    for batch in batches {
        let start = all.len() as u64;
        let payloads: Vec<Vec<u8>> = batch.iter().enumerate().map(|(i, n)| payload(start + i as u64, *n)).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        assert_eq!(log.append(&refs).unwrap().start, start);
        all.extend(batch);
    }
    all
}

/// Checks returned records against what was appended; returns the seqs read.
fn check_records(items: &[Item], sizes: &[usize]) -> Vec<u64> {
    let mut seqs = Vec::new();
    for item in items {
        if let Item::Record { seq, payload: p } = item {
            assert!(seqs.last().is_none_or(|last| last < seq), "seqs out of order");
            assert_eq!(*p, payload(*seq, sizes[*seq as usize]), "record {seq} differs");
            seqs.push(*seq);
        }
    }
    seqs
}

fn ephemeral(segment_bytes: u64) -> LogOptions {
    LogOptions { segment_bytes, sync: false, ..LogOptions::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn crash_cut_keeps_every_whole_record(batches in sizes(), cut in any::<Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let options = ephemeral(4096);
        let sizes = append_all(&open(dir.path(), &options), &batches);
        let (&base, &len) = segments_on_disk(dir.path()).last_key_value().unwrap();
        let path = dir.path().join(segment_name(base));
        let cut = cut.index(len as usize + 1) as u64;
        fs::File::options().write(true).open(&path).unwrap().set_len(cut).unwrap();
        let (mut kept, mut end) = (base, 0);
        while kept < sizes.len() as u64 && end + (HEADER_LEN + sizes[kept as usize]) as u64 <= cut {
            end += (HEADER_LEN + sizes[kept as usize]) as u64;
            kept += 1;
        }
        let (log, recovery) = Log::open(dir.path(), options).unwrap();
        prop_assert_eq!(recovery.truncated_bytes, cut - end);
        prop_assert_eq!(recovery.truncated_at, (cut > end).then(|| (path.clone(), end)));
        let items = read_all(&log, 0);
        prop_assert!(items.iter().all(|i| matches!(i, Item::Record { .. })), "corrupt item after a clean cut");
        prop_assert_eq!(check_records(&items, &sizes), (0..kept).collect::<Vec<_>>());
        prop_assert_eq!(log.append(&[b"after"]).unwrap(), kept..kept + 1);
        prop_assert_eq!(read_all(&log, kept), [Item::Record { seq: kept, payload: b"after".to_vec() }]);
    }

    #[test]
    fn flipped_bytes_are_reported_never_returned(
        batches in sizes(),
        flips in prop::collection::vec((any::<Index>(), any::<Index>(), 1u8..=255), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = ephemeral(4096);
        let log = open(dir.path(), &options);
        let sizes = append_all(&log, &batches);
        let layout = layout(dir.path(), &sizes);
        let segments: Vec<(u64, u64)> = segments_on_disk(dir.path()).into_iter().filter(|s| s.1 > 0).collect();
        let mut flipped = Vec::new();
        for (seg, at, xor) in flips {
            let (base, len) = segments[seg.index(segments.len())];
            let (path, at) = (dir.path().join(segment_name(base)), at.index(len as usize) as u64);
            let file = fs::File::options().read(true).write(true).open(&path).unwrap();
            let mut byte = [0];
            file.read_exact_at(&mut byte, at).unwrap();
            file.write_all_at(&[byte[0] ^ xor], at).unwrap();
            flipped.push((path, at));
        }
        // Read everything with the log still open.
        let items = read_all(&log, 0);
        let returned = check_records(&items, &sizes);
        let regions: Vec<(PathBuf, u64, u64)> = items.iter().filter_map(|i| match i {
            Item::Corrupt { segment, offset, len, bytes, .. } => {
                let on_disk = fs::read(segment).unwrap();
                let n = (*len as usize).min(CORRUPT_BYTES_CAP);
                assert_eq!(bytes[..], on_disk[*offset as usize..*offset as usize + n]);
                Some((segment.clone(), *offset, *len))
            }
            Item::Record { .. } => None,
        }).collect();
        let inside = |path: &PathBuf, at: u64, len: u64| {
            regions.iter().any(|(p, o, l)| p == path && *o <= at && at + len <= o + l)
        };
        for (seq, (path, at, len)) in layout.iter().enumerate() {
            prop_assert!(returned.contains(&(seq as u64)) || inside(path, *at, *len), "record {} lost silently", seq);
        }
        for (path, at) in &flipped {
            prop_assert!(inside(path, *at, 1), "flipped byte at {} not reported", at);
        }
        drop(log);
        // Reopen: a damaged end of the last segment is cut as a torn tail.
        let (log, recovery) = Log::open(dir.path(), options).unwrap();
        let items = read_all(&log, 0);
        let returned = check_records(&items, &sizes);
        let reported: Vec<(PathBuf, u64, u64)> = items.iter().filter_map(|i| match i {
            Item::Corrupt { segment, offset, len, .. } => Some((segment.clone(), *offset, *len)),
            Item::Record { .. } => None,
        }).collect();
        for (seq, (path, at, len)) in layout.iter().enumerate() {
            let in_region = reported.iter().any(|(p, o, l)| p == path && *o <= *at && at + len <= o + l);
            let in_tail = recovery.truncated_at.as_ref().is_some_and(|(p, cut)| p == path && at >= cut);
            prop_assert!(returned.contains(&(seq as u64)) || in_region || in_tail, "record {} lost silently", seq);
        }
        let next = log.next_seq();
        prop_assert_eq!(log.append(&[b"after"]).unwrap(), next..next + 1);
        prop_assert_eq!(read_all(&log, next), [Item::Record { seq: next, payload: b"after".to_vec() }]);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<usize>),
    Read(usize, usize),
    Commit(usize),
    Reopen,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => prop::collection::vec(0usize..300, 1..4).prop_map(Op::Append),
        3 => (0usize..2, 1usize..20).prop_map(|(c, n)| Op::Read(c, n)),
        2 => (0usize..2).prop_map(Op::Commit),
        1 => Just(Op::Reopen),
    ];
    prop::collection::vec(op, 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_appends_reads_and_commits(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions { segment_bytes: 512, max_bytes: 4096, max_events: 40, sync: false };
        let mut log = open(dir.path(), &options);
        let names = ["a", "b"];
        let mut sizes: Vec<usize> = Vec::new();
        let mut committed = [0u64; 2];
        let mut expected = [0u64; 2]; // next seq each reader must return
        let mut consumers: Vec<_> = names.iter().map(|n| (log.cursor(n).unwrap(), log.reader(0))).collect();
        for op in ops {
            match op {
                Op::Append(batch) => {
                    let start = sizes.len() as u64;
                    let payloads: Vec<Vec<u8>> = batch.iter().enumerate().map(|(i, n)| payload(start + i as u64, *n)).collect();
                    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
                    match log.append(&refs) {
                        Ok(range) => {
                            prop_assert_eq!(range, start..start + batch.len() as u64);
                            sizes.extend(&batch);
                        }
                        Err(LogError::Full { bytes, events, adding_bytes, adding_events, max_bytes, max_events }) => {
                            prop_assert!(bytes + adding_bytes > max_bytes || events + adding_events > max_events);
                            prop_assert_eq!(log.next_seq(), start);
                        }
                        Err(e) => prop_assert!(false, "append failed: {}", e),
                    }
                }
                Op::Read(c, n) => {
                    let mut out = Vec::new();
                    consumers[c].1.read(n, 1 << 20, &mut out).unwrap();
                    for item in out {
                        let Item::Record { seq, payload: p } = item else { panic!("corruption without damage") };
                        prop_assert_eq!(seq, expected[c], "gap or repeat");
                        prop_assert_eq!(p, payload(seq, sizes[seq as usize]));
                        expected[c] += 1;
                    }
                }
                Op::Commit(c) => {
                    let position = consumers[c].1.position();
                    consumers[c].0.commit(position, position * 2).unwrap();
                    committed[c] = position;
                }
                Op::Reopen => {
                    consumers.clear();
                    drop(log);
                    log = open(dir.path(), &options);
                    prop_assert_eq!(log.next_seq(), sizes.len() as u64);
                    for (c, name) in names.iter().enumerate() {
                        let cursor = log.cursor(name).unwrap();
                        prop_assert_eq!((cursor.position(), cursor.aux()), (committed[c], committed[c] * 2));
                        expected[c] = committed[c];
                        consumers.push((cursor, log.reader(committed[c])));
                    }
                }
            }
            let on_disk: u64 = segments_on_disk(dir.path()).values().sum();
            prop_assert_eq!(log.disk_bytes(), on_disk);
            prop_assert!(on_disk <= options.max_bytes);
            prop_assert!(log.first_seq() <= committed[0].min(committed[1]));
            prop_assert!(log.live_events() <= options.max_events);
        }
    }
}
