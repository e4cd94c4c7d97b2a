//! docs/configuration.md lists exactly the settings agent-logship reads.

#[test]
fn configuration_doc_lists_exactly_the_settings() {
    calypso_testkit::docs::check_settings_table("agent-logship", &agent_logship::config::SETTINGS);
}

/// Every before/after example in the rules table of docs/agent-logship-redaction.md is what the
/// rules do (`⏎` stands for a line break), and the table names every rule.
#[test]
fn the_redaction_page_shows_what_the_rules_do() {
    use agent_logship::redaction::Redactor;
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/agent-logship-redaction.md"))
            .expect("the page");
    let redactor = Redactor::new(Vec::new());
    let mut rules = Vec::new();
    let mut examples = 0;
    for row in page.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let [rule, _, before, after] = cells[..] else { continue };
        rules.push(rule.trim_start_matches("| ").trim_matches('`').to_owned());
        // Several examples in a cell: `a`, `b`; a multi-line one: `line`⏎`line`.
        let examples_of = |cell: &str| -> Vec<String> {
            cell.trim_end_matches(" |")
                .split("`, `")
                .map(|e| e.trim_matches('`').replace("`⏎`", "\n"))
                .filter(|e| !e.is_empty())
                .collect()
        };
        let (before, after) = (examples_of(before), examples_of(after));
        assert_eq!(before.len(), after.len(), "{row}");
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(redactor.text(b).as_deref(), Some(a.as_str()), "{rule}: {b:?}");
            examples += 1;
        }
    }
    let names: Vec<String> = redactor.counts().into_iter().map(|(name, _)| name).collect();
    assert_eq!(rules[..names.len()], names[..], "the table names every rule, in order");
    assert!(examples >= 10, "{examples} examples read");
}
