//! Property tests of the Java .properties encoder and parser: whatever the strings, the escaped
//! line is ASCII and reads back as exactly the same key and value; the parser reproduces any text
//! (with `\n` terminators) byte for byte; `ascii_only` never changes what a text means. The real
//! `java.util.Properties` is checked against the same functions in the calypso-testkit tests
//! (`tests/tests/jvm_properties.rs`).

use calypso::properties::{Document, ascii_only, escape_key, escape_value, unescape};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

/// Chars biased towards what matters to properties syntax, plus any char at all.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '\\', ' ', '\t', '\n', '\r', '\x0c', '=', ':', '#', '!', 'u', 'n', '0', 'A', 'D', 'e', '\u{0}',
            '\u{7f}', 'é', '\u{a0}', '日', '😀', '\u{feff}',
        ]),
        1 => any::<char>(),
        1 => prop::char::range('a', 'z'),
    ]
}

fn hostile_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_char(), 0..max).prop_map(|cs| cs.into_iter().collect())
}

/// Text in properties syntax: fragments of lines, biased to produce comments, separators,
/// continuations and escapes (`\uXXXX` among them), joined by the given terminator.
fn properties_text(terminators: &'static [&'static str]) -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\\".to_owned()),
        Just("\\\\".to_owned()),
        Just("#".to_owned()),
        Just("!".to_owned()),
        Just("=".to_owned()),
        Just(":".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\x0c".to_owned()),
        Just("\\u".to_owned()),
        Just("\\u0041".to_owned()),
        Just("\\uD83D\\uDE00".to_owned()),
        prop::sample::select(terminators).prop_map(str::to_owned),
        "[a-z0-9]{1,4}",
        hostile_string(3),
    ];
    prop::collection::vec(token, 0..24).prop_map(|ts| ts.concat())
}

fn normalise_terminators(t: &str) -> String {
    t.replace("\r\n", "\n").replace('\r', "\n")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn escaped_line_is_ascii_and_reads_back(key in hostile_string(24), value in hostile_string(48)) {
        let line = format!("{}={}", escape_key(&key), escape_value(&value, true));
        prop_assert!(line.is_ascii(), "{line:?}");
        let pairs = Document::parse(&line).unwrap().pairs().unwrap();
        prop_assert_eq!(pairs, vec![(key, value)]);
    }

    #[test]
    fn escaped_document_reads_back_in_order(
        entries in prop::collection::vec((hostile_string(12), hostile_string(24)), 0..8),
        comment in hostile_string(16),
    ) {
        // A comment line (itself made ASCII and without terminators) between the entries.
        let comment = format!("# {}", ascii_only(&comment.replace(['\n', '\r'], " ")));
        let mut text = String::new();
        for (k, v) in &entries {
            text.push_str(&format!("{}={}\n{comment}\n", escape_key(k), escape_value(v, true)));
        }
        prop_assert!(text.is_ascii());
        let pairs = Document::parse(&text).unwrap().pairs().unwrap();
        prop_assert_eq!(pairs, entries);
    }

    #[test]
    fn value_fragments_concatenate(
        key in hostile_string(8),
        fragments in prop::collection::vec(hostile_string(8), 0..5),
        separator in prop::sample::select(vec!["=", " = ", ":", " ", "\t:\t"]),
    ) {
        // As a template renderer does: literal text and placeholders rendered one by one, the
        // first non-empty one at the start of the value.
        let mut line = format!("{}{separator}", escape_key(&key));
        let mut value = String::new();
        for f in &fragments {
            line.push_str(&escape_value(f, value.is_empty()));
            value.push_str(f);
        }
        if key.is_empty() && separator == " " {
            // `" x"` is no key and the value `x`: an empty key needs `=` or `:`.
            return Ok(());
        }
        let pairs = Document::parse(&line).unwrap().pairs().unwrap();
        prop_assert_eq!(pairs, vec![(key, value)]);
    }

    #[test]
    fn unescape_inverts_escape(s in hostile_string(48)) {
        prop_assert_eq!(unescape(&escape_key(&s)).unwrap(), s.clone());
        prop_assert_eq!(unescape(&escape_value(&s, true)).unwrap(), s.clone());
        prop_assert_eq!(unescape(&escape_value(&s, false)).unwrap(), s);
    }

    #[test]
    fn parse_reproduces_text_with_lf(text in properties_text(&["\n"])) {
        let text = text.replace('\r', "");
        if let Ok(doc) = Document::parse(&text) {
            prop_assert_eq!(doc.to_text(), text);
            let _ = doc.pairs();
        }
    }

    #[test]
    fn parse_normalises_other_terminators(text in properties_text(&["\n", "\r", "\r\n"])) {
        if let Ok(doc) = Document::parse(&text) {
            prop_assert_eq!(doc.to_text(), normalise_terminators(&text));
        }
    }

    #[test]
    fn parse_never_panics_on_any_text(text in any::<String>()) {
        if let Ok(doc) = Document::parse(&text) {
            prop_assert_eq!(doc.to_text(), normalise_terminators(&text));
            let _ = doc.pairs();
        }
    }

    #[test]
    fn ascii_only_keeps_the_meaning(text in properties_text(&["\n", "\r\n"])) {
        let ascii = ascii_only(&text);
        prop_assert!(ascii.is_ascii(), "{ascii:?}");
        let read = |t: &str| Document::parse(t).and_then(|d| d.pairs());
        let (before, after) = (read(&text), read(&ascii));
        prop_assert_eq!(before.is_ok(), after.is_ok(), "{:?} vs {:?}", before, after);
        if let (Ok(before), Ok(after)) = (before, after) {
            prop_assert_eq!(before, after);
        }
    }
}
