//! `es-sim`: the Elasticsearch / OpenSearch test double as a process, for process tests, the
//! demo and the benchmark. Thin: parse the flags, start [`EsSim`], print the address, wait for
//! `POST /_sim/exit` or a signal.

use calypso_testkit::es_sim::sigv4::SigV4Key;
use calypso_testkit::es_sim::{Auth, EsOptions, EsSim, Faults, Flavour};
use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "es-sim",
    version,
    about = "A test double of Elasticsearch / OpenSearch for log shippers (_bulk, data streams, templates, faults).",
    long_about = "A test double of Elasticsearch / OpenSearch for log shippers: _bulk with its NDJSON \
rules, create/index and _id conflicts, data streams, a minimal dynamic mapping, gzip, 413 over a size \
limit, basic/API-key auth, index templates, ILM (elasticsearch) / ISM (opensearch) policies, \
_count/_search/_doc read-back, and fault injection. Documents are kept in memory. See docs/es-sim.md.\n\n\
Output: one line on stdout when it listens, `es-sim listening on http://ADDR`; logs on stderr \
(AGENT_LOG, AGENT_LOG_FORMAT), never one per document.\n\n\
Exit status: 0 after POST /_sim/exit or the first SIGTERM or SIGINT; 64 on bad flags; 70 when the \
address cannot be bound.",
    after_long_help = include_str!("../es_sim/control-api.md")
)]
struct Cli {
    /// Address to bind; port 0 picks a free port (the stdout line tells which).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// elasticsearch (8.x, X-Elastic-Product header, built-in logs-*-* data streams, ILM) or
    /// opensearch (2.x, ISM, no built-in templates).
    #[arg(long, default_value = "elasticsearch")]
    flavour: Flavour,

    /// Bodies over this many bytes (sent or decompressed) are answered 413 "Request size exceeded".
    #[arg(long, default_value_t = calypso_testkit::es_sim::DEFAULT_MAX_CONTENT_LENGTH)]
    max_content_length: u64,

    /// Require basic auth: USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD", conflicts_with = "api_key")]
    basic_auth: Option<String>,

    /// Require `Authorization: ApiKey KEY`.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,

    /// Require AWS Signature Version 4 with this key, as Amazon OpenSearch Service does (403
    /// otherwise): ACCESS_KEY_ID:SECRET:REGION:SERVICE (service es or aoss).
    #[arg(long, value_name = "KEY_ID:SECRET:REGION:SERVICE", conflicts_with_all = ["basic_auth", "api_key"])]
    sigv4: Option<String>,

    /// No built-in data stream templates on the elasticsearch flavour.
    #[arg(long)]
    no_builtin_templates: bool,

    /// Refuse documents that name their own _id, as OpenSearch Serverless time-series and
    /// vector collections do (400 per item); ids are generated.
    #[arg(long)]
    server_ids_only: bool,

    /// Refuse every Nth bulk item with 429 (0: never).
    #[arg(long, default_value_t = 0)]
    item_429_every: u64,

    /// Refuse this share (0..1) of bulk items with 429 (seeded by --seed).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    item_429_share: f64,

    /// Answer the first N bulk requests 503.
    #[arg(long, default_value_t = 0)]
    fail_next: u64,

    /// Answer this share (0..1) of bulk requests 503 (seeded by --seed).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    fail_share: f64,

    /// Delay every request of the Elasticsearch API before handling it (humantime: 50ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    latency: Duration,

    /// Delay every answer of the Elasticsearch API after handling its request: what a bulk
    /// request stored is stored, the client learns it late (humantime: 5s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    answer_delay: Duration,

    /// Seed of the shares.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a share between 0 and 1".to_owned()),
    }
}

impl Cli {
    fn into_options(self) -> Result<EsOptions, String> {
        let auth = match (self.basic_auth, self.api_key) {
            _ if self.sigv4.is_some() => {
                let text = self.sigv4.unwrap_or_default();
                let parts: Vec<&str> = text.split(':').collect();
                let [id, secret, region, service] = parts.as_slice() else {
                    return Err("--sigv4: expected KEY_ID:SECRET:REGION:SERVICE".into());
                };
                Some(Auth::SigV4(SigV4Key {
                    access_key_id: (*id).to_owned(),
                    secret_access_key: (*secret).to_owned(),
                    region: (*region).to_owned(),
                    service: (*service).to_owned(),
                }))
            }
            (Some(pair), _) => {
                let (user, password) = pair.split_once(':').ok_or("--basic-auth: expected USER:PASSWORD")?;
                Some(Auth::Basic { user: user.to_owned(), password: password.to_owned() })
            }
            (None, Some(key)) => Some(Auth::ApiKey(key)),
            (None, None) => None,
        };
        Ok(EsOptions {
            listen: self.listen,
            flavour: self.flavour,
            max_content_length: self.max_content_length,
            auth,
            builtin_templates: !self.no_builtin_templates,
            server_ids_only: self.server_ids_only,
            faults: Faults {
                item_429_every: self.item_429_every,
                item_429_share: self.item_429_share,
                fail_next: self.fail_next,
                fail_share: self.fail_share,
                latency: self.latency,
                answer_delay: self.answer_delay,
                seed: self.seed,
            },
        })
    }
}

fn main() -> ExitCode {
    calypso_testkit::double::serve::<EsSim, Cli>(Cli::into_options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_options() {
        let cli = Cli::try_parse_from([
            "es-sim",
            "--flavour",
            "opensearch",
            "--basic-auth",
            "elastic:pa:ss",
            "--item-429-every",
            "5",
            "--latency",
            "20ms",
            "--max-content-length",
            "1000",
        ])
        .expect("valid flags");
        let opts = cli.into_options().expect("valid");
        assert_eq!(opts.flavour, Flavour::OpenSearch);
        assert_eq!(opts.auth, Some(Auth::Basic { user: "elastic".into(), password: "pa:ss".into() }));
        assert_eq!((opts.faults.item_429_every, opts.faults.latency), (5, Duration::from_millis(20)));
        assert_eq!(opts.max_content_length, 1000);
    }

    #[test]
    fn bad_flags_are_refused() {
        for args in [
            &["es-sim", "--flavour", "solr"][..],
            &["es-sim", "--item-429-share", "1.5"],
            &["es-sim", "--basic-auth", "a:b", "--api-key", "k"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["es-sim", "--basic-auth", "nopassword"]).expect("parses");
        assert!(cli.into_options().is_err());
    }
}
