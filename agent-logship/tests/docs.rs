//! docs/configuration.md lists exactly the settings agent-logship reads.

#[test]
fn configuration_doc_lists_exactly_the_settings() {
    calypso_testkit::docs::check_settings_table("agent-logship", &agent_logship::config::SETTINGS);
}
