use super::*;

fn doc(i: u64) -> (String, String, Vec<u8>) {
    (
        format!("uid-{i}.1"),
        "logs-kubernetes.events-calypso".into(),
        format!(r#"{{"message":"event {i}\twith a tab"}}"#).into_bytes(),
    )
}

fn append(spool: &mut Spool, range: std::ops::Range<u64>) -> Dropped {
    let docs: Vec<_> = range.map(|i| (i, doc(i))).collect();
    let new = docs.iter().map(|(i, (id, index, source))| NewEntry {
        time_ms: 1_795_000_000_000 + *i as i64,
        id,
        index,
        source,
    });
    spool.append(new).expect("append")
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

#[test]
fn entries_come_back_in_order_and_leave_when_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
    assert_eq!(append(&mut spool, 0..5), Dropped::default());
    let read = spool.read(0, 3).expect("read");
    assert_eq!(seqs(&read), [0, 1, 2]);
    assert_eq!(
        read[1],
        Entry { seq: 1, time_ms: 1_795_000_000_001, id: doc(1).0, index: doc(1).1, source: doc(1).2 }
    );
    assert_eq!(seqs(&spool.read(3, 10).expect("read")), [3, 4]);
    assert_eq!(spool.pending(), 5);
    // Out of order: 1 and 2 wait for 0.
    spool.acknowledge(&[1, 2]).expect("ack");
    assert_eq!((spool.committed(), spool.pending()), (0, 3));
    spool.acknowledge(&[0]).expect("ack");
    assert_eq!((spool.committed(), spool.pending()), (3, 2));
    assert_eq!(fs::read_to_string(dir.path().join(ACK_FILE)).expect("ack file").trim(), "3");
}

#[test]
fn a_restart_resumes_from_the_first_unacknowledged_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
        append(&mut spool, 0..4);
        spool.acknowledge(&[0, 1, 3]).expect("ack");
    }
    let mut spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
    assert_eq!(spool.committed(), 2);
    // 3 was acknowledged but after 2, which was not: it is read again (and answered 409).
    assert_eq!(seqs(&spool.read(spool.committed(), 10).expect("read")), [2, 3]);
    append(&mut spool, 4..6);
    assert_eq!(seqs(&spool.read(2, 10).expect("read")), [2, 3, 4, 5], "numbering goes on");
}

#[test]
fn a_torn_last_line_is_cut_off_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
        append(&mut spool, 0..3);
    }
    let segment = fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "spool"))
        .expect("a segment");
    let whole = fs::read(&segment).expect("read");
    OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut f| f.write_all(b"3\t1795000000003\t\"uid-3.1\"\t\"logs-k"))
        .expect("tear");
    let mut spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
    assert_eq!(fs::read(&segment).expect("read"), whole, "the torn line is gone");
    assert_eq!(seqs(&spool.read(0, 10).expect("read")), [0, 1, 2]);
    append(&mut spool, 3..4);
    assert_eq!(seqs(&spool.read(0, 10).expect("read")), [0, 1, 2, 3]);
}

#[test]
fn a_full_spool_drops_its_oldest_segment_and_says_how_much() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 256 KiB in 64 KiB segments; each entry is about 90 bytes.
    let max = 256 * 1024;
    let mut spool = Spool::open(dir.path(), max).expect("open");
    let mut dropped = Dropped::default();
    for chunk in 0..60 {
        let d = append(&mut spool, chunk * 100..(chunk + 1) * 100);
        dropped.entries += d.entries;
        dropped.bytes += d.bytes;
    }
    assert!(dropped.entries > 0, "6000 entries do not fit in 256 KiB");
    assert!(spool.bytes() <= max, "{} bytes", spool.bytes());
    let left = spool.read(0, usize::MAX).expect("read");
    // What is left is the newest, contiguous, and with what was dropped makes up everything.
    assert_eq!(left.last().map(|e| e.seq), Some(5999));
    assert_eq!(left.len() as u64 + dropped.entries, 6000);
    assert!(seqs(&left).windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(spool.committed(), left[0].seq, "the dropped ones count as gone");
    assert_eq!(spool.pending(), left.len() as u64);
    // A reader that was behind skips to the oldest entry still there.
    assert_eq!(spool.read(0, 1).expect("read")[0].seq, left[0].seq);
    // Acknowledging dropped entries late is harmless.
    spool.acknowledge(&[0, 1, 2]).expect("ack");
    assert_eq!(spool.committed(), left[0].seq);
}

