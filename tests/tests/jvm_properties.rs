//! The real `java.util.Properties` (through both `load(InputStream)` and a UTF-8
//! `load(Reader)`) against `calypso::properties`: values escaped by `escape_key`/`escape_value`
//! come back exactly, and `Document::parse` reads any text as Java does. Skipped, loudly, where
//! no JDK is installed; mandatory where `AGENT_TESTS_REQUIRE` contains `java`.
//!
//! The randomised tests draw from a seed printed on failure; set `JVM_PROPERTIES_SEED=<n>` to
//! replay one. (They use `rand` with batches rather than proptest: one JVM run checks thousands
//! of strings, where a JVM run per proptest case would take minutes.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use calypso::properties::{Document, PropertiesError, escape_key, escape_value};
use calypso_testkit::jvm::{Jvm, Loaded};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Map = BTreeMap<String, String>;

/// Writes each text to its own file in `dir` and loads them all in one JVM run.
fn load_texts(jvm: &Jvm, dir: &tempfile::TempDir, texts: &[String]) -> Vec<Loaded> {
    let paths: Vec<PathBuf> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = dir.path().join(format!("{i}.properties"));
            std::fs::write(&path, text).expect("write a .properties file");
            path
        })
        .collect();
    jvm.load_many(&paths).expect("run the Java loader")
}

/// The file an agent writes for these pairs.
fn escaped_file(pairs: &[(String, String)]) -> String {
    let mut text = String::from("# written by calypso::properties\n");
    for (k, v) in pairs {
        text.push_str(&escape_key(k));
        text.push('=');
        text.push_str(&escape_value(v, true));
        text.push('\n');
    }
    text
}

/// What Properties.load gives for these pairs: a map, the last duplicate winning.
fn as_map(pairs: &[(String, String)]) -> Map {
    pairs.iter().cloned().collect()
}

/// What `calypso::properties` reads from the text, as a map like Java's.
fn calypso_reads(text: &str) -> Result<Map, PropertiesError> {
    Ok(Document::parse(text)?.pairs()?.into_iter().collect())
}

/// Asserts that Java read `expected` through both readers, naming the first key that differs.
fn assert_java_reads(loaded: &Loaded, expected: &Map, context: &str) {
    for (reader, got) in loaded.by_reader() {
        let got = got.as_ref().unwrap_or_else(|e| panic!("{context}: {reader} failed: {e}"));
        for (k, v) in expected {
            assert_eq!(got.get(k), Some(v), "{context}: {reader}: key {k:?}");
        }
        let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
        assert!(extra.is_empty(), "{context}: {reader}: unexpected keys {extra:?}");
    }
}

