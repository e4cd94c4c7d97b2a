//! Sensor patterns (`AGENT_HEALTH_READINESS_IGNORE`, `AGENT_HEALTH_LIVENESS_SENSORS`): globs
//! over a sensor's path `SubSystem/Sensor`, `*` matching any run of characters (`/` included),
//! letter case ignored. `TransferEngine/*`, `*/UnconsumedEvents`, `Calypso/DataServerConnection`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As written, for messages.
    text: String,
    lower: String,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        let text = text.trim().to_string();
        Pattern { lower: text.to_ascii_lowercase(), text }
    }

    pub fn matches(&self, path: &str) -> bool {
        glob(self.lower.as_bytes(), path.to_ascii_lowercase().as_bytes())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `*`-only glob, iterative with one backtrack point (linear enough for sensor paths).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
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