#[test]
fn entries_the_reader_already_has_are_not_counted_as_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(dir.path(), 256 * 1024).expect("open");
    append(&mut spool, 0..100);
    // The reader has the first 50 in memory (on their way to Elasticsearch) when the spool fills.
    assert_eq!(spool.read(0, 50).expect("read").len(), 50);
    let mut dropped = 0;
    for chunk in 1..60 {
        dropped += append(&mut spool, chunk * 100..(chunk + 1) * 100).entries;
    }
    let left = spool.read(50, usize::MAX).expect("read").len() as u64;
    // Every entry is left, or with the reader, or counted as dropped: exactly one of them.
    assert_eq!(left + 50 + dropped, 6000);
}

#[test]
fn acknowledged_segments_are_removed_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(dir.path(), 256 * 1024).expect("open");
    append(&mut spool, 0..2000);
    let segments = |d: &Path| {
        fs::read_dir(d)
            .expect("dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "spool")))
            .count()
    };
    assert!(segments(dir.path()) > 1);
    let all: Vec<u64> = (0..2000).collect();
    spool.acknowledge(&all).expect("ack");
    assert_eq!(segments(dir.path()), 0, "the segment being written goes too");
    assert_eq!((spool.pending(), spool.bytes()), (0, 0));
    assert!(spool.read(2000, 10).expect("read").is_empty());
    append(&mut spool, 2000..2003);
    assert_eq!(seqs(&spool.read(2000, 10).expect("read")), [2000, 2001, 2002], "a new segment begins");
    drop(spool);
    let mut spool = Spool::open(dir.path(), 256 * 1024).expect("reopen");
    assert_eq!(seqs(&spool.read(0, 10).expect("read")), [2000, 2001, 2002]);
}

#[test]
fn a_damaged_line_is_skipped_and_the_entries_after_it_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
        append(&mut spool, 0..3);
    }
    let segment = fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "spool"))
        .expect("a segment");
    // The middle entry's bytes damaged on disk (its line still ends where it did).
    let text = fs::read_to_string(&segment).expect("read");
    let damaged: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 1 { "x".repeat(l.len()) } else { l.to_string() })
        .collect();
    fs::write(&segment, damaged.join("\n") + "\n").expect("write");
    let mut spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
    assert_eq!(seqs(&spool.read(0, 10).expect("read")), [0, 2], "the entry after it is still there");
    append(&mut spool, 3..4);
    assert_eq!(seqs(&spool.read(0, 10).expect("read")), [0, 2, 3]);
}

#[test]
fn a_lost_position_never_falls_behind_what_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut spool = Spool::open(dir.path(), 256 * 1024).expect("open");
        append(&mut spool, 0..10);
        spool.acknowledge(&[0, 1]).expect("ack");
        append(&mut spool, 10..6000);
    }
    // The ack file lost (or older than the drops that followed it: they do not write it).
    fs::remove_file(dir.path().join(ACK_FILE)).expect("remove");
    let mut spool = Spool::open(dir.path(), 256 * 1024).expect("reopen");
    let left = spool.read(0, usize::MAX).expect("read");
    assert_eq!(spool.committed(), left[0].seq, "starts at the first entry still there");
    // Acknowledging what is left frees the segments again.
    let all: Vec<u64> = seqs(&left);
    spool.acknowledge(&all).expect("ack");
    assert_eq!(spool.pending(), 0);
}

#[test]
fn a_position_that_cannot_be_written_still_frees_the_acknowledged_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(dir.path(), 256 * 1024).expect("open");
    append(&mut spool, 0..2000);
    let before = spool.bytes();
    // The position cannot be written (as on a full volume: its temp file cannot be created).
    fs::create_dir(dir.path().join(format!("{ACK_FILE}.tmp"))).expect("block the ack file");
    let acked: Vec<u64> = (0..1500).collect();
    assert!(spool.acknowledge(&acked).is_err(), "the position was not written");
    assert!(spool.bytes() < before, "the acknowledged segments are gone anyway");
    let all: Vec<u64> = (0..2000).collect();
    assert!(spool.acknowledge(&all).is_err());
    assert_eq!(spool.bytes(), 0, "all of it, the newest segment too");
    // Restarted with the stale position: nothing comes back that was acknowledged, nothing is
    // numbered twice.
    drop(spool);
    fs::remove_dir(dir.path().join(format!("{ACK_FILE}.tmp"))).expect("unblock");
    let mut spool = Spool::open(dir.path(), 256 * 1024).expect("reopen");
    assert_eq!(spool.pending(), 0);
    assert!(spool.read(0, 10).expect("read").is_empty());
    append(&mut spool, 0..2);
    assert_eq!(spool.read(0, 10).expect("read").len(), 2);
}
