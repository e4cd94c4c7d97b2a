//! The three health states every Calypso sensor, sub-system and server carries.

use std::fmt;

/// A health state. Ordered from best to worst so that "worst of" is simply `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Green,
    Amber,
    Red,
}

impl State {
    /// Every state, best first.
    pub const ALL: [State; 3] = [State::Green, State::Amber, State::Red];

    /// Reads a state word in any letter case, with the synonyms of docs/health-payloads.md:
    /// GREEN/OK/UP, AMBER/YELLOW/WARN/WARNING/UNKNOWN, RED/DOWN/OUT_OF_SERVICE/CRITICAL.
    pub fn parse(word: &str) -> Option<State> {
        const GREEN: &[&str] = &["GREEN", "OK", "UP"];
        const AMBER: &[&str] = &["AMBER", "YELLOW", "WARN", "WARNING", "UNKNOWN"];
        const RED: &[&str] = &["RED", "DOWN", "OUT_OF_SERVICE", "CRITICAL"];
        let word = word.trim();
        let is = |set: &[&str]| set.iter().any(|s| s.eq_ignore_ascii_case(word));
        if is(GREEN) {
            Some(State::Green)
        } else if is(AMBER) {
            Some(State::Amber)
        } else if is(RED) {
            Some(State::Red)
        } else {
            None
        }
    }

    /// The canonical Calypso spelling: `GREEN`, `AMBER` or `RED`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Green => "GREEN",
            State::Amber => "AMBER",
            State::Red => "RED",
        }
    }

    /// The worst of some states, or `None` when there are none.
    pub fn worst(states: impl IntoIterator<Item = State>) -> Option<State> {
        states.into_iter().max()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_in_any_case() {
        for (w, s) in [
            ("green", State::Green),
            ("Ok", State::Green),
            ("UP", State::Green),
            ("amber", State::Amber),
            ("yellow", State::Amber),
            ("Warn", State::Amber),
            ("WARNING", State::Amber),
            ("unknown", State::Amber),
            ("red", State::Red),
            ("down", State::Red),
            ("out_of_service", State::Red),
            ("Critical", State::Red),
        ] {
            assert_eq!(State::parse(w), Some(s), "{w}");
        }
        assert_eq!(State::parse("purple"), None);
        assert_eq!(State::parse(""), None);
    }

    #[test]
    fn worst_is_max() {
        assert_eq!(State::worst([State::Green, State::Red, State::Amber]), Some(State::Red));
        assert_eq!(State::worst([]), None);
    }
}
