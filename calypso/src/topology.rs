//! The Calypso component topology as data: which servers exist, whom each waits for, and the
//! resulting startup order ("Dataserver-first", docs/agent-wait.md).

use std::fmt;
use std::str::FromStr;

/// A kind of Calypso server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    EventServer,
    AuthServer,
    DataServer,
    EngineServer,
    RiskServer,
    CalculationServer,
    MarketDataServer,
    Scheduler,
    Dispatcher,
    QuoteServer,
    PresentationServer,
}

/// Other spellings accepted by [`Component::from_str`], normalised (lower case, no separators).
/// Kept minimal: only names Calypso itself uses for the same process. `authservice` is the name
/// of the AuthServer in Calypso's process catalogue. (`calculator` is deliberately absent: the
/// Calculators are the Dispatcher's workers, not the Dispatcher.)
const ALIASES: &[(&str, Component)] = &[("authservice", Component::AuthServer)];

impl Component {
    /// Every component, in startup order.
    pub const ALL: [Component; 11] = [
        Component::EventServer,
        Component::AuthServer,
        Component::DataServer,
        Component::EngineServer,
        Component::RiskServer,
        Component::CalculationServer,
        Component::MarketDataServer,
        Component::Scheduler,
        Component::Dispatcher,
        Component::QuoteServer,
        Component::PresentationServer,
    ];

