//! docs/configuration.md lists exactly the settings every agent reads (agent-core's common ones;
//! each agent checks its own table in its crate).

#[test]
fn configuration_doc_lists_exactly_the_common_settings() {
    calypso_testkit::docs::check_settings_table("common", &agent_core::settings::COMMON);
}
