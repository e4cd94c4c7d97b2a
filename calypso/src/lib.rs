//! What the Calypso pod agents need to know about Calypso, with no IO: the health report model
//! and its tolerant parser, and the component topology (who starts after whom).

pub mod health;
pub mod parse;
pub mod properties;
pub mod state;
pub mod topology;

pub use health::{HealthNode, HealthReport};
pub use parse::{MAX_BODY_BYTES, ParseError, parse_response};
pub use state::State;
pub use topology::{Component, UnknownComponent};
