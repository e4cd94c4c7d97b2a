//! `kube-sim`: the Kubernetes API double for core/v1 Events as a process, for process tests,
//! the demo and the benchmark. Thin: parse the flags, start [`KubeSim`], print the address, wait
//! for `POST /_sim/exit` or a signal.

use calypso_testkit::kube_sim::{Faults, Grant, KubeOptions, KubeSim, Timing};
use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "kube-sim",
    version,
    about = "A test double of the Kubernetes API server for core/v1 Events (list, watch, bookmarks, 410s, traps).",
    long_about = "A test double of the Kubernetes API server for core/v1 Events: LIST with limit/continue \
pagination, WATCH streaming ADDED/MODIFIED/DELETED/BOOKMARK/ERROR from a resourceVersion, timeoutSeconds, \
Status errors (400, 401, 403, 404, 410), compaction, the empty-200 watch trap, the event TTL, bearer token \
rotation, down/up and 503s. Plain HTTP. Events are kept in memory and made through the control API. See \
docs/kube-sim.md.\n\n\
Output: one line on stdout when it listens, `kube-sim listening on http://ADDR`; logs on stderr (AGENT_LOG, \
AGENT_LOG_FORMAT), never one per event.\n\n\
Exit status: 0 after POST /_sim/exit or the first SIGTERM or SIGINT; 64 on bad flags; 70 when the address \
cannot be bound.",
    after_long_help = include_str!("../kube_sim/control-api.md")
)]
struct Cli {
    /// Address to bind; port 0 picks a free port (the stdout line tells which).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// A valid bearer token, TOKEN or TOKEN@ns1,ns2 (only those namespaces; else all and the
    /// cluster scope). Repeatable; none: no authentication.
    #[arg(long = "token", value_name = "TOKEN[@NS,..]", value_parser = parse_grant)]
    tokens: Vec<Grant>,

    /// Delete events not written for this long, with a DELETED (like the API server's
    /// --event-ttl; default: never).
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,

    /// End every watch after this long, whatever timeoutSeconds asks.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
    watch_max: Duration,

    /// Send a BOOKMARK this often on watches that allow them.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    bookmark_interval: Duration,

    /// The first N watches answer 200 with an empty body at once (the Events trap).
    #[arg(long, default_value_t = 0)]
    empty_watches: u64,
}

fn parse_grant(s: &str) -> Result<Grant, String> {
    Grant::parse(s).map_err(|e| e.to_string())
}

impl Cli {
    fn into_options(self) -> Result<KubeOptions, String> {
        if self.watch_max.is_zero()
            || self.bookmark_interval.is_zero()
            || self.ttl.is_some_and(|t| t.is_zero())
        {
            return Err("--watch-max, --bookmark-interval and --ttl must be above zero".into());
        }
        Ok(KubeOptions {
            listen: self.listen,
            tokens: self.tokens,
            timing: Timing {
                bookmark_interval: self.bookmark_interval,
                watch_max: self.watch_max,
                ttl: self.ttl,
            },
            faults: Faults { empty_watches: self.empty_watches, unavailable: false },
        })
    }
}

fn main() -> ExitCode {
    calypso_testkit::double::serve::<KubeSim, Cli>(Cli::into_options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_options() {
        let cli = Cli::try_parse_from([
            "kube-sim",
            "--token",
            "a",
            "--token",
            "b@calypso,other",
            "--ttl",
            "2s",
            "--watch-max",
            "5s",
            "--bookmark-interval",
            "100ms",
            "--empty-watches",
            "3",
        ])
        .expect("valid flags");
        let opts = cli.into_options().expect("valid");
        assert_eq!(
            opts.tokens,
            [
                Grant::cluster("a"),
                Grant { token: "b".into(), namespaces: Some(vec!["calypso".into(), "other".into()]) }
            ]
        );
        assert_eq!(
            opts.timing,
            Timing {
                bookmark_interval: Duration::from_millis(100),
                watch_max: Duration::from_secs(5),
                ttl: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(opts.faults.empty_watches, 3);
    }

    #[test]
    fn bad_flags_are_refused() {
        for args in [
            &["kube-sim", "--ttl", "soon"][..],
            &["kube-sim", "--token", "a b"],
            &["kube-sim", "--listen", "nowhere"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["kube-sim", "--watch-max", "0s"]).expect("parses");
        assert!(cli.into_options().is_err());
    }
}
