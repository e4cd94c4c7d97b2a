//! Framing tests: recorded Calypso lines, CRI and JSON files, and the properties (chunking,
//! restart, never glue, never split).

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::record::{Record, Stream};

/// Framing alone: the generated records hold `key:value` pairs that masking would change.
fn opts(max: usize) -> FramingOptions {
    FramingOptions { max_record_bytes: max, redactor: None, ..FramingOptions::default() }
}

fn frame_chunks(
    format: Format,
    o: &FramingOptions,
    at: Position,
    chunks: &[&[u8]],
) -> (Vec<Record>, Position) {
    let mut f = make_frame(format, o.clone())(at);
    let now = Instant::now();
    let mut out = Vec::new();
    for c in chunks {
        f.push(c, now, &mut out);
    }
    f.finish(&mut out);
    assert_eq!(f.pending_bytes(), 0);
    (out, f.position())
}

fn frame(format: Format, o: &FramingOptions, bytes: &[u8]) -> Vec<Record> {
    frame_chunks(format, o, Position::default(), &[bytes]).0
}

fn texts(rs: &[Record]) -> Vec<String> {
    rs.iter().map(|r| String::from_utf8_lossy(&r.bytes).into_owned()).collect()
}

fn assert_tiles(rs: &[Record], from: u64) {
    let mut at = from;
    for r in rs {
        assert_eq!(r.offset, at, "records tile the file: {rs:?}");
        assert!(r.end > r.offset);
        at = r.end;
    }
}

const CALYPSO: &str = "\
2026-11-27 13:53:32,123 INFO  [main] [Startup] DataServer starting
2026-11-27 13:53:33,001 ERROR [RMI TCP Connection(2)-10.0.0.1] [com.calypso.tk.service.DSConnection] Connection lost
com.calypso.tk.core.PersistenceException: could not read trade 42
\tat com.calypso.tk.service.sql.TradeSQL.get(TradeSQL.java:311)
\tat com.calypso.tk.service.RemoteTradeImpl.getTrade(RemoteTradeImpl.java:88)
Caused by: java.sql.SQLRecoverableException: IO Error: Connection reset
\tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:489)
\t... 12 more
2026-11-27 13:53:34,500 WARN  [pool-1-thread-3] [Engine] slow
";

#[test]
fn calypso_records_with_stack_traces_stay_whole() {
    let rs = frame(Format::Log4j, &opts(1 << 20), CALYPSO.as_bytes());
    let t = texts(&rs);
    assert_eq!(t.len(), 3, "{t:#?}");
    assert!(t[1].starts_with("2026-11-27 13:53:33,001 ERROR"));
    assert!(t[1].ends_with("\t... 12 more"));
    assert_eq!(t[1].lines().count(), 7);
    assert_tiles(&rs, 0);
    assert_eq!(rs[2].end, CALYPSO.len() as u64);
    assert!(rs.iter().all(|r| !r.cut && r.cri.is_none()));
}

#[test]
fn pending_record_waits_for_the_next_start_or_the_flush_timeout() {
    let mut f = make_frame(Format::Log4j, opts(1 << 20))(Position::default());
    let t0 = Instant::now();
    let mut out = Vec::new();
    f.push(
        b"2026-11-27 13:53:33,001 ERROR [main] [X] boom\njava.lang.IllegalStateException: x\n",
        t0,
        &mut out,
    );
    assert!(out.is_empty());
    f.idle(t0 + Duration::from_millis(1999), &mut out);
    assert!(out.is_empty(), "not before the timeout");
    f.push(b"\tat a.B.c(B.java:1)\n", t0 + Duration::from_secs(1), &mut out);
    f.idle(t0 + Duration::from_millis(2999), &mut out);
    assert!(out.is_empty(), "the timeout counts from the last line");
    f.idle(t0 + Duration::from_secs(3), &mut out);
    assert_eq!(
        texts(&out),
        [
            "2026-11-27 13:53:33,001 ERROR [main] [X] boom\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)"
        ]
    );
    assert_eq!(f.position().offset, out[0].end);
    assert_eq!(f.pending_bytes(), 0);
}

