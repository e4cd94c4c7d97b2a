//! Logging for every agent: `tracing` to stderr, filtered by `AGENT_LOG` (a level, or
//! `target=level` pairs: `warn,agent_wait=debug`; default `info`), as text or as ECS-friendly
//! JSON (`AGENT_LOG_FORMAT=json`). The filter is tracing-subscriber's `Targets`, not `EnvFilter`:
//! the same syntax for what the agents log, without the regex engine `EnvFilter` links in for
//! span and field filters nobody needs here.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Problem;

pub const LOG_ENV: &str = "AGENT_LOG";
pub const FORMAT_ENV: &str = "AGENT_LOG_FORMAT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Validated logging settings.
#[derive(Debug)]
pub struct Logging {
    filter: Targets,
    format: Format,
}

impl Default for Logging {
    /// `info`, as text: what an agent uses when its logging settings are themselves bad.
    fn default() -> Self {
        Logging { filter: info(), format: Format::Text }
    }
}

impl Logging {
    /// Reads `AGENT_LOG` and `AGENT_LOG_FORMAT` from the given variables; every bad value is a
    /// problem of its own so the caller can report it with the rest of the configuration.
    pub fn from_vars<'a>(
        vars: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<Self, Vec<Problem>> {
        let get = |name: &str| vars.clone().find(|(k, _)| *k == name).map(|(_, v)| v);
        let mut problems = Vec::new();
        let filter = match get(LOG_ENV).filter(|v| !v.is_empty()) {
            None => Some(info()),
            Some(v) => v
                .parse::<Targets>()
                .map_err(|e| problems.push(Problem::new(LOG_ENV, v, format!("not a log filter: {e}"))))
                .ok(),
        };
        let format = match get(FORMAT_ENV).unwrap_or("text") {
            f if f.eq_ignore_ascii_case("text") || f.is_empty() => Some(Format::Text),
            f if f.eq_ignore_ascii_case("json") => Some(Format::Json),
            f => {
                problems.push(Problem::new(FORMAT_ENV, f, "must be `text` or `json`"));
                None
            }
        };
        match (filter, format) {
            (Some(filter), Some(format)) if problems.is_empty() => Ok(Logging { filter, format }),
            _ => Err(problems),
        }
    }

    /// Installs the global subscriber. Called once, first thing, by each binary.
    pub fn init(self) {
        // The builder's own level (INFO unless set) would filter before the targets do.
        let builder = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_writer(std::io::stderr);
        // A second init (tests) is harmless: the first subscriber stays.
        let _ = match self.format {
            Format::Text => builder
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false)
                .finish()
                .with(self.filter)
                .try_init(),
            Format::Json => builder.event_format(EcsJson).finish().with(self.filter).try_init(),
        };
    }
}

/// One JSON object per line with the ECS field names log shippers index without mapping:
/// `@timestamp`, `log.level`, `log.logger`, `message`, then the event's own fields.
struct EcsJson;

impl<S, N> FormatEvent<S, N> for EcsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut obj = Map::new();
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        obj.insert("@timestamp".into(), Value::String(now));
        obj.insert("log.level".into(), Value::String(meta.level().as_str().to_ascii_lowercase()));
        obj.insert("log.logger".into(), Value::String(meta.target().to_string()));
        event.record(&mut JsonVisitor(&mut obj));
        let line = serde_json::to_string(&Value::Object(obj)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

/// Everything at `info` and above.
fn info() -> Targets {
    Targets::new().with_default(tracing::Level::INFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let l = Logging::from_vars(std::iter::empty()).expect("defaults are valid");
        assert_eq!(l.format, Format::Text);
    }

    #[test]
    fn every_bad_value_reported() {
        let vars = [("AGENT_LOG", "info,agent_wait=loud"), ("AGENT_LOG_FORMAT", "xml")];
        let problems = Logging::from_vars(vars.iter().copied()).expect_err("both bad");
        let names: Vec<_> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["AGENT_LOG", "AGENT_LOG_FORMAT"]);
    }
}
