//! Sensor patterns (`AGENT_HEALTH_READINESS_IGNORE`, `AGENT_HEALTH_LIVENESS_SENSORS`): globs
//! over a sensor's path `SubSystem/Sensor` ([`agent_core::glob`]: `*` any run of characters,
//! `/` included, `?` any one; letter case ignored). `TransferEngine/*`, `*/UnconsumedEvents`,
//! `Calypso/DataServerConnection`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As written, for messages.
    text: String,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        Pattern { text: text.trim().to_string() }
    }

    pub fn matches(&self, path: &str) -> bool {
        agent_core::glob::matches(&self.text, path)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| Pattern::new(p).matches(t);
        assert!(m("Calypso/DataServerConnection", "calypso/dataserverconnection"));
        assert!(m("TransferEngine/*", "TransferEngine/UnconsumedEvents"));
        assert!(m("*/UnconsumedEvents", "TaskEngine/UnconsumedEvents"));
        assert!(m("*Connection", "Calypso/EventServerConnection"));
        assert!(m("*", "anything/at/all"));
        assert!(!m("TransferEngine/*", "TaskEngine/EngineRunning"));
        assert!(!m("Calypso/X", "Calypso/XY"));
        assert!(m("a*b*c", "a-b-b-c"));
        assert!(!m("a*b*c", "a-b-b-d"));
        assert_eq!(Pattern::new(" Calypso/* ").to_string(), "Calypso/*", "shown as written");
    }
}