#[test]
fn a_re_read_ends_records_where_the_clock_ended_them() {
    // First read: a line cut by the flush timeout, then its stack trace and the next record.
    let line = "2026-11-27 13:53:33,001 ERROR [main] [X] boom\n";
    let rest = "java.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n2026-11-27 13:53:40,000 INFO [main] [X] next\n";
    for format in [Format::Log4j, Format::Cri] {
        let (line, rest) = match format {
            Format::Cri => (cri_lines(line), cri_lines(rest)),
            _ => (line.to_string(), rest.to_string()),
        };
        let mut f = make_frame(format, opts(1 << 20))(Position::default());
        let t0 = Instant::now();
        let mut first = Vec::new();
        f.push(line.as_bytes(), t0, &mut first);
        f.idle(t0 + Duration::from_secs(3), &mut first);
        assert_eq!(first.len(), 1, "{format:?}: cut by the clock");
        let cut = first[0].end;
        f.push(rest.as_bytes(), t0 + Duration::from_secs(4), &mut first);
        f.finish(&mut first);
        assert_eq!(first.len(), 3, "{format:?}: {:#?}", texts(&first));

        // A re-read from the start that knows the cut yields the same records, ids and all.
        let all = format!("{line}{rest}");
        let mut again = make_frame(format, opts(1 << 20))(Position::default());
        again.cut_at(&[cut]);
        let mut second = Vec::new();
        again.push(all.as_bytes(), t0, &mut second);
        again.finish(&mut second);
        assert_eq!(second, first, "{format:?}");
        // Without it the line and its trace are one record: the line would be stored twice.
        let (blind, _) = frame_chunks(format, &opts(1 << 20), Position::default(), &[all.as_bytes()]);
        assert_eq!(blind.len(), 2, "{format:?}: the fault this guards against");
        // Resumed past the cut, a frame ignores it.
        let mut later =
            make_frame(format, opts(1 << 20))(Position { offset: first[1].end, chain: first[1].chain });
        later.cut_at(&[cut]);
        let mut third = Vec::new();
        later.push(&all.as_bytes()[first[1].end as usize..], t0, &mut third);
        later.finish(&mut third);
        assert_eq!(third, first[2..], "{format:?}");
    }
}

/// `text`'s lines as CRI `F` lines of stdout.
fn cri_lines(text: &str) -> String {
    text.lines().map(|l| format!("2026-11-27T13:53:33.001000000Z stdout F {l}\n")).collect()
}

#[test]
fn a_line_without_newline_is_emitted_only_by_finish() {
    let mut f = make_frame(Format::Log4j, opts(1 << 20))(Position::default());
    let t0 = Instant::now();
    let mut out = Vec::new();
    f.push(b"2026-11-27 13:53:33,001 INFO [main] [X] half", t0, &mut out);
    f.idle(t0 + Duration::from_secs(60), &mut out);
    assert!(out.is_empty());
    assert_eq!(f.pending_bytes(), 44);
    f.finish(&mut out);
    assert_eq!(texts(&out), ["2026-11-27 13:53:33,001 INFO [main] [X] half"]);
    assert_eq!(out[0].end, 44);
}

#[test]
fn lines_before_the_first_record_form_their_own() {
    let rs = frame(
        Format::Log4j,
        &opts(1 << 20),
        b"\tat x.Y.z(Y.java:1)\n\t... 3 more\n2026-11-27 13:53:33,001 INFO [main] [X] a\n",
    );
    assert_eq!(
        texts(&rs),
        ["\tat x.Y.z(Y.java:1)\n\t... 3 more", "2026-11-27 13:53:33,001 INFO [main] [X] a"]
    );
}

#[test]
fn blank_lines_are_covered_not_shipped() {
    let rs = frame(Format::Log4j, &opts(1 << 20), b"\n  \n2026-11-27 13:53:33,001 INFO [main] [X] a\n\n");
    assert_eq!(texts(&rs), ["2026-11-27 13:53:33,001 INFO [main] [X] a\n"]);
    assert_eq!((rs[0].offset, rs[0].end), (0, 47));
    let (rs, pos) = frame_chunks(Format::Log4j, &opts(100), Position::default(), &[b"\n\n"]);
    assert!(rs.is_empty());
    assert_eq!(pos.offset, 0);
}

