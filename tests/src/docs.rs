//! Keeps `docs/configuration.md` equal to the settings the code declares: each agent's table
//! there is generated from its [`Settings`] and checked by a test, so the docs cannot drift.
//! `AGENT_BLESS_DOCS=1 cargo test` rewrites the tables instead of failing.

use std::path::PathBuf;

use agent_core::settings::Settings;

/// The markers around a generated table: `<!-- settings: NAME -->` ... `<!-- /settings -->`.
fn markers(name: &str) -> (String, &'static str) {
    (format!("<!-- settings: {name} (generated from the code; a test checks it) -->\n"), "<!-- /settings -->")
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md")
}

/// Panics with the expected table unless the section `name` of `docs/configuration.md` is
/// exactly `settings.markdown()`.
pub fn check_settings_table(name: &str, settings: &Settings) {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (begin, end) = markers(name);
    let start = doc.find(&begin).map(|i| i + begin.len());
    let stop = start.and_then(|s| doc[s..].find(end).map(|i| s + i));
    let (Some(start), Some(stop)) = (start, stop) else {
        panic!("{}: no section {begin:?} ... {end:?}", path.display());
    };
    let want = settings.markdown();
    if doc[start..stop] == want {
        return;
    }
    if std::env::var_os("AGENT_BLESS_DOCS").is_some() {
        let updated = format!("{}{want}{}", &doc[..start], &doc[stop..]);
        std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    panic!(
        "{}: the {name} settings table differs from the code; it should be:\n{want}\n\
         (AGENT_BLESS_DOCS=1 cargo test rewrites it)",
        path.display()
    );
}
