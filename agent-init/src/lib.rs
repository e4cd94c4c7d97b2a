//! agent-init: renders a Calypso server's configuration files from templates, env values and
//! mounted Secrets into the shared volume, escaped for the file's reader (java.util.Properties,
//! XML), all or nothing.

pub mod config;
pub mod output;
pub mod placeholder;
pub mod problem;
pub mod render;
pub mod report;
pub mod run;
pub mod secret_vars;
pub mod sources;
pub mod stop;
pub mod template;
pub mod watch;

pub use config::{Cli, Config};