#[test]
fn crlf_is_stripped_from_the_text_not_the_offsets() {
    let rs = frame(Format::Log4j, &opts(1 << 20), b"2026-11-27 13:53:33,001 INFO [main] [X] a\r\n\tat b\r\n");
    assert_eq!(texts(&rs), ["2026-11-27 13:53:33,001 INFO [main] [X] a\n\tat b"]);
    assert_eq!(rs[0].end, 50);
}

#[test]
fn invalid_utf8_is_kept_as_bytes() {
    let rs = frame(Format::Log4j, &opts(1 << 20), b"2026-11-27 13:53:33,001 INFO [main] [X] caf\xe9\n");
    assert_eq!(rs[0].bytes.last(), Some(&0xe9));
}

#[test]
fn oversized_records_are_cut_not_dropped() {
    let line = "2026-11-27 13:53:33,001 INFO [main] [X] 0123456789\n"; // 51 bytes
    let input = format!("{line}\tat x\n{line}");
    let rs = frame(Format::Log4j, &opts(20), input.as_bytes());
    assert_tiles(&rs, 0);
    assert_eq!(rs.last().map(|r| r.end), Some(input.len() as u64));
    assert!(rs.iter().all(|r| r.bytes.len() <= 20 && r.cut), "{rs:?}");
    let joined: Vec<u8> = rs.iter().flat_map(|r| r.bytes.clone()).filter(|&b| b != b'\n').collect();
    let expect: Vec<u8> = input.bytes().filter(|&b| b != b'\n').collect();
    assert_eq!(joined, expect, "every byte is shipped once");
    // A line that never ends is cut as it grows: memory stays bounded.
    let mut f = make_frame(Format::Log4j, opts(1000))(Position::default());
    let mut out = Vec::new();
    for _ in 0..100 {
        f.push(&[b'x'; 100], Instant::now(), &mut out);
        assert!(f.pending_bytes() <= 2000);
    }
    assert_eq!(out.len(), 8, "the ninth piece waits: more of the line may come");
}

#[test]
fn json_one_record_per_line() {
    let input = b"{\"@timestamp\":\"2026-11-27T13:53:32.123Z\",\"message\":\"a\"}\n\n{\"message\":\"b\"}\r\nnot json\n";
    let rs = frame(Format::Json, &opts(1 << 20), input);
    assert_eq!(
        texts(&rs),
        [
            "{\"@timestamp\":\"2026-11-27T13:53:32.123Z\",\"message\":\"a\"}",
            "{\"message\":\"b\"}",
            "not json"
        ]
    );
    assert_tiles(&rs, 0);
    assert_eq!(rs[1].end - rs[1].offset, 18, "the blank line is covered by the next record");
}

const CRI: &str = "\
2026-11-27T13:53:32.100000001Z stdout F 2026-11-27 13:53:32,100 INFO [main] [X] up
2026-11-27T13:53:33.000000001Z stdout F 2026-11-27 13:53:33,000 ERROR [main] [X] boom
2026-11-27T13:53:33.000000002Z stdout P java.lang.IllegalStateException: a very
2026-11-27T13:53:33.000000003Z stdout F  long message
2026-11-27T13:53:33.000000004Z stdout F \tat a.B.c(B.java:1)
2026-11-27T13:53:33.000000005Z stderr F warning: something on stderr
2026-11-27T13:53:33.000000006Z stderr F \tat continued.on(stderr)
garbage line
2026-11-27T13:53:34.000000001Z stdout F 2026-11-27 13:53:34,000 INFO [main] [X] done
";

#[test]
fn cri_partial_lines_are_joined_and_streams_kept_apart() {
    let rs = frame(Format::Cri, &opts(1 << 20), CRI.as_bytes());
    assert_eq!(
        texts(&rs),
        [
            "2026-11-27 13:53:32,100 INFO [main] [X] up",
            "2026-11-27 13:53:33,000 ERROR [main] [X] boom\njava.lang.IllegalStateException: a very long message\n\tat a.B.c(B.java:1)",
            "warning: something on stderr\n\tat continued.on(stderr)\ngarbage line",
            "2026-11-27 13:53:34,000 INFO [main] [X] done",
        ]
    );
    assert_tiles(&rs, 0);
    let cri = rs[1].cri.as_ref().expect("cri");
    assert_eq!((cri.time.as_str(), cri.stream), ("2026-11-27T13:53:33.000000001Z", Stream::Stdout));
    assert_eq!(rs[2].cri.as_ref().map(|c| c.stream), Some(Stream::Stderr));
}