    /// The name Calypso uses: `DataServer` (as in `com.calypso.apps.startup.StartDataServer`).
    pub fn name(self) -> &'static str {
        match self {
            Component::EventServer => "EventServer",
            Component::AuthServer => "AuthServer",
            Component::DataServer => "DataServer",
            Component::EngineServer => "EngineServer",
            Component::RiskServer => "RiskServer",
            Component::CalculationServer => "CalculationServer",
            Component::MarketDataServer => "MarketDataServer",
            Component::Scheduler => "Scheduler",
            Component::Dispatcher => "Dispatcher",
            Component::QuoteServer => "QuoteServer",
            Component::PresentationServer => "PresentationServer",
        }
    }

    /// The name in environment variable names: `DATASERVER`, as in
    /// `CALYPSO_DATASERVER_HEALTH_URL`.
    pub fn env_key(self) -> String {
        self.name().to_ascii_uppercase()
    }

    /// The components that must be healthy before this one starts: its DIRECT dependencies,
    /// per the table in docs/agent-wait.md.
    pub fn dependencies(self) -> &'static [Component] {
        use Component::*;
        match self {
            EventServer => &[],
            AuthServer => &[EventServer],
            DataServer => &[AuthServer],
            EngineServer | RiskServer | CalculationServer | MarketDataServer | Scheduler | Dispatcher
            | QuoteServer => &[DataServer],
            PresentationServer => &[CalculationServer],
        }
    }

    /// Every component in an order that starts each after all its dependencies. Stable: among
    /// components that could start at the same point, the order of [`Component::ALL`].
    pub fn startup_order() -> Vec<Component> {
        let mut order: Vec<Component> = Vec::with_capacity(Self::ALL.len());
        while order.len() < Self::ALL.len() {
            let ready = Self::ALL
                .into_iter()
                .find(|c| !order.contains(c) && c.dependencies().iter().all(|d| order.contains(d)));
            match ready {
                Some(c) => order.push(c),
                // Only a cycle in the static table could get here; a unit test rules it out.
                None => break,
            }
        }
        order
    }

    /// Everything this component waits for, directly or not, in startup order:
    /// PresentationServer -> EventServer, AuthServer, DataServer, CalculationServer.
    pub fn transitive_dependencies(self) -> Vec<Component> {
        let mut found: Vec<Component> = Vec::new();
        let mut todo: Vec<Component> = self.dependencies().to_vec();
        while let Some(c) = todo.pop() {
            if !found.contains(&c) {
                found.push(c);
                todo.extend_from_slice(c.dependencies());
            }
        }
        Self::startup_order().into_iter().filter(|c| found.contains(c)).collect()
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A word that names no Calypso component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Calypso component {word:?}: expected one of {}", Component::ALL.map(Component::name).join(", "))]
pub struct UnknownComponent {
    pub word: String,
}

impl FromStr for Component {
    type Err = UnknownComponent;

    /// Any letter case, ignoring `-`, `_`, `.` and spaces: `DataServer`, `dataserver`,
    /// `data-server`, `DATA_SERVER`; plus the aliases above (`AuthService`).
    fn from_str(word: &str) -> Result<Self, Self::Err> {
        let wanted = normalise(word);
        Self::ALL
            .into_iter()
            .find(|c| normalise(c.name()) == wanted)
            .or_else(|| ALIASES.iter().find(|(alias, _)| *alias == wanted).map(|(_, c)| *c))
            .ok_or_else(|| UnknownComponent { word: word.to_owned() })
    }
}

fn normalise(word: &str) -> String {
    word.chars().filter(|c| !matches!(c, '-' | '_' | '.' | ' ')).flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Component::*;

    fn parse(word: &str) -> Result<Component, UnknownComponent> {
        word.parse()
    }

    #[test]
    fn parses_spellings() {
        for word in ["dataserver", "DataServer", "data-server", "DATA_SERVER", " Data.Server ", "data server"]
        {
            assert_eq!(parse(word), Ok(DataServer), "{word}");
        }
        assert_eq!(parse("AuthService"), Ok(AuthServer));
        assert_eq!(parse("auth-service"), Ok(AuthServer));
        assert_eq!(parse("presentation_server"), Ok(PresentationServer));
        assert_eq!(parse("MARKET-DATA-SERVER"), Ok(MarketDataServer));
    }

    #[test]
    fn name_display_env_key_and_parse_agree() {
        for c in Component::ALL {
            assert_eq!(c.to_string(), c.name());
            assert_eq!(parse(c.name()), Ok(c));
            assert_eq!(parse(&c.env_key()), Ok(c));
        }
    }

    #[test]
    fn unknown_name_message() {
        let e = parse("Calculator").err();
        assert_eq!(e, Some(UnknownComponent { word: "Calculator".into() }));
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(
                "unknown Calypso component \"Calculator\": expected one of EventServer, AuthServer, DataServer, \
                 EngineServer, RiskServer, CalculationServer, MarketDataServer, Scheduler, Dispatcher, \
                 QuoteServer, PresentationServer"
            )
        );
        assert!(parse("").is_err());
        // Debug formatting keeps a hostile word on one line.
        assert!(!parse("a\nb").err().map(|e| e.to_string()).unwrap_or_default().contains('\n'));
    }

    #[test]
    fn dependency_table() {
        assert_eq!(EventServer.dependencies(), &[]);
        assert_eq!(AuthServer.dependencies(), &[EventServer]);
        assert_eq!(DataServer.dependencies(), &[AuthServer]);
        for c in [
            EngineServer,
            RiskServer,
            CalculationServer,
            MarketDataServer,
            Scheduler,
            Dispatcher,
            QuoteServer,
        ] {
            assert_eq!(c.dependencies(), &[DataServer], "{c}");
        }
        assert_eq!(PresentationServer.dependencies(), &[CalculationServer]);
    }

    #[test]
    fn startup_order_is_dataserver_first() {
        let order = Component::startup_order();
        assert_eq!(order.len(), Component::ALL.len(), "every component, so no cycle");
        let pos = |c: Component| order.iter().position(|&o| o == c);
        assert!(pos(EventServer) < pos(AuthServer));
        assert!(pos(AuthServer) < pos(DataServer));
        for c in Component::ALL.into_iter().filter(|c| !matches!(c, EventServer | AuthServer | DataServer)) {
            assert!(pos(DataServer) < pos(c), "{c}");
        }
        for c in Component::ALL {
            for d in c.dependencies() {
                assert!(pos(*d) < pos(c), "{d} before {c}");
            }
        }
        assert_eq!(order, Component::ALL, "ALL is documented as being in startup order");
    }

    #[test]
    fn transitive_dependencies() {
        assert_eq!(EventServer.transitive_dependencies(), []);
        assert_eq!(DataServer.transitive_dependencies(), [EventServer, AuthServer]);
        assert_eq!(Scheduler.transitive_dependencies(), [EventServer, AuthServer, DataServer]);
        assert_eq!(
            PresentationServer.transitive_dependencies(),
            [EventServer, AuthServer, DataServer, CalculationServer]
        );
    }
}
