//! The contract of agent-init's .properties output: the real java.util.Properties (through both
//! `load(InputStream)` and a UTF-8 `load(Reader)`) reads back exactly the values that went in.
//! Skipped loudly where no JDK is installed; CI requires it (`AGENT_TESTS_REQUIRE=java`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

use agent_init::render::{Values, render_all};
use agent_init::secret_vars::SecretVars;
use agent_init::template::{Source, merge};
use calypso_testkit::jvm::Jvm;
use proptest::prelude::*;

/// Values users really have, and the ones that break naive writers.
fn hostile() -> Vec<String> {
    let mut long = String::new();
    while long.len() < 64 * 1024 {
        long.push_str("abc=:#! \\é日😀\t");
    }
    [
        "C:\\new\\dir\\calypso",
        "\\\\fileserver\\share\\x",
        "a=b:c#d!e",
        " leading space",
        "trailing space ",
        "  both  ",
        "tab\there",
        "new\nline",
        "cr\rand\r\ncrlf",
        "\\u0041 is not an escape here",
        "\\uZZZZ",
        "Latin-1: café ñ ü ß ÿ",
        "CJK: 日本語のパスワード",
        "emoji: 😀🎉 and \u{10FFFF}",
        "",
        "p@$$w0rd!#=:\\{}[]\"'<>&|;~`^%",
        "${NOT_A_PLACEHOLDER}",
        "#leading hash",
        "!leading bang",
        "=leading equals",
        ":leading colon",
        "\\",
        "ends with backslash\\",
        "\u{0}\u{1}\u{7f}\u{80}\u{ff}\u{feff}",
    ]
    .into_iter()
    .map(String::from)
    .chain(std::iter::once(long))
    .collect()
}

#[test]
fn hostile_values_through_the_process_read_back_exactly_by_java() {
    let Some(jvm) = Jvm::get() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["t", "s", "out"] {
        std::fs::create_dir(dir.path().join(d)).expect("mkdir");
    }
    // Env values cannot hold NUL; those go through a secret.
    let values = hostile();
    let mut template = String::from("# hostile values\n");
    let mut expected = BTreeMap::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-init"));
    for (i, v) in values.iter().enumerate() {
        if v.contains('\0') {
            std::fs::write(dir.path().join("s").join(format!("v{i}")), format!("{v}\n")).expect("secret");
            template.push_str(&format!("S{i}=${{secret:v{i}}}\n"));
            expected.insert(format!("S{i}"), v.clone());
        } else {
            cmd.env(format!("V{i}"), v);
            // Alone; after a literal; after a continuation line break; after an empty value.
            template.push_str(&format!(
                "K{i}=${{V{i}}}\nP{i} = prefix ${{V{i}}} suffix\nC{i}=x\\\n    ${{V{i}}}\nE{i}=${{EMPTY}}${{V{i}}}\n"
            ));
            expected.insert(format!("K{i}"), v.clone());
            expected.insert(format!("P{i}"), format!("prefix {v} suffix"));
            expected.insert(format!("C{i}"), format!("x{v}"));
            expected.insert(format!("E{i}"), v.clone());
        }
    }
    std::fs::write(dir.path().join("t/hostile.properties.tmpl"), template).expect("template");
    let out = cmd
        .env("EMPTY", "")
        .env("AGENT_INIT_TEMPLATES", dir.path().join("t"))
        .env("AGENT_INIT_ENV", "UAT1")
        .env("AGENT_INIT_SECRETS_DIR", dir.path().join("s"))
        .env("AGENT_INIT_OUTPUT", dir.path().join("out"))
        .output()
        .expect("agent-init runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.path().join("out/hostile.properties.UAT1");
    let bytes = std::fs::read(&file).expect("rendered");
    assert!(bytes.is_ascii(), "the writer emits ASCII only");
    let loaded = jvm.load(&file).expect("java runs");
    assert_eq!(loaded.via_stream.as_ref(), Ok(&expected), "load(InputStream)");
    assert_eq!(loaded.via_reader.as_ref(), Ok(&expected), "load(Reader, UTF-8)");
}

struct Map(HashMap<String, String>);

impl Values for Map {
    fn var(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).cloned())
    }
    fn secret(&self, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// Renders one file holding every value twice (alone, and after a literal prefix).
fn render_file(values: &[String]) -> (String, BTreeMap<String, String>) {
    let mut text = String::new();
    let mut expected = BTreeMap::new();
    let mut vars = HashMap::new();
    for (i, v) in values.iter().enumerate() {
        text.push_str(&format!("K{i}=${{V{i}}}\nP{i}:x${{V{i}}}\n"));
        vars.insert(format!("V{i}"), v.clone());
        expected.insert(format!("K{i}"), v.clone());
        expected.insert(format!("P{i}"), format!("x{v}"));
    }
    let source = Source { name: "p.properties.tmpl".into(), path: PathBuf::from("p.properties.tmpl"), text };
    let (planned, problems) = merge(vec![vec![source]], "X");
    assert!(problems.is_empty());
    let rendered = render_all(&planned, &Map(vars), &[], &SecretVars::default()).expect("renders");
    (rendered[0].text.clone(), expected)
}

proptest! {
    // Each case is one JVM run over 8 files of 32 values: batched so the JVM's start-up is paid
    // once per 256 values.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_read_back_exactly_by_java(batches in prop::collection::vec(prop::collection::vec(any::<String>(), 32), 8)) {
        let Some(jvm) = Jvm::get() else { return Ok(()) };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut paths = Vec::new();
        let mut expected = Vec::new();
        for (n, values) in batches.iter().enumerate() {
            let (text, want) = render_file(values);
            prop_assert!(text.is_ascii());
            let path = dir.path().join(format!("b{n}.properties"));
            std::fs::write(&path, text).expect("write");
            paths.push(path);
            expected.push(want);
        }
        let loaded = jvm.load_many(&paths).expect("java runs");
        for (got, want) in loaded.iter().zip(&expected) {
            prop_assert_eq!(got.via_stream.as_ref(), Ok(want));
            prop_assert_eq!(got.via_reader.as_ref(), Ok(want));
        }
    }
}