#[test]
fn cri_open_partial_line_holds_the_flush() {
    let mut f = make_frame(Format::Cri, opts(1 << 20))(Position::default());
    let t0 = Instant::now();
    let mut out = Vec::new();
    f.push(b"2026-11-27T13:53:33.0Z stdout P 2026-11-27 13:53:33,000 INFO [main] [X] a\n", t0, &mut out);
    f.idle(t0 + Duration::from_secs(10), &mut out);
    assert!(out.is_empty());
    f.push(b"2026-11-27T13:53:33.0Z stdout F b\n", t0, &mut out);
    f.idle(t0 + Duration::from_secs(10), &mut out);
    assert_eq!(texts(&out), ["2026-11-27 13:53:33,000 INFO [main] [X] ab"]);
}

#[test]
fn user_regex_record_start() {
    let o = FramingOptions { record_start: RecordStart::regex(r"^\[\d+\]").expect("re"), ..opts(1 << 20) };
    let rs = frame(Format::Log4j, &o, b"[1] a\n  more\n[2] b\n");
    assert_eq!(texts(&rs), ["[1] a\n  more", "[2] b"]);
}

// ---- properties ----

/// One generated Calypso record: its lines (the first a header), written with `\n` or `\r\n`.
fn arb_record() -> impl Strategy<Value = Vec<String>> {
    let header = (
        0u32..60,
        "[a-zA-Z0-9 ,.:()\\[\\]-]{0,40}",
        prop::sample::select(vec!["INFO ", "ERROR", "WARN ", "DEBUG"]),
    )
        .prop_map(|(s, msg, lvl)| format!("2026-11-27 13:53:{s:02},123 {lvl} [main] [Cat] {msg}"));
    let trace_line = prop_oneof![
        "[a-z]{1,8}\\.[A-Za-z]{1,12}Exception: [a-z ]{0,20}".prop_map(|s| s),
        "[a-z]{1,8}\\.[A-Za-z]{1,8}\\.[a-z]{1,8}\\([A-Za-z]{1,8}\\.java:[0-9]{1,4}\\)"
            .prop_map(|s| format!("\tat {s}")),
        "[a-z.]{1,20}: [a-z ]{0,20}".prop_map(|s| format!("Caused by: {s}")),
        (1u32..200).prop_map(|n| format!("\t... {n} more")),
        "[a-z ]{0,10}".prop_map(|s| s),
    ];
    (header, prop::collection::vec(trace_line, 0..7)).prop_map(|(h, t)| {
        let mut v = vec![h];
        v.extend(t);
        v
    })
}

fn write(records: &[Vec<String>], crlf: bool) -> Vec<u8> {
    let nl = if crlf { "\r\n" } else { "\n" };
    records.iter().flatten().flat_map(|l| format!("{l}{nl}").into_bytes()).collect()
}

/// Cuts `bytes` at the given (sorted, deduplicated) places.
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut v = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts {
        v.push(&bytes[at..c.max(at)]);
        at = c.max(at);
    }
    v.push(&bytes[at..]);
    v
}