fn hostile_corpus() -> Vec<(String, String)> {
    let mut big = String::new();
    while big.len() < 64 * 1024 {
        big.push_str(r"C:\Calypso\new\tmp=a:b#c!d \u0041 Zürich 東京 😀 ");
        big.push('\t');
    }
    let pairs: &[(&str, &str)] = &[
        ("windows.path", r"C:\new\dir\calypso.jar"),
        ("windows.path.x", r"C:\x\y"),
        ("unc.path", r"\\fileserver\share\calypso\"),
        ("trailing.backslash", "ends with a backslash\\"),
        ("only.backslashes", r"\\\"),
        ("regex", r"^\d{3}-\w+\s*(\.\d+)?$"),
        ("separators", "a=b:c#d!e"),
        ("separators.leading", "=:#!"),
        ("comment.like", "# not a comment"),
        ("bang.like", "! not a comment"),
        ("spaces", "  leading and trailing  "),
        ("only.spaces", "   "),
        ("one.space", " "),
        ("controls", "tab\there\nnewline\rcr\u{c}form feed\r\nCRLF"),
        ("leading.tab", "\tindented"),
        ("leading.newline", "\nsecond line"),
        ("trailing.newline", "line\n"),
        ("literal.u", r"\u0041 is not A; \uZZZZ is no escape; \u"),
        ("literal.escapes", r"\t\n\r\f\\"),
        ("latin1", "Zürich, Ça coûte 5 € — naïve ÿ ©®"),
        ("cjk", "東京証券取引所 株式会社"),
        ("emoji", "📈 up 😀 and 👩‍💻"),
        ("astral", "\u{10000}\u{1F600}\u{10FFFF}"),
        ("ascii.controls", "\u{0}\u{1}\u{1f}\u{7f}"),
        ("c1.controls", "\u{80}\u{9f}\u{a0}\u{ad}"),
        ("bom.and.noncharacters", "\u{feff}x\u{fffe}\u{ffff}"),
        ("empty", ""),
        ("jdbc", "jdbc:oracle:thin:@//db-host.example:1521/CALYPSO?ssl=true&x=1"),
        ("password.symbols", r#"p@ss:w0rd=!#"'`$%^&*()[]{}<>|~;,.?/+-_ "#),
        ("password.backslashes", r#"\"\'\\\ \=\:"#),
        ("password.unicode.escape", r"pa\u0073s\uD83D"),
        ("key with spaces", "value"),
        ("key=with:separators#and!bangs", "value"),
        (r"C:\key\path", r"C:\value\path"),
        ("ключ", "значение"),
        ("😀", "emoji key"),
    ];
    let mut corpus: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    corpus.push((String::new(), "empty key".to_owned()));
    corpus.push((" leading space key".to_owned(), " leading space value".to_owned()));
    corpus.push(("\tleading.tab.key".to_owned(), "v".to_owned()));
    corpus.push(("big".to_owned(), big));
    corpus
}

#[test]
fn hostile_values_read_back_identically_through_both_readers() {
    let Some(jvm) = Jvm::get() else { return };
    let corpus = hostile_corpus();
    let text = escaped_file(&corpus);
    assert!(text.is_ascii());
    let expected = as_map(&corpus);
    assert_eq!(expected.len(), corpus.len(), "corpus keys are unique");
    assert_eq!(calypso_reads(&text).unwrap(), expected);

    let dir = tempfile::tempdir().unwrap();
    // All in one file, and each value alone in its own file (nothing leaks between lines).
    let mut texts = vec![text];
    texts.extend(corpus.iter().map(|pair| escaped_file(std::slice::from_ref(pair))));
    let loaded = load_texts(jvm, &dir, &texts);
    assert_java_reads(&loaded[0], &expected, "whole corpus");
    for (pair, loaded) in corpus.iter().zip(&loaded[1..]) {
        assert_java_reads(loaded, &as_map(std::slice::from_ref(pair)), &format!("alone: {:?}", pair.0));
    }
}

/// Why escaping matters: the same values written as they are do not come back.
#[test]
fn unescaped_values_do_not_read_back() {
    let Some(jvm) = Jvm::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let naive = "path=C:\\new\\dir\nx=C:\\x\\y\ncity=Zürich\n  lead=  two spaces\n".to_owned();
    let loaded = load_texts(jvm, &dir, std::slice::from_ref(&naive)).remove(0);
    let stream = loaded.via_stream.as_ref().unwrap();
    let reader = loaded.via_reader.as_ref().unwrap();
    for got in [stream, reader] {
        assert_eq!(got["path"], "C:\newdir", r"\n is a newline and \d a d");
        assert_ne!(got["path"], r"C:\new\dir");
        assert_eq!(got["x"], "C:xy");
        assert_eq!(got["lead"], "two spaces", "leading spaces are separator whitespace");
    }
    // Raw UTF-8 is read as ISO-8859-1 by load(InputStream), and only load(Reader) gets it right.
    assert_eq!(stream["city"], "ZÃ¼rich");
    assert_eq!(reader["city"], "Zürich");
    // calypso::properties reads text as load(Reader) does, garbage included.
    assert_eq!(&calypso_reads(&naive).unwrap(), reader);
}

#[test]
fn malformed_unicode_escape_is_an_error_for_java_and_calypso() {
    let Some(jvm) = Jvm::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let texts = ["k=\\u12".to_owned(), "k\\u00G1=v".to_owned(), "k=\\uD83D\\uDE00\\u0041".to_owned()];
    let loaded = load_texts(jvm, &dir, &texts);
    for (reader, got) in loaded[0].by_reader().into_iter().chain(loaded[1].by_reader()) {
        let err = got.as_ref().unwrap_err();
        assert!(err.starts_with("java.lang.IllegalArgumentException: Malformed"), "{reader}: {err}");
    }
    assert_eq!(calypso_reads(&texts[0]), Err(PropertiesError::MalformedUnicode { line: 1, column: 3 }));
    assert_eq!(calypso_reads(&texts[1]), Err(PropertiesError::MalformedUnicode { line: 1, column: 2 }));
    assert_java_reads(&loaded[2], &calypso_reads(&texts[2]).unwrap(), "valid escapes");
}

// ---- randomised ---------------------------------------------------------------------------------

fn seed() -> u64 {
    match std::env::var("JVM_PROPERTIES_SEED") {
        Ok(s) => s.parse().expect("JVM_PROPERTIES_SEED is a u64"),
        Err(_) => rand::rng().random(),
    }
}

/// A char of any sort, biased towards the ones properties syntax cares about.
fn random_char(rng: &mut StdRng) -> char {
    const SPECIAL: &[char] = &[
        '\\', ' ', '\t', '\n', '\r', '\x0c', '=', ':', '#', '!', 'u', 'n', '0', 'D', '\u{0}', '\u{7f}', 'é',
        'ÿ', '€', '日', '😀', '\u{feff}',
    ];
    match rng.random_range(0..10) {
        0..=3 => SPECIAL[rng.random_range(0..SPECIAL.len())],
        4..=5 => rng.random_range(' '..='~'),
        6 => rng.random_range('\u{80}'..='\u{ff}'),
        7 => rng.random_range('\u{100}'..='\u{d7ff}'),
        8 => rng.random_range('\u{e000}'..='\u{ffff}'),
        _ => rng.random_range('\u{10000}'..='\u{10ffff}'),
    }
}

fn random_string(rng: &mut StdRng) -> String {
    let len = if rng.random_ratio(1, 16) { rng.random_range(0..400) } else { rng.random_range(0..24) };
    (0..len).map(|_| random_char(rng)).collect()
}

/// 4 JVM runs × 8 files × 64 random pairs: escaped, written, loaded through both readers, every
/// value identical.
#[test]
fn random_strings_survive_escape_and_java_load() {
    let Some(jvm) = Jvm::get() else { return };
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let batches: Vec<Vec<(String, String)>> = (0..8)
            .map(|_| (0..64).map(|_| (random_string(&mut rng), random_string(&mut rng))).collect())
            .collect();
        let texts: Vec<String> = batches.iter().map(|pairs| escaped_file(pairs)).collect();
        let loaded = load_texts(jvm, &dir, &texts);
        for ((pairs, text), loaded) in batches.iter().zip(&texts).zip(&loaded) {
            let expected = as_map(pairs);
            let context = format!("seed {seed} round {round} (replay with JVM_PROPERTIES_SEED={seed})");
            assert!(text.is_ascii(), "{context}");
            assert_eq!(calypso_reads(text).as_ref(), Ok(&expected), "{context}");
            assert_java_reads(loaded, &expected, &context);
        }
    }
}

/// Random texts in properties syntax (comments, separators, continuations, escapes, all three
/// line terminators, end-of-file corners): `Document::parse` + `pairs` read what Java reads.
#[test]
fn parser_reads_any_text_as_java_does() {
    let Some(jvm) = Jvm::get() else { return };
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    // ASCII only, so both readers must agree; no `D`/`d`, so no `\uXXXX` is a lone surrogate
    // (which Java keeps and calypso refuses).
    const TOKENS: &[&str] = &[
        "\\", "\\", "\\", "\\\\", " ", " ", "\t", "\x0c", "=", ":", "#", "!", "a", "b", "k", "v", "u", "n",
        "t", "0", "4", "1", "F", "\\u", "\\u0041", "\\u004", "\n", "\n", "\n", "\r", "\r\n",
    ];
    let mut texts: Vec<String> = [
        "\\",
        "\\\n",
        "\\\r",
        "\\\r\n",
        "  \\\n  ",
        "\\\n#c",
        "\\\n\n",
        "\\\n\\\nk=v",
        "k=v\\",
        "k=v\\\n",
        "k=v\\\r\n",
        "k=v\\\n  ",
        "#c\\\nk=v",
        "a\\\n\nb",
        "a\\\n  \t\nb",
        "k\\\n  ey = \\\n  v",
        "a b c",
        "\r\n\r\n k : v",
        "!x\r#y\rk",
        "k=\\u00\\\n  41",
        "=",
        ":",
        " = ",
        "\\ ",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    while texts.len() < 600 {
        let len = rng.random_range(0..40);
        texts.push((0..len).map(|_| TOKENS[rng.random_range(0..TOKENS.len())]).collect());
    }
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_texts(jvm, &dir, &texts);
    for (text, loaded) in texts.iter().zip(&loaded) {
        let ours = calypso_reads(text);
        for (reader, java) in loaded.by_reader() {
            let context = format!("text {text:?}, {reader}, seed {seed}");
            match (&ours, java) {
                (Ok(ours), Ok(java)) => assert_eq!(ours, java, "{context}"),
                (Err(_), Err(java)) => assert!(java.contains("Malformed"), "{context}: {java}"),
                (ours, java) => panic!("{context}: calypso {ours:?}, Java {java:?}"),
            }
        }
        // And it reproduces the text (terminators normalised to `\n`).
        if let Ok(doc) = Document::parse(text) {
            assert_eq!(doc.to_text(), text.replace("\r\n", "\n").replace('\r', "\n"), "{text:?}");
        }
    }
}