fn strip_cut(rs: &[Record]) -> Vec<Record> {
    rs.iter().cloned().map(|r| Record { cut: false, ..r }).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Generated records with random stack traces come back exactly: none glued, none split;
    /// however the bytes are chunked; and from every emitted position the same records follow.
    #[test]
    fn log4j_records_reassemble(records in prop::collection::vec(arb_record(), 1..12), crlf: bool, cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let bytes = write(&records, crlf);
        let o = opts(1 << 20);
        let whole = frame(Format::Log4j, &o, &bytes);
        let expect: Vec<String> = records.iter().map(|r| r.join("\n")).collect();
        prop_assert_eq!(texts(&whole), expect);
        assert_tiles(&whole, 0);
        prop_assert_eq!(whole.last().map(|r| r.end), Some(bytes.len() as u64));
        let (chunked, _) = frame_chunks(Format::Log4j, &o, Position::default(), &chunks(&bytes, &cuts));
        prop_assert_eq!(&chunked, &whole);
        for (i, r) in whole.iter().enumerate() {
            let at = Position { offset: r.end, chain: r.chain };
            let (again, _) = frame_chunks(Format::Log4j, &o, at, &chunks(&bytes[r.end as usize..], &cuts));
            prop_assert_eq!(&again[..], &whole[i + 1..]);
        }
    }

    /// With a small limit: records are cut, every byte still shipped once, chunking changes
    /// nothing, and a restart changes nothing but the `cut` mark of a resumed remainder.
    #[test]
    fn cut_records_tile_and_resume(records in prop::collection::vec(arb_record(), 1..6), max in 8usize..64, cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let bytes = write(&records, false);
        let o = opts(max);
        let whole = frame(Format::Log4j, &o, &bytes);
        assert_tiles(&whole, 0);
        let covered = whole.last().map_or(0, |r| r.end as usize);
        prop_assert!(bytes[covered..].iter().all(u8::is_ascii_whitespace));
        prop_assert!(whole.iter().all(|r| r.bytes.len() <= max));
        let (chunked, _) = frame_chunks(Format::Log4j, &o, Position::default(), &chunks(&bytes, &cuts));
        prop_assert_eq!(&chunked, &whole);
        for (i, r) in whole.iter().enumerate() {
            let at = Position { offset: r.end, chain: r.chain };
            let (again, _) = frame_chunks(Format::Log4j, &o, at, &[&bytes[r.end as usize..]]);
            // A remainder resumed in the middle of a line may also begin with something the
            // matcher accepts; the texts, offsets and chains are what the ids are made of.
            prop_assert_eq!(strip_cut(&again), strip_cut(&whole[i + 1..]));
        }
    }

    /// CRI: records written to stdout in random `P` pieces come back whole, however chunked.
    #[test]
    fn cri_records_reassemble(records in prop::collection::vec(arb_record(), 1..8), splits in prop::collection::vec(1usize..30, 1..20), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut bytes = Vec::new();
        let mut s = splits.iter().cycle();
        for line in records.iter().flatten() {
            let mut rest = line.as_bytes();
            loop {
                // The runtime's first piece is a whole 16 KiB buffer: it has the timestamp.
                let n = if rest.len() == line.len() { 23 + *s.next().unwrap_or(&5) } else { *s.next().unwrap_or(&5) };
                let (piece, tag) = if rest.len() > n { (&rest[..n], 'P') } else { (rest, 'F') };
                bytes.extend_from_slice(format!("2026-11-27T13:53:33.000000001Z stdout {tag} ").as_bytes());
                bytes.extend_from_slice(piece);
                bytes.push(b'\n');
                rest = &rest[piece.len()..];
                if tag == 'F' { break; }
            }
        }
        let o = opts(1 << 20);
        let whole = frame(Format::Cri, &o, &bytes);
        let expect: Vec<String> = records.iter().map(|r| r.join("\n")).collect();
        prop_assert_eq!(texts(&whole), expect);
        assert_tiles(&whole, 0);
        let (chunked, _) = frame_chunks(Format::Cri, &o, Position::default(), &chunks(&bytes, &cuts));
        prop_assert_eq!(&chunked, &whole);
        for (i, r) in whole.iter().enumerate() {
            let at = Position { offset: r.end, chain: r.chain };
            let (again, _) = frame_chunks(Format::Cri, &o, at, &[&bytes[r.end as usize..]]);
            prop_assert_eq!(&again[..], &whole[i + 1..]);
        }
    }

    /// Any bytes at all: tiling, nothing lost, chunking invariance, for every format.
    #[test]
    fn any_bytes_tile(bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'\n', b'\r', b' ', b'2', 0xff]), 0..300), max in 1usize..40, cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        for format in [Format::Log4j, Format::Json, Format::Cri] {
            let o = opts(max);
            let (whole, pos) = frame_chunks(format, &o, Position::default(), &[&bytes]);
            assert_tiles(&whole, 0);
            prop_assert!(pos.offset <= bytes.len() as u64);
            // What is not covered is whitespace only.
            prop_assert!(bytes[pos.offset as usize..].iter().all(u8::is_ascii_whitespace));
            let (chunked, _) = frame_chunks(format, &o, Position::default(), &chunks(&bytes, &cuts));
            prop_assert_eq!(&chunked, &whole);
        }
    }
}

#[test]
fn chain_is_the_streaming_hash_of_its_parts() {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(&7u128.to_le_bytes());
    h.update(&9u64.to_le_bytes());
    h.update(b"record");
    assert_eq!(chain(7, 9, b"record"), h.digest128());
}

#[test]
fn chain_links_records() {
    let rs = frame(Format::Log4j, &opts(1 << 20), CALYPSO.as_bytes());
    let mut prev = 0u128;
    for r in &rs {
        assert_eq!(r.chain, group::chain(prev, r.offset, &r.bytes));
        prev = r.chain;
    }
}

#[test]
fn records_are_masked_as_they_are_framed_and_their_chains_hold_no_secret() {
    let o = FramingOptions::default();
    let with = |secret: &str| {
        format!(
            "2026-11-27 13:53:32,123 ERROR [main] [DS] cannot connect jdbc:oracle:thin:calypso/{secret}@db\n\
             java.sql.SQLException: login as calypso with password={secret} refused\n\
             \tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:489)\n\
             2026-11-27 13:53:33,000 INFO  [main] [DS] retrying\n"
        )
    };
    let (a, b) = (
        frame(Format::Log4j, &o, with("Tig3r").as_bytes()),
        frame(Format::Log4j, &o, with("L1on5").as_bytes()),
    );
    assert_eq!(
        texts(&a),
        [
            "2026-11-27 13:53:32,123 ERROR [main] [DS] cannot connect jdbc:oracle:thin:calypso/<redacted>@db\n\
             java.sql.SQLException: login as calypso with password=<redacted> refused\n\
             \tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:489)",
            "2026-11-27 13:53:33,000 INFO  [main] [DS] retrying",
        ]
    );
    assert_eq!((a[0].redacted, a[1].redacted), (true, false));
    // The chains (and so the ids) are the same whatever the secret was: nothing of it reaches
    // them. (Its length does, through the offsets, as `log.offset` tells it anyway.)
    assert_eq!(a.iter().map(|r| r.chain).collect::<Vec<_>>(), b.iter().map(|r| r.chain).collect::<Vec<_>>());
    let unmasked = FramingOptions { redactor: None, ..FramingOptions::default() };
    let raw = frame(Format::Log4j, &unmasked, with("Tig3r").as_bytes());
    assert!(texts(&raw)[0].contains("Tig3r") && !raw[0].redacted, "off: as written");
    assert_ne!(raw[0].chain, a[0].chain);
    // A record without credentials is framed the same either way.
    assert_eq!(raw[1].bytes, a[1].bytes);
}

#[test]
fn json_records_are_masked_field_by_field() {
    let o = FramingOptions::default();
    let rs = frame(
        Format::Json,
        &o,
        b"{\"message\":\"up\",\"db\":{\"password\":\"pw1\"}}\n{\"message\":\"clean\"}\nnot json password=pw2\n",
    );
    assert_eq!(
        texts(&rs),
        [
            r#"{"db":{"password":"<redacted>"},"message":"up"}"#,
            r#"{"message":"clean"}"#,
            "not json password=<redacted>"
        ]
    );
    assert_eq!(rs.iter().map(|r| r.redacted).collect::<Vec<_>>(), [true, false, true]);
}

#[test]
fn a_record_start_seen_once_is_not_checked_again_and_nothing_else_is_skipped() {
    // Records that begin with the date and time the record-start check has seen are masked from
    // just after it (not checked again: the check of the test build asserts it is one); the
    // lines before the first record start, and a record cut at the limit, are read whole.
    let o = FramingOptions { max_record_bytes: 64, ..FramingOptions::default() };
    let rs = frame(
        Format::Log4j,
        &o,
        b"token=early1 before any record\n\
          2026-11-27 13:53:32,123 pw:Tig3r\n\
          2026-11-27 13:53:33,000 INFO a line longer than the limit, then token=late1 past it\n\
          2026-11-27 13:53:34,000 done\n",
    );
    assert_eq!(
        texts(&rs),
        [
            "token=<redacted> before any record",
            "2026-11-27 13:53:32,123 pw:<redacted>",
            "2026-11-27 13:53:33,000 INFO a line longer than the limit, then ",
            "token=<redacted> past it",
            "2026-11-27 13:53:34,000 done",
        ]
    );
    assert_eq!(rs.iter().map(|r| r.redacted).collect::<Vec<_>>(), [true, true, false, true, false]);
}
