//! agent-logship's settings: flags overlaid on `AGENT_LOGSHIP_*` variables, validated at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_core::config::{Problem, split_list};
use agent_core::listen::Listen;
use agent_core::settings::{Meta, Reader, Settings, Spec, parse};
use clap::{Args, Parser, Subcommand};
use url::Url;

use jiff::tz::TimeZone;

use crate::encode::{EncodeContext, Target};
use crate::files::StartAt;
use crate::framing::{Format, RecordStart};
use crate::parse::parse_time_zone;
use crate::sink::DocumentIds;
use crate::sink::client::{Auth, ClientOptions};
use crate::sink::proxy::{self, NoProxy, ProxyAuth, ProxyOptions};
use crate::sink::sigv4::Service;
use crate::sink::tls::{ClientCert, TlsFiles};

mod aws;

pub const PATHS: Spec<Vec<String>> = Spec::new(
    "paths",
    "AGENT_LOGSHIP_PATHS",
    "Log files to ship: globs, comma separated (`*`, `?`); rotated names may match too",
    globs,
)
.value_name("GLOBS")
.default("/var/log/calypso/*.log");
pub const EXCLUDE: Spec<Vec<String>> =
    Spec::new("exclude", "AGENT_LOGSHIP_EXCLUDE", "Globs of files never to ship, e.g. *.gz", globs)
        .value_name("GLOBS");
pub const START_AT: Spec<StartAt> = Spec::new(
    "start-at",
    "AGENT_LOGSHIP_START_AT",
    "Where to start in files present at the first start (no checkpoint yet); files that appear \
     later are always read from their beginning",
    |s| match s.trim().to_ascii_lowercase().as_str() {
        "beginning" => Ok(StartAt::Beginning),
        "end" => Ok(StartAt::End),
        _ => Err("must be beginning or end".into()),
    },
)
.value_name("beginning|end")
.default("beginning");
pub const FORMAT: Spec<Format> = Spec::new(
    "format",
    "AGENT_LOGSHIP_FORMAT",
    "log4j: Calypso's `yyyy-MM-dd HH:mm:ss,SSS LEVEL [thread] [Category] message` with stack \
     traces; json: one JSON object per line (log4j2 EcsLayout); cri: container runtime files \
     under /var/log/containers",
    |s| match s.trim().to_ascii_lowercase().as_str() {
        "log4j" => Ok(Format::Log4j),
        "json" => Ok(Format::Json),
        "cri" => Ok(Format::Cri),
        _ => Err("must be log4j, json or cri".into()),
    },
)
.value_name("log4j|json|cri")
.default("log4j");
pub const RECORD_START: Spec<RecordStart> = Spec::new(
    "record-start",
    "AGENT_LOGSHIP_RECORD_START",
    "A regular expression matching the first line of a record; other lines continue it \
     (default: the Calypso timestamp at the start of the line)",
    |s| RecordStart::regex(s).map_err(|e| e.to_string()),
)
.value_name("REGEX");
pub const FLUSH_TIMEOUT: Spec<Duration> = Spec::new(
    "flush-timeout",
    "AGENT_LOGSHIP_FLUSH_TIMEOUT",
    "Ship the last record after this long without a following line",
    bounded_duration,
)
.value_name("DURATION")
.default("2s");
pub const MAX_RECORD_BYTES: Spec<u64> = Spec::new(
    "max-record-bytes",
    "AGENT_LOGSHIP_MAX_RECORD_BYTES",
    "Longer records are cut into pieces of this size and flagged, never dropped",
    bytes,
)
.value_name("BYTES")
.default("1MiB");
pub const REDACT: Spec<bool> = Spec::new(
    "redact",
    "AGENT_LOGSHIP_REDACT",
    "Mask credentials in everything stored (URL user info, JDBC/ODBC passwords, values of keys \
     naming a secret, Authorization headers, JWTs, PEM private keys) with `<redacted>`, and tag the \
     document `redacted`; false ships the text as it is",
    parse::boolean,
)
.value_name("true|false")
.default("true");
pub const REDACT_PATTERNS: Spec<Vec<regex_lite::Regex>> = Spec::new(
    "redact-patterns",
    "AGENT_LOGSHIP_REDACT_PATTERNS",
    "More to mask: regular expressions, one per line (blank lines and lines starting with # \
     skipped, each line trimmed); the first capture group is masked if the pattern has one, else \
     the whole match. At most 32, each compiled to at most about 4 KB (a `{1000}` repetition is \
     refused: it would cost seconds per MiB of log)",
    patterns,
)
.value_name("REGEXES");
pub const TIMEZONE: Spec<TimeZone> = Spec::new(
    "timezone",
    "AGENT_LOGSHIP_TIMEZONE",
    "Time zone of the log's timestamps: UTC, an offset like +01:00, or a name like Europe/London",
    |s| parse_time_zone(s).map_err(|e| e.to_string()),
)
.value_name("ZONE")
.default("UTC");
pub const COMPONENT: Spec<String> = Spec::new(
    "component",
    "AGENT_LOGSHIP_COMPONENT",
    "The Calypso server whose logs these are (service.name, event.dataset calypso.<component>), \
     e.g. dataserver",
    name,
)
.value_name("NAME")
.default("calypso");
pub const ENVIRONMENT: Spec<String> = Spec::new(
    "environment",
    "AGENT_LOGSHIP_ENVIRONMENT",
    "The Calypso environment name (calypso.environment), e.g. uat",
    parse::text,
)
.value_name("ENV");
pub const INDEX: Spec<String> = Spec::new(
    "index",
    "AGENT_LOGSHIP_INDEX",
    "Write to this index or data stream instead of logs-calypso.<component>-<namespace>",
    name,
)
.value_name("NAME");
pub const NAMESPACE: Spec<String> = Spec::env_only(
    "AGENT_LOGSHIP_NAMESPACE",
    "The pod's namespace (Downward API metadata.namespace): kubernetes.namespace, data stream namespace",
    parse::text,
);
pub const POD_NAME: Spec<String> = Spec::env_only(
    "AGENT_LOGSHIP_POD_NAME",
    "The pod's name (Downward API metadata.name): kubernetes.pod.name, part of every _id",
    parse::text,
);
pub const NODE_NAME: Spec<String> =
    Spec::env_only("AGENT_LOGSHIP_NODE_NAME", "The node (Downward API spec.nodeName)", parse::text);
pub const CONTAINER_NAME: Spec<String> = Spec::env_only(
    "AGENT_LOGSHIP_CONTAINER_NAME",
    "The Calypso container whose logs these are: kubernetes.container.name, part of every _id",
    parse::text,
);
pub const ES_URL: Spec<Vec<Url>> = Spec::new(
    "es-url",
    "AGENT_LOGSHIP_ES_URL",
    "Elasticsearch/OpenSearch URLs, comma separated, tried in turn; unset: documents on stdout",
    urls,
)
.value_name("URLS")
.url();
pub const CA_FILE: Spec<PathBuf> = Spec::new(
    "ca-file",
    "AGENT_LOGSHIP_CA_FILE",
    "PEM certificates trusted for https:// besides the system roots; read before each request, so \
     a rotated CA needs no restart, and while the file does not exist (a Secret not created yet) \
     the data waits",
    path,
)
.value_name("PATH");
pub const CLIENT_CERT_FILE: Spec<PathBuf> = Spec::new(
    "client-cert-file",
    "AGENT_LOGSHIP_CLIENT_CERT_FILE",
    "PEM client certificate (then any intermediates) presented to Elasticsearch when it asks for \
     one (mutual TLS; with AGENT_LOGSHIP_CLIENT_KEY_FILE); read before each request, so a renewed \
     certificate needs no restart",
    path,
)
.value_name("PATH");
pub const CLIENT_KEY_FILE: Spec<PathBuf> = Spec::new(
    "client-key-file",
    "AGENT_LOGSHIP_CLIENT_KEY_FILE",
    "PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1; a mounted Secret); an \
     unusable pair is warned about once and the last usable one stays in use",
    path,
)
.value_name("PATH");
pub const ES_PROXY: Spec<Url> = Spec::new(
    "es-proxy",
    "AGENT_LOGSHIP_ES_PROXY",
    "HTTP proxy to reach Elasticsearch through (http://host:port; a tunnel by CONNECT for https:// \
     URLs); for the Elasticsearch sink only, every URL of AGENT_LOGSHIP_ES_URL",
    proxy::parse_proxy,
)
.value_name("URL")
.url();
pub const ES_PROXY_FROM_ENV: Spec<bool> = Spec::new(
    "es-proxy-from-env",
    "AGENT_LOGSHIP_ES_PROXY_FROM_ENV",
    "Take the Elasticsearch sink's proxy from HTTPS_PROXY / HTTP_PROXY with NO_PROXY (upper or \
     lower case), as curl does; off: those variables are ignored (health checks and the \
     Kubernetes API never use a proxy)",
    parse::boolean,
)
.value_name("true|false")
.default("false");
pub const ES_PROXY_USERNAME_FILE: Spec<PathBuf> = Spec::new(
    "es-proxy-username-file",
    "AGENT_LOGSHIP_ES_PROXY_USERNAME_FILE",
    "File holding the proxy's basic-auth user (a mounted Secret; re-read before each request)",
    path,
)
.value_name("PATH");
pub const ES_PROXY_PASSWORD_FILE: Spec<PathBuf> = Spec::new(
    "es-proxy-password-file",
    "AGENT_LOGSHIP_ES_PROXY_PASSWORD_FILE",
    "File holding the proxy's basic-auth password (a mounted Secret; re-read before each request)",
    path,
)
.value_name("PATH");
pub const AWS_SIGV4: Spec<Service> = Spec::new(
    "aws-sigv4",
    "AGENT_LOGSHIP_AWS_SIGV4",
    "Sign every request with AWS Signature Version 4: es (Amazon OpenSearch Service) or aoss \
     (OpenSearch Serverless); instead of basic auth or an API key",
    Service::parse,
)
.value_name("es|aoss");
pub const AWS_REGION: Spec<String> = Spec::new(
    "aws-region",
    "AGENT_LOGSHIP_AWS_REGION",
    "The AWS region the requests are signed for; default AWS_REGION, else AWS_DEFAULT_REGION",
    parse::text,
)
.value_name("REGION");
pub const AWS_ACCESS_KEY_ID_FILE: Spec<PathBuf> = Spec::new(
    "aws-access-key-id-file",
    "AGENT_LOGSHIP_AWS_ACCESS_KEY_ID_FILE",
    "File holding the AWS access key id (a mounted Secret, read before each request); without \
     it, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)",
    path,
)
.value_name("PATH");
pub const AWS_SECRET_ACCESS_KEY_FILE: Spec<PathBuf> = Spec::new(
    "aws-secret-access-key-file",
    "AGENT_LOGSHIP_AWS_SECRET_ACCESS_KEY_FILE",
    "File holding the AWS secret access key (with AGENT_LOGSHIP_AWS_ACCESS_KEY_ID_FILE)",
    path,
)
.value_name("PATH");
pub const AWS_SESSION_TOKEN_FILE: Spec<PathBuf> = Spec::new(
    "aws-session-token-file",
    "AGENT_LOGSHIP_AWS_SESSION_TOKEN_FILE",
    "File holding the AWS session token of temporary credentials (optional)",
    path,
)
.value_name("PATH");
pub const AWS_STS_URL: Spec<Url> = Spec::new(
    "aws-sts-url",
    "AGENT_LOGSHIP_AWS_STS_URL",
    "Where the pod's web identity (IRSA: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) is exchanged \
     for credentials (https://, or http:// to loopback); default AWS_ENDPOINT_URL_STS, else \
     AWS_ENDPOINT_URL, else the pod's region's STS, https://sts.REGION.amazonaws.com/ (sts-fips \
     with AWS_USE_FIPS_ENDPOINT=true)",
    url,
)
.value_name("URL");
pub const USERNAME_FILE: Spec<PathBuf> = Spec::new(
    "username-file",
    "AGENT_LOGSHIP_USERNAME_FILE",
    "File holding the basic-auth user (a mounted Secret; re-read when it changes)",
    path,
)
.value_name("PATH");
pub const PASSWORD_FILE: Spec<PathBuf> = Spec::new(
    "password-file",
    "AGENT_LOGSHIP_PASSWORD_FILE",
    "File holding the basic-auth password (a mounted Secret; re-read when it changes)",
    path,
)
.value_name("PATH");
pub const API_KEY_FILE: Spec<PathBuf> = Spec::new(
    "api-key-file",
    "AGENT_LOGSHIP_API_KEY_FILE",
    "File holding an API key, sent as `Authorization: ApiKey` (instead of basic auth)",
    path,
)
.value_name("PATH");
pub const GZIP: Spec<bool> =
    Spec::new("gzip", "AGENT_LOGSHIP_GZIP", "Compress _bulk requests", parse::boolean)
        .value_name("true|false")
        .default("true");
pub const ES_DOCUMENT_IDS: Spec<DocumentIds> = Spec::new(
    "es-document-ids",
    "AGENT_LOGSHIP_ES_DOCUMENT_IDS",
    "Who names the documents: agent (made from the record, so none is stored twice) or server \
     (for OpenSearch Serverless time-series and vector collections, which refuse ours; the \
     record's id goes into agent_logship.id, and a record sent again - after a lost answer, a \
     restart before its checkpoint, by a second Events replica - is stored again)",
    DocumentIds::parse,
)
.value_name("agent|server")
.default("agent");
pub const BATCH_DOCS: Spec<u32> =
    Spec::new("batch-docs", "AGENT_LOGSHIP_BATCH_DOCS", "Most documents in one _bulk request", parse::count)
        .value_name("N")
        .default("2000");
pub const BATCH_BYTES: Spec<u64> = Spec::new(
    "batch-bytes",
    "AGENT_LOGSHIP_BATCH_BYTES",
    "Most bytes in one _bulk request (before gzip)",
    bytes,
)
.value_name("BYTES")
.default("5MiB");
pub const BATCH_AGE: Spec<Duration> = Spec::new(
    "batch-age",
    "AGENT_LOGSHIP_BATCH_AGE",
    "Send a batch at the latest this long after its first document",
    bounded_duration,
)
.value_name("DURATION")
.default("1s");
pub const REQUEST_TIMEOUT: Spec<Duration> = Spec::new(
    "request-timeout",
    "AGENT_LOGSHIP_REQUEST_TIMEOUT",
    "One _bulk request's deadline (then it is retried)",
    bounded_duration,
)
.value_name("DURATION")
.default("30s");
pub const MAX_INFLIGHT_BYTES: Spec<u64> = Spec::new(
    "max-inflight-bytes",
    "AGENT_LOGSHIP_MAX_INFLIGHT_BYTES",
    "Log bytes read but not yet acknowledged; when reached, reading pauses (memory stays bounded \
     however long Elasticsearch is away). The records waiting for their next line, in all files, \
     are held to it too: past it they are shipped early",
    bytes,
)
.value_name("BYTES")
.default("8MiB");
pub const DATA_DIR: Spec<PathBuf> = Spec::new(
    "data-dir",
    "AGENT_LOGSHIP_DATA_DIR",
    "Writable directory for checkpoints and the last-resort dead-letter file; keep it across restarts \
     (an emptyDir of the pod)",
    path,
)
.value_name("PATH")
.default("/var/lib/agent-logship");
pub const DEAD_LETTER_MAX_BYTES: Spec<u64> = Spec::new(
    "dead-letter-max-bytes",
    "AGENT_LOGSHIP_DEAD_LETTER_MAX_BYTES",
    "Largest the dead-letter file (dead letters the dead-letter data stream refused too) grows; then it becomes dead-letter.ndjson.1 and the previous .1 \
     is deleted, its documents counted and logged (the data directory stays bounded: a full \
     emptyDir gets the pod evicted)",
    bytes,
)
.value_name("BYTES")
.default("16MiB");
pub const RESCAN_INTERVAL: Spec<Duration> = Spec::new(
    "rescan-interval",
    "AGENT_LOGSHIP_RESCAN_INTERVAL",
    "Look for new files this often besides inotify",
    bounded_duration,
)
.value_name("DURATION")
.default("10s");
pub const POLL_INTERVAL: Spec<Duration> = Spec::new(
    "poll-interval",
    "AGENT_LOGSHIP_POLL_INTERVAL",
    "Look at open files for new bytes this often when inotify said nothing",
    bounded_duration,
)
.value_name("DURATION")
.default("250ms");
pub const ROTATE_GRACE: Spec<Duration> = Spec::new(
    "rotate-grace",
    "AGENT_LOGSHIP_ROTATE_GRACE",
    "A file rotated away or deleted is let go once it gave no new bytes for this long",
    bounded_duration,
)
.value_name("DURATION")
.default("2s");
pub const FORGET_AFTER: Spec<Duration> = Spec::new(
    "forget-after",
    "AGENT_LOGSHIP_FORGET_AFTER",
    "Checkpoints of files not seen for this long are dropped",
    bounded_duration,
)
.value_name("DURATION")
.default("24h");
pub const LISTEN: Spec<Listen> = Spec::new(
    "listen",
    "AGENT_LOGSHIP_LISTEN",
    "Address to serve /livez, /readyz and /metrics on (IPv4 and IPv6 by default)",
    |s| s.parse::<Listen>().map_err(|e| e.to_string()),
)
.value_name("ADDR")
.default("[::]:8082");
pub const SHUTDOWN_GRACE: Spec<Duration> = Spec::new(
    "shutdown-grace",
    "AGENT_LOGSHIP_SHUTDOWN_GRACE",
    "After SIGTERM: stop reading, ship what was read and checkpoint within this (below the pod's \
     terminationGracePeriodSeconds)",
    bounded_duration,
)
.value_name("DURATION")
.default("20s");
pub const RETENTION: Spec<u32> = Spec::new(
    "retention-days",
    "AGENT_LOGSHIP_RETENTION_DAYS",
    "setup: also install a retention policy deleting data older than this many days (ILM on \
     Elasticsearch, ISM on OpenSearch; not on OpenSearch Serverless, where retention is the \
     collection's data lifecycle policy)",
    parse::count,
)
.value_name("DAYS");

pub const EVENTS: Spec<bool> = Spec::new(
    "events",
    "AGENT_LOGSHIP_EVENTS",
    "Also ship the Kubernetes Events of a namespace (or all): list, watch, spool, ship. Alone \
     (AGENT_LOGSHIP_PATHS unset) it reads no files",
    parse::boolean,
)
.value_name("true|false")
.default("false");
pub const EVENTS_NAMESPACE: Spec<String> = Spec::new(
    "events-namespace",
    "AGENT_LOGSHIP_EVENTS_NAMESPACE",
    "Whose Events: a namespace, or * for all (needs the ClusterRole in deploy/rbac); default: the \
     service account's namespace",
    events_namespace,
)
.value_name("NAMESPACE|*");
pub const KUBE_URL: Spec<Url> = Spec::new(
    "kube-url",
    "AGENT_LOGSHIP_KUBE_URL",
    "The Kubernetes API server; default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT \
     (set in every pod)",
    url,
)
.value_name("URL")
.url();
pub const KUBE_TOKEN_FILE: Spec<PathBuf> = Spec::new(
    "kube-token-file",
    "AGENT_LOGSHIP_KUBE_TOKEN_FILE",
    "The bearer token's file, read again for every request (projected tokens rotate); default: \
     the service account's, when the URL is the in-cluster one",
    path,
)
.value_name("PATH");
pub const KUBE_CA_FILE: Spec<PathBuf> = Spec::new(
    "kube-ca-file",
    "AGENT_LOGSHIP_KUBE_CA_FILE",
    "PEM certificates trusted for the API server; default: the service account's ca.crt, when \
     the URL is the in-cluster one",
    path,
)
.value_name("PATH");
pub const EVENTS_WATCH_TIMEOUT: Spec<Duration> = Spec::new(
    "events-watch-timeout",
    "AGENT_LOGSHIP_EVENTS_WATCH_TIMEOUT",
    "How long each watch asks the API server to run (timeoutSeconds); it is then resumed",
    bounded_duration,
)
.value_name("DURATION")
.default("5m");
pub const SPOOL_MAX_BYTES: Spec<u64> = Spec::new(
    "spool-max-bytes",
    "AGENT_LOGSHIP_SPOOL_MAX_BYTES",
    "Most bytes of Events kept on disk (in DATA_DIR) until Elasticsearch has them; when full, the \
     oldest are dropped, counted and logged",
    bytes,
)
.value_name("BYTES")
.default("256MiB");

pub static SETTINGS: Settings = Settings {
    prefix: "AGENT_LOGSHIP_",
    specs: &[
        &PATHS.meta,
        &EXCLUDE.meta,
        &START_AT.meta,
        &FORMAT.meta,
        &RECORD_START.meta,
        &FLUSH_TIMEOUT.meta,
        &MAX_RECORD_BYTES.meta,
        &REDACT.meta,
        &REDACT_PATTERNS.meta,
        &TIMEZONE.meta,
        &COMPONENT.meta,
        &ENVIRONMENT.meta,
        &INDEX.meta,
        &NAMESPACE.meta,
        &POD_NAME.meta,
        &NODE_NAME.meta,
        &CONTAINER_NAME.meta,
        &ES_URL.meta,
        &CA_FILE.meta,
        &CLIENT_CERT_FILE.meta,
        &CLIENT_KEY_FILE.meta,
        &ES_PROXY.meta,
        &ES_PROXY_FROM_ENV.meta,
        &ES_PROXY_USERNAME_FILE.meta,
        &ES_PROXY_PASSWORD_FILE.meta,
        &AWS_SIGV4.meta,
        &AWS_REGION.meta,
        &AWS_ACCESS_KEY_ID_FILE.meta,
        &AWS_SECRET_ACCESS_KEY_FILE.meta,
        &AWS_SESSION_TOKEN_FILE.meta,
        &AWS_STS_URL.meta,
        &USERNAME_FILE.meta,
        &PASSWORD_FILE.meta,
        &API_KEY_FILE.meta,
        &GZIP.meta,
        &ES_DOCUMENT_IDS.meta,
        &BATCH_DOCS.meta,
        &BATCH_BYTES.meta,
        &BATCH_AGE.meta,
        &REQUEST_TIMEOUT.meta,
        &MAX_INFLIGHT_BYTES.meta,
        &DATA_DIR.meta,
        &DEAD_LETTER_MAX_BYTES.meta,
        &RESCAN_INTERVAL.meta,
        &POLL_INTERVAL.meta,
        &ROTATE_GRACE.meta,
        &FORGET_AFTER.meta,
        &LISTEN.meta,
        &SHUTDOWN_GRACE.meta,
        &RETENTION.meta,
        &EVENTS.meta,
        &EVENTS_NAMESPACE.meta,
        &KUBE_URL.meta,
        &KUBE_TOKEN_FILE.meta,
        &KUBE_CA_FILE.meta,
        &EVENTS_WATCH_TIMEOUT.meta,
        &SPOOL_MAX_BYTES.meta,
    ],
};

/// Bounded so that sums of durations cannot overflow, and no setting is absurd.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

fn bounded_duration(text: &str) -> Result<Duration, String> {
    match parse::duration(text)? {
        d if d > MAX_DURATION => Err("must be at most 24h".into()),
        d => Ok(d),
    }
}

/// A size: a number of bytes with an optional unit `KiB`, `MiB`, `GiB` (or `k`, `M`, `G`,
/// also taken as binary units, as Kubernetes quantities `Ki`, `Mi`, `Gi`).
fn bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" | "kb" => 1 << 10,
        "m" | "mi" | "mib" | "mb" => 1 << 20,
        "g" | "gi" | "gib" | "gb" => 1 << 30,
        _ => return Err("not a size like 1048576, 512KiB, 5MiB or 1GiB".into()),
    };
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(scale)) {
        Some(n) if n > 0 => Ok(n),
        Some(_) => Err("must be more than zero".into()),
        None => Err("not a size like 1048576, 512KiB, 5MiB or 1GiB".into()),
    }
}

/// `AGENT_LOGSHIP_REDACT_PATTERNS`: one regular expression per line. A pattern that matches
/// the empty text would mask nothing anywhere (its empty matches are skipped): a mistake, said.
fn patterns(text: &str) -> Result<Vec<regex_lite::Regex>, String> {
    let lines = text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let mut patterns = Vec::new();
    for (i, line) in lines {
        // Matching takes time in proportion to the text times the pattern's compiled size: the
        // size is bounded, so that one pattern cannot make every record cost seconds.
        let p = regex_lite::RegexBuilder::new(line)
            .size_limit(crate::redaction::MAX_PATTERN_SIZE)
            .build()
            .map_err(|e| format!("line {}: {line}: {e}", i + 1))?;
        if p.is_match("") {
            return Err(format!("line {}: {line}: matches the empty text, so it would mask nothing", i + 1));
        }
        patterns.push(p);
    }
    match patterns.len() {
        0 => Err("no pattern given (one regular expression per line)".into()),
        n if n > crate::redaction::MAX_PATTERNS => Err(format!(
            "{n} patterns: at most {} (each is a scan of every record)",
            crate::redaction::MAX_PATTERNS
        )),
        _ => Ok(patterns),
    }
}

fn globs(text: &str) -> Result<Vec<String>, String> {
    let globs: Vec<String> = split_list(text).map(str::to_string).collect();
    match globs.iter().find(|g| !g.starts_with('/')) {
        Some(g) => {
            Err(format!("{g}: must be an absolute path (the working directory of a container is arbitrary)"))
        }
        None => Ok(globs),
    }
}

fn urls(text: &str) -> Result<Vec<Url>, String> {
    let mut urls = Vec::new();
    for item in split_list(text) {
        match Url::parse(item) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => urls.push(u),
            _ => {
                return Err(format!(
                    "{}: must be an http:// or https:// URL with a host",
                    agent_core::redact::url(item)
                ));
            }
        }
    }
    if urls.is_empty() { Err("no URL given".into()) } else { Ok(urls) }
}

/// The Elasticsearch sink's proxy: the setting, or the standard variables when asked to, with its
/// credential files.
fn es_proxy(read: &mut Reader, urls: &[Url]) -> Option<ProxyOptions> {
    let auth = match (read.opt(&ES_PROXY_USERNAME_FILE), read.opt(&ES_PROXY_PASSWORD_FILE)) {
        (Some(username_file), Some(password_file)) => Some(ProxyAuth { username_file, password_file }),
        (None, None) => None,
        (Some(_), None) => {
            read.push(read.problem(
                &ES_PROXY_PASSWORD_FILE,
                "missing: the proxy's credentials need a password file too",
            ));
            None
        }
        (None, Some(_)) => {
            read.push(read.problem(
                &ES_PROXY_USERNAME_FILE,
                "missing: the proxy's credentials need a username file too",
            ));
            None
        }
    };
    let proxy = match (read.opt(&ES_PROXY), read.get(&ES_PROXY_FROM_ENV)) {
        (Some(_), true) => {
            let why =
                "give AGENT_LOGSHIP_ES_PROXY, or take the proxy from HTTPS_PROXY and the like, not both";
            read.push(read.problem(&ES_PROXY_FROM_ENV, why));
            return None;
        }
        (Some(url), false) => Some(ProxyOptions {
            http: Some(url.clone()),
            https: Some(url),
            no_proxy: NoProxy::default(),
            auth: None,
        }),
        (None, true) => ProxyOptions::from_env(read.vars()).unwrap_or_else(|why| {
            read.push(Problem::without_value(ES_PROXY_FROM_ENV.meta.env, why));
            None
        }),
        (None, false) => None,
    };
    let Some(proxy) = proxy else {
        if auth.is_some() {
            read.push(
                read.problem(&ES_PROXY_USERNAME_FILE, "credentials for a proxy, but no proxy is configured"),
            );
        }
        return None;
    };
    let in_url = [&proxy.http, &proxy.https]
        .into_iter()
        .flatten()
        .any(|u| !u.username().is_empty() || u.password().is_some());
    if in_url && auth.is_some() {
        let why = "the proxy's URL holds credentials too: give them once (the files are read again when they change)";
        read.push(read.problem(&ES_PROXY_USERNAME_FILE, why));
    }
    let proxy = ProxyOptions { auth, ..proxy };
    // The HTTP client cannot open a tunnel to an IPv6 address (it takes the brackets for part of
    // the name): said now rather than found failing later.
    if let Some(url) = urls.iter().find(|u| {
        u.scheme() == "https" && matches!(u.host(), Some(url::Host::Ipv6(_))) && proxy.for_url(u).is_some()
    }) {
        let why = format!(
            "{} cannot go through the proxy (an https:// URL with an IPv6 address): use a host name, or reach it direct (NO_PROXY)",
            agent_core::redact::url(url.as_str())
        );
        read.push(Problem::without_value(ES_URL.meta.env, why));
    }
    Some(proxy)
}

fn url(text: &str) -> Result<Url, String> {
    match urls(text)?.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err("give one URL".into()),
    }
}

fn path(text: &str) -> Result<PathBuf, String> {
    match text.trim() {
        "" => Err("empty path".into()),
        t => Ok(PathBuf::from(t)),
    }
}

/// A name that becomes part of an index name: lowercase letters, digits, `-`, `_`, `.`.
fn name(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty".into());
    }
    if let Some(c) = t.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("{c:?} is not allowed in an index name (letters, digits, - _ . only)"));
    }
    Ok(t.to_ascii_lowercase())
}

const AFTER_HELP: &str = "\
PIPELINE:
  files (globs, inotify + rescan) -> records (multi-line stack traces whole) -> ECS documents with
  deterministic _ids -> _bulk create. Checkpoints advance only after Elasticsearch acknowledged
  everything before them; after a crash the overlap is re-sent and answered 409 (already stored).
  With --events: Kubernetes Events (list, then watch; relist on 410 and on empty watches) ->
  one document per occurrence, _id <event uid>.<count> -> an on-disk spool in the data dir ->
  _bulk create into logs-kubernetes.events-<namespace>. Two replicas store each occurrence once.

ENDPOINTS:
  GET /livez /readyz   200 ok or 503 with a reason     GET /metrics   Prometheus text 0.0.4

ENVIRONMENT:
  Every flag above has a variable, named after it; flags win.
  AGENT_DNS_SERVERS, AGENT_LOG, AGENT_LOG_FORMAT, AGENT_TERMINATION_LOG: see docs/configuration.md

EXIT CODES:
  0 stopped by SIGTERM/SIGINT after shipping what was read   64 bad configuration
  69 setup: Elasticsearch unreachable or refused   70 internal error
  143 a second signal during the graceful stop";

/// Ships Calypso log files to Elasticsearch / OpenSearch, nothing lost, nothing duplicated.
// The settings' flags are added from SETTINGS (agent_core::settings::parse_args).
#[derive(Debug, Parser, Default)]
#[command(name = "agent-logship", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Check the settings (and that the data directory, the Events namespace and the CA files
    /// are usable), then exit: 0 when shipping could start, 64 naming every problem. Reads no
    /// log and sends nothing. Without it, bad settings keep agent-logship up, shipping nothing.
    #[arg(long)]
    pub check: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install the index template for the data streams (and with --retention-days a retention
    /// policy) into Elasticsearch/OpenSearch, idempotently, then exit.
    Setup(SetupArgs),
}

#[derive(Debug, Args, Default)]
pub struct SetupArgs {}

/// Where documents go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// NDJSON on stdout (no URL configured).
    Stdout,
    Elasticsearch(Box<Elasticsearch>),
}

impl Output {
    /// Whether the cluster is an OpenSearch Serverless collection (requests signed for `aoss`).
    pub fn serverless(&self) -> bool {
        matches!(self, Output::Elasticsearch(es)
            if es.client.sigv4.as_ref().is_some_and(|s| s.signing.service == Service::Aoss))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elasticsearch {
    /// The URLs, TLS files, credentials and request timeout.
    pub client: ClientOptions,
    pub gzip: bool,
    pub ids: DocumentIds,
    pub dead_letter_max_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Origin {
    pub component: String,
    pub environment: Option<String>,
    pub index: Option<String>,
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub node_name: Option<String>,
    pub container_name: Option<String>,
    pub timezone: TimeZone,
}

/// The Kubernetes Events source's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub kube_url: Url,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// A namespace or `*`; `None`: the service account's (read at start).
    pub namespace: Option<String>,
    pub watch_timeout: Duration,
    pub spool_max_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Empty: no files are read (Events alone).
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub start_at: StartAt,
    pub format: Format,
    pub record_start: RecordStart,
    pub flush_timeout: Duration,
    pub max_record_bytes: u64,
    /// `AGENT_LOGSHIP_REDACT`: the extra patterns (none: the built-in rules alone); `None` when
    /// redaction is off.
    pub redact: Option<Vec<regex_lite::Regex>>,
    /// What the documents say about where they come from (`host_name` is filled in at start).
    pub origin: EncodeContext,
    pub output: Output,
    pub batch_docs: u32,
    pub batch_bytes: u64,
    pub batch_age: Duration,
    pub max_inflight_bytes: u64,
    pub data_dir: PathBuf,
    pub rescan_interval: Duration,
    pub poll_interval: Duration,
    pub rotate_grace: Duration,
    pub forget_after: Duration,
    pub listen: Listen,
    pub listen_setting: String,
    pub shutdown_grace: Duration,
    pub retention_days: Option<u32>,
    pub events: Option<EventsConfig>,
}

impl Config {
    pub fn from_parts(cli: Cli, read: Reader) -> Result<Config, Vec<Problem>> {
        Config::build(cli, read, &mut None)
    }

    /// [`Config::from_parts`], also giving the listen address when it is valid although other
    /// settings are not: a held agent serves `/metrics` there (see `run::hold`).
    pub fn build(
        _cli: Cli,
        mut read: Reader,
        listen_out: &mut Option<Listen>,
    ) -> Result<Config, Vec<Problem>> {
        let paths = read.get(&PATHS);
        let exclude = read.get(&EXCLUDE);
        let start_at = read.opt(&START_AT).unwrap_or(StartAt::Beginning);
        let format = read.opt(&FORMAT).unwrap_or(Format::Log4j);
        let record_start = read.opt(&RECORD_START).unwrap_or_default();
        let flush_timeout = read.get(&FLUSH_TIMEOUT);
        let max_record_bytes = read.get(&MAX_RECORD_BYTES);
        let redact = read.get(&REDACT);
        let patterns = read.opt(&REDACT_PATTERNS);
        if !redact && patterns.is_some() {
            read.push(read.problem(
                &REDACT_PATTERNS,
                "given, but AGENT_LOGSHIP_REDACT is false: nothing would be masked (unset one of them)",
            ));
        }
        let redact = redact.then(|| patterns.unwrap_or_default());
        let origin = EncodeContext {
            component: read.get(&COMPONENT),
            environment: read.opt(&ENVIRONMENT),
            namespace: read.opt(&NAMESPACE),
            pod_name: read.opt(&POD_NAME),
            node_name: read.opt(&NODE_NAME),
            container_name: read.opt(&CONTAINER_NAME),
            host_name: None,
            time_zone: read.opt(&TIMEZONE).unwrap_or(TimeZone::UTC),
            target: read.opt(&INDEX).map_or(Target::DataStream, Target::Index),
            format,
        };
        let urls = read.opt(&ES_URL);
        let ca_file = read.opt(&CA_FILE);
        let client_cert = match (read.opt(&CLIENT_CERT_FILE), read.opt(&CLIENT_KEY_FILE)) {
            (Some(cert_file), Some(key_file)) => Some(ClientCert { cert_file, key_file }),
            (None, None) => None,
            (Some(_), None) => {
                read.push(
                    read.problem(&CLIENT_KEY_FILE, "missing: a client certificate needs its key file too"),
                );
                None
            }
            (None, Some(_)) => {
                read.push(
                    read.problem(&CLIENT_CERT_FILE, "missing: a client key needs its certificate file too"),
                );
                None
            }
        };
        let tls = TlsFiles { ca_file, client_cert };
        let proxy = es_proxy(&mut read, urls.as_deref().unwrap_or_default());
        let sigv4 = aws::signing(&mut read);
        if let Some(sigv4) = &sigv4 {
            aws::check_urls(&mut read, sigv4, urls.as_deref().unwrap_or_default());
        }
        let (user, password, api_key) =
            (read.opt(&USERNAME_FILE), read.opt(&PASSWORD_FILE), read.opt(&API_KEY_FILE));
        let auth = match (user, password, api_key) {
            (None, None, None) => Auth::None,
            (Some(username_file), Some(password_file), None) => Auth::Basic { username_file, password_file },
            (None, None, Some(file)) => Auth::ApiKey { file },
            (_, _, Some(_)) => {
                read.push(
                    read.problem(
                        &API_KEY_FILE,
                        "give either an API key or a username and password, not both",
                    ),
                );
                Auth::None
            }
            (Some(_), None, None) => {
                read.push(read.problem(&PASSWORD_FILE, "missing: basic auth needs a password file too"));
                Auth::None
            }
            (None, Some(_), None) => {
                read.push(read.problem(&USERNAME_FILE, "missing: basic auth needs a username file too"));
                Auth::None
            }
        };
        let gzip = read.get(&GZIP);
        let ids = read.get(&ES_DOCUMENT_IDS);
        let request_timeout = read.get(&REQUEST_TIMEOUT);
        let dead_letter_max_bytes = read.get(&DEAD_LETTER_MAX_BYTES);
        let output = match urls {
            None => {
                if tls.any() || auth != Auth::None || proxy.is_some() || sigv4.is_some() {
                    read.push(read.problem(
                        &ES_URL,
                        "missing: a CA file, a client certificate, credentials, a proxy or signing were given but no URL",
                    ));
                }
                Output::Stdout
            }
            Some(urls) => Output::Elasticsearch(Box::new(Elasticsearch {
                client: ClientOptions { urls, tls, proxy, sigv4, auth, timeout: request_timeout },
                gzip,
                ids,
                dead_letter_max_bytes,
            })),
        };
        let batch_docs = read.get(&BATCH_DOCS);
        let batch_bytes = read.get(&BATCH_BYTES);
        let batch_age = read.get(&BATCH_AGE);
        let max_inflight_bytes = read.get(&MAX_INFLIGHT_BYTES);
        let data_dir = read.opt(&DATA_DIR).unwrap_or_default();
        let rescan_interval = read.get(&RESCAN_INTERVAL);
        let poll_interval = read.get(&POLL_INTERVAL);
        let rotate_grace = read.get(&ROTATE_GRACE);
        let forget_after = read.get(&FORGET_AFTER);
        let listen = read.opt(&LISTEN);
        *listen_out = listen;
        let listen_setting =
            read.setting(&LISTEN.meta).map_or_else(|| LISTEN.meta.env.to_string(), |s| s.name);
        let shutdown_grace = read.get(&SHUTDOWN_GRACE);
        let retention_days = read.opt(&RETENTION);
        if retention_days.is_some() && output.serverless() {
            read.push(read.problem(
                &RETENTION,
                "OpenSearch Serverless has no ISM: its retention is a data lifecycle policy on the \
                 collection (aws opensearchserverless create-lifecycle-policy)",
            ));
        }
        let events = events_config(&mut read);
        if let Output::Elasticsearch(es) = &output
            && es.ids == DocumentIds::Server
        {
            // Allowed (the operator may know better), but never silently: what our ids keep
            // from being stored twice is stored twice here.
            if !output.serverless() {
                tracing::warn!(
                    "AGENT_LOGSHIP_ES_DOCUMENT_IDS=server without AGENT_LOGSHIP_AWS_SIGV4=aoss: the cluster names \
                     the documents, so a record sent again (after a lost answer or a restart) is stored again"
                );
            }
            if events.is_some() {
                tracing::warn!(
                    "AGENT_LOGSHIP_ES_DOCUMENT_IDS=server with AGENT_LOGSHIP_EVENTS: every replica of the Events \
                     shipper stores every Event, and a restart stores the spool's again; run one replica"
                );
            }
        }
        // Events alone read no files unless paths are given.
        let paths = if events.is_some() && read.setting(&PATHS.meta).is_none() { Vec::new() } else { paths };
        let Some(listen) = listen else { return Err(read.into_problems()) };
        read.finish(Config {
            paths,
            exclude,
            start_at,
            format,
            record_start,
            flush_timeout,
            max_record_bytes,
            redact,
            origin,
            output,
            batch_docs,
            batch_bytes,
            batch_age,
            max_inflight_bytes,
            data_dir,
            rescan_interval,
            poll_interval,
            rotate_grace,
            forget_after,
            listen,
            listen_setting,
            shutdown_grace,
            retention_days,
            events,
        })
    }
}

/// The settings that mean something only with `AGENT_LOGSHIP_EVENTS=true`.
const EVENTS_ONLY: [&Meta; 6] = [
    &EVENTS_NAMESPACE.meta,
    &KUBE_URL.meta,
    &KUBE_TOKEN_FILE.meta,
    &KUBE_CA_FILE.meta,
    &EVENTS_WATCH_TIMEOUT.meta,
    &SPOOL_MAX_BYTES.meta,
];

/// The Events settings when `AGENT_LOGSHIP_EVENTS` is on (problems pushed to `read`); the
/// in-cluster defaults from the variables Kubernetes sets and the service account's files.
fn events_config(read: &mut Reader) -> Option<EventsConfig> {
    if !read.get(&EVENTS) {
        // A file shipper is a native sidecar: exiting on a setting that is not its own (one
        // put in the ConfigMap every pod reads) would keep Calypso from starting in every pod at
        // once. Said, and ignored unread.
        for meta in EVENTS_ONLY {
            if read.setting(meta).is_some() {
                tracing::warn!(
                    setting = meta.env,
                    "given, but AGENT_LOGSHIP_EVENTS is not true: ignored (a setting of the Events \
                     shipper; keep it out of the settings the log sidecars read)"
                );
            }
        }
        return None;
    }
    let namespace = read.opt(&EVENTS_NAMESPACE);
    let url = read.opt(&KUBE_URL);
    let token_file = read.opt(&KUBE_TOKEN_FILE);
    let ca_file = read.opt(&KUBE_CA_FILE);
    let watch_timeout = read.get(&EVENTS_WATCH_TIMEOUT);
    let spool_max_bytes = read.get(&SPOOL_MAX_BYTES);
    if watch_timeout < Duration::from_secs(1) {
        read.push(read.problem(&EVENTS_WATCH_TIMEOUT, "must be at least 1s (timeoutSeconds is in seconds)"));
    }
    let var =
        |name: &str| read.vars().iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let account = Path::new(crate::events::api::SERVICE_ACCOUNT_DIR);
    let kube_url = match url {
        Some(url) => url,
        None => match crate::events::api::in_cluster_url(
            &var("KUBERNETES_SERVICE_HOST"),
            &var("KUBERNETES_SERVICE_PORT"),
        ) {
            Some(url) => {
                // In the cluster: the service account's token and CA unless others are given.
                return Some(EventsConfig {
                    kube_url: url,
                    token_file: token_file.or_else(|| Some(account.join("token"))),
                    ca_file: ca_file.or_else(|| Some(account.join("ca.crt"))),
                    namespace,
                    watch_timeout,
                    spool_max_bytes,
                });
            }
            None => {
                read.push(Problem::without_value(
                    KUBE_URL.meta.env,
                    "missing: not in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set); give the API server's URL",
                ));
                return None;
            }
        },
    };
    Some(EventsConfig { kube_url, token_file, ca_file, namespace, watch_timeout, spool_max_bytes })
}

/// A namespace (a DNS label) or `*`.
fn events_namespace(text: &str) -> Result<String, String> {
    let t = text.trim();
    let label = !t.is_empty()
        && t.len() <= 63
        && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !t.starts_with('-')
        && !t.ends_with('-');
    if t == "*" || label {
        Ok(t.to_owned())
    } else {
        Err("must be a namespace name (a DNS label) or *".into())
    }
}

#[cfg(test)]
mod tests {
    use agent_core::config::vars_from as vars;

    use super::*;
    use crate::sink::sigv4::CredentialSource;

    fn config(args: &[&str], pairs: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        let (cli, read) = Reader::from_args::<Cli>(&SETTINGS, args, &vars(pairs)).expect("parses");
        Config::from_parts(cli, read)
    }

    fn problems(args: &[&str], pairs: &[(&str, &str)]) -> String {
        agent_core::config::Problems(config(args, pairs).expect_err("bad")).to_string()
    }

    #[test]
    fn defaults_ship_calypso_logs_to_stdout() {
        let c = config(&[], &[]).expect("defaults are valid");
        assert_eq!(c.paths, ["/var/log/calypso/*.log"]);
        assert_eq!(c.format, Format::Log4j);
        assert_eq!(c.output, Output::Stdout);
        assert_eq!(c.max_record_bytes, 1 << 20);
        assert_eq!(c.batch_bytes, 5 << 20);
        assert_eq!(c.batch_docs, 2000);
        assert_eq!(c.start_at, StartAt::Beginning);
        assert_eq!(c.listen.to_string(), "[::]:8082");
        assert_eq!(c.origin.component, "calypso");
    }

    #[test]
    fn redaction_is_on_by_default_and_its_patterns_are_checked() {
        assert_eq!(config(&[], &[]).expect("defaults").redact.map(|p| p.len()), Some(0));
        let c = config(
            &[],
            &[("AGENT_LOGSHIP_REDACT_PATTERNS", "# ours\n  acct=(\\d{6,})  \n\nSID-[0-9A-F]{32}\n")],
        )
        .expect("valid");
        let patterns: Vec<String> = c.redact.expect("on").iter().map(|p| p.as_str().to_owned()).collect();
        assert_eq!(patterns, [r"acct=(\d{6,})", "SID-[0-9A-F]{32}"], "trimmed, comments and blanks skipped");
        assert!(config(&[], &[("AGENT_LOGSHIP_REDACT", "false")]).expect("off").redact.is_none());
        for (patterns, says) in [
            ("a(", "line 1: a(:"),
            ("ok\n[a-z]{1000}X", "line 2: [a-z]{1000}X:"),
            ("x*", "line 1: x*: matches the empty text"),
            ("# nothing", "no pattern given"),
        ] {
            let text = problems(&[], &[("AGENT_LOGSHIP_REDACT_PATTERNS", patterns)]);
            assert!(
                text.contains("AGENT_LOGSHIP_REDACT_PATTERNS") && text.contains(says),
                "{patterns}: {text}"
            );
        }
        let many = (0..33).map(|i| format!("p{i}")).collect::<Vec<_>>().join("\n");
        assert!(
            problems(&[], &[("AGENT_LOGSHIP_REDACT_PATTERNS", &many)]).contains("33 patterns: at most 32")
        );
        let text =
            problems(&[], &[("AGENT_LOGSHIP_REDACT", "false"), ("AGENT_LOGSHIP_REDACT_PATTERNS", "x")]);
        assert!(text.contains("AGENT_LOGSHIP_REDACT is false"), "{text}");
    }

    #[test]
    fn elasticsearch_with_credentials_from_files() {
        let c = config(
            &["--es-url", "https://es-0:9200,https://es-1:9200"],
            &[
                ("AGENT_LOGSHIP_USERNAME_FILE", "/secrets/es/username"),
                ("AGENT_LOGSHIP_PASSWORD_FILE", "/secrets/es/password"),
                ("AGENT_LOGSHIP_GZIP", "false"),
            ],
        )
        .expect("valid");
        let Output::Elasticsearch(es) = c.output else { panic!("not elasticsearch") };
        assert_eq!(es.client.urls.len(), 2);
        assert!(!es.gzip);
        assert!(matches!(es.client.auth, Auth::Basic { .. }));
    }

    #[test]
    fn aws_credentials_come_as_the_sdks_take_them_and_bad_ones_are_named() {
        // The pairs given, and the defaults they do not name.
        let aws = |pairs: &[(&str, &str)]| {
            let defaults = [
                ("AGENT_LOGSHIP_ES_URL", "https://x.eu-west-1.es.amazonaws.com"),
                ("AGENT_LOGSHIP_AWS_SIGV4", "es"),
                ("AWS_REGION", "eu-west-1"),
            ];
            let mut all = pairs.to_vec();
            all.extend(defaults.into_iter().filter(|(k, _)| pairs.iter().all(|(given, _)| given != k)));
            config(&[], &all)
        };
        let source = |pairs: &[(&str, &str)]| {
            let Output::Elasticsearch(es) = aws(pairs).expect("valid").output else { panic!("es") };
            es.client.sigv4.expect("signs").credentials
        };
        let keys = [("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s3cr3t-Kx")];
        let irsa = [("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"), ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/t")];
        let pod_identity = [
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/p"),
        ];
        let files = [
            ("AGENT_LOGSHIP_AWS_ACCESS_KEY_ID_FILE", "/s/id"),
            ("AGENT_LOGSHIP_AWS_SECRET_ACCESS_KEY_FILE", "/s/secret"),
        ];
        // Our files first (they are asked for by name), then the SDKs' order.
        let everything = [&files[..], &keys, &irsa, &pod_identity].concat();
        assert!(matches!(source(&everything), CredentialSource::Files { .. }));
        assert!(matches!(source(&everything[2..]), CredentialSource::Environment(_)));
        assert!(matches!(source(&everything[4..]), CredentialSource::WebIdentity { .. }));
        assert!(matches!(source(&pod_identity), CredentialSource::Container { .. }));
        let CredentialSource::WebIdentity { sts_url, session_name, .. } = source(&irsa) else { panic!() };
        assert_eq!(
            (sts_url.as_str(), session_name.as_str()),
            ("https://sts.eu-west-1.amazonaws.com/", "agent-logship")
        );
        // STS as the SDKs find it: the pod's own region (not the one signed for), FIPS, the
        // endpoint variables, the setting first.
        let sts_of = |pairs: &[(&str, &str)]| match source(&[&irsa[..], pairs].concat()) {
            CredentialSource::WebIdentity { sts_url, .. } => sts_url.to_string(),
            other => panic!("{other:?}"),
        };
        let elsewhere = [
            ("AGENT_LOGSHIP_AWS_REGION", "eu-central-1"),
            ("AGENT_LOGSHIP_ES_URL", "https://d.eu-central-1.es.amazonaws.com"),
        ];
        assert_eq!(sts_of(&elsewhere), "https://sts.eu-west-1.amazonaws.com/");
        assert_eq!(sts_of(&[("AWS_USE_FIPS_ENDPOINT", "true")]), "https://sts-fips.eu-west-1.amazonaws.com/");
        assert_eq!(sts_of(&[("AWS_ENDPOINT_URL", "https://all.vpce")]), "https://all.vpce/");
        let both = [("AWS_ENDPOINT_URL", "https://all.vpce"), ("AWS_ENDPOINT_URL_STS", "https://sts.vpce")];
        assert_eq!(sts_of(&both), "https://sts.vpce/");
        assert_eq!(
            sts_of(&[both[1], ("AGENT_LOGSHIP_AWS_STS_URL", "https://ours.vpce")]),
            "https://ours.vpce/"
        );
        let sts = [("AGENT_LOGSHIP_AWS_STS_URL", "https://sts.local"), keys[0], keys[1]];
        let sts_in_clear = [("AGENT_LOGSHIP_AWS_STS_URL", "http://sts.attacker.example/"), irsa[0], irsa[1]];
        let sts_env_in_clear = [("AWS_ENDPOINT_URL_STS", "http://sts.vpce/"), irsa[0], irsa[1]];
        let region = [("AGENT_LOGSHIP_AWS_REGION", "eu west"), keys[0], keys[1]];
        let upper = [("AWS_REGION", "EU-WEST-1"), keys[0], keys[1]];
        let token_alone = [("AGENT_LOGSHIP_AWS_SESSION_TOKEN_FILE", "/s/token"), keys[0], keys[1]];
        let aoss_url =
            [("AGENT_LOGSHIP_ES_URL", "https://abc.eu-west-1.aoss.amazonaws.com"), keys[0], keys[1]];
        let other_region =
            [("AGENT_LOGSHIP_ES_URL", "https://d.us-east-1.es.amazonaws.com"), keys[0], keys[1]];
        let in_clear = [("AGENT_LOGSHIP_ES_URL", "http://opensearch.bank.example:9200"), keys[0], keys[1]];
        let api_key = [("AGENT_LOGSHIP_API_KEY_FILE", "/s/k"), keys[0], keys[1]];
        let half_pod_identity = [pod_identity[0]];
        let evil = [("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example/creds"), pod_identity[1]];
        for (pairs, named, says) in [
            (&[][..], "AGENT_LOGSHIP_AWS_SIGV4", "no AWS credentials"),
            (&sts, "AGENT_LOGSHIP_AWS_STS_URL", "used only with IRSA"),
            (&sts_in_clear, "AGENT_LOGSHIP_AWS_STS_URL", "would travel in clear"),
            (&sts_env_in_clear, "AWS_ENDPOINT_URL_STS", "would travel in clear"),
            (&upper, "AWS_REGION", "lowercase letters"),
            (&token_alone, "AGENT_LOGSHIP_AWS_SESSION_TOKEN_FILE", "goes with"),
            (
                &aoss_url,
                "AGENT_LOGSHIP_AWS_SIGV4",
                "is aoss in eu-west-1, but the requests are signed for es in eu-west-1",
            ),
            (&other_region, "AGENT_LOGSHIP_AWS_SIGV4", "is es in us-east-1"),
            (&in_clear, "AGENT_LOGSHIP_ES_URL", "signed requests go over https://"),
            (&files[..1], "AGENT_LOGSHIP_AWS_SECRET_ACCESS_KEY_FILE", "go together"),
            (&region, "AGENT_LOGSHIP_AWS_REGION", "not an AWS region"),
            (&api_key, "AGENT_LOGSHIP_AWS_SIGV4", "no basic auth or API key"),
            (&half_pod_identity, "AGENT_LOGSHIP_AWS_SIGV4", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            (&evil, "AGENT_LOGSHIP_AWS_SIGV4", "the token would travel in clear"),
        ] {
            let text = agent_core::config::Problems(aws(pairs).expect_err("bad")).to_string();
            assert!(text.contains(named) && text.contains(says), "{pairs:?}: {text}");
            assert!(!text.contains("s3cr3t"), "{text}");
        }
        // AWS settings without signing are a mistake, not ignored; so is signing with no URL.
        for setting in [
            files[0],
            ("AGENT_LOGSHIP_AWS_STS_URL", "https://sts.local"),
            ("AGENT_LOGSHIP_AWS_REGION", "eu-west-1"),
        ] {
            let text = problems(&[], &[("AGENT_LOGSHIP_ES_URL", "https://es:9200"), setting]);
            assert!(
                text.contains(setting.0) && text.contains("AGENT_LOGSHIP_AWS_SIGV4 is not set"),
                "{text}"
            );
        }
        let text = problems(
            &[],
            &[("AGENT_LOGSHIP_AWS_SIGV4", "es"), ("AWS_REGION", "eu-west-1"), keys[0], keys[1]],
        );
        assert!(
            text.contains("AGENT_LOGSHIP_ES_URL") && text.contains("signing were given but no URL"),
            "{text}"
        );
    }

    fn proxy_of(pairs: &[(&str, &str)]) -> Option<ProxyOptions> {
        let mut with_url = vec![("AGENT_LOGSHIP_ES_URL", "https://es.bank:9200")];
        with_url.extend_from_slice(pairs);
        let Output::Elasticsearch(es) = config(&[], &with_url).expect("valid").output else {
            panic!("not elasticsearch")
        };
        es.client.proxy
    }

    #[test]
    fn the_proxy_is_the_setting_or_the_standard_variables_when_asked() {
        let es = |u: &str| -> Url { u.parse().expect("url") };
        let standard = [("HTTPS_PROXY", "http://env-proxy:3128"), ("NO_PROXY", ".svc")];
        assert_eq!(proxy_of(&standard), None, "ignored unless asked");
        let explicit = proxy_of(&[("AGENT_LOGSHIP_ES_PROXY", "proxy.bank:8080")]).expect("a proxy");
        assert_eq!(explicit.for_url(&es("https://es.bank")), Some(&es("http://proxy.bank:8080")));
        assert_eq!(explicit.for_url(&es("http://es.svc")), Some(&es("http://proxy.bank:8080")), "every URL");
        let mut asked = standard.to_vec();
        asked.push(("AGENT_LOGSHIP_ES_PROXY_FROM_ENV", "true"));
        asked.extend([
            ("AGENT_LOGSHIP_ES_PROXY_USERNAME_FILE", "/etc/proxy/user"),
            ("AGENT_LOGSHIP_ES_PROXY_PASSWORD_FILE", "/etc/proxy/password"),
        ]);
        let from_env = proxy_of(&asked).expect("a proxy");
        assert_eq!(from_env.for_url(&es("https://es.bank")), Some(&es("http://env-proxy:3128")));
        assert_eq!(from_env.for_url(&es("https://es.logging.svc")), None, "NO_PROXY");
        assert!(from_env.auth.is_some());
        assert_eq!(
            proxy_of(&[("AGENT_LOGSHIP_ES_PROXY_FROM_ENV", "true")]),
            None,
            "asked, none there: direct"
        );
        let v6 =
            [("AGENT_LOGSHIP_ES_URL", "https://[fd00::9]:9200"), ("AGENT_LOGSHIP_ES_PROXY", "http://p:1")];
        let text = problems(&[], &v6);
        assert!(text.contains("an https:// URL with an IPv6 address"), "{text}");
    }

    #[test]
    fn proxy_settings_that_contradict_each_other_are_named_without_the_password() {
        let url = ("AGENT_LOGSHIP_ES_URL", "https://es.bank:9200");
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[url, ("AGENT_LOGSHIP_ES_PROXY", "http://p:1"), ("AGENT_LOGSHIP_ES_PROXY_FROM_ENV", "true")],
                "AGENT_LOGSHIP_ES_PROXY_FROM_ENV",
            ),
            (
                &[
                    url,
                    ("AGENT_LOGSHIP_ES_PROXY_USERNAME_FILE", "/u"),
                    ("AGENT_LOGSHIP_ES_PROXY", "http://p:1"),
                ],
                "need a password file too",
            ),
            (
                &[
                    url,
                    ("AGENT_LOGSHIP_ES_PROXY_USERNAME_FILE", "/u"),
                    ("AGENT_LOGSHIP_ES_PROXY_PASSWORD_FILE", "/p"),
                ],
                "but no proxy is configured",
            ),
            (
                &[
                    url,
                    ("AGENT_LOGSHIP_ES_PROXY", "http://svc:Sekr3t-Pw@p:1"),
                    ("AGENT_LOGSHIP_ES_PROXY_USERNAME_FILE", "/u"),
                    ("AGENT_LOGSHIP_ES_PROXY_PASSWORD_FILE", "/p"),
                ],
                "give them once",
            ),
            (&[url, ("AGENT_LOGSHIP_ES_PROXY", "socks5://svc:Sekr3t-Pw@p:1080")], "AGENT_LOGSHIP_ES_PROXY"),
        ];
        for (pairs, said) in cases {
            let text = problems(&[], pairs);
            assert!(text.contains(said), "{said}: {text}");
            assert!(!text.contains("Sekr3t"), "{text}");
        }
        let env =
            [("AGENT_LOGSHIP_ES_PROXY_FROM_ENV", "true"), ("HTTPS_PROXY", "ftp://svc:Sekr3t-Pw@p:1"), url];
        let text = problems(&[], &env);
        assert!(text.contains("HTTPS_PROXY") && !text.contains("Sekr3t"), "{text}");
    }

    #[test]
    fn every_bad_value_is_named_at_once_without_secrets() {
        let text = problems(
            &["--paths", "logs/*.log", "--max-record-bytes", "lots"],
            &[
                ("AGENT_LOGSHIP_ES_URL", "ftp://elastic:hunter2@es:9200"),
                ("AGENT_LOGSHIP_USERNAME_FILE", "/secrets/u"),
                ("AGENT_LOGSHIP_COMPONENT", "Data Server"),
                ("AGENT_LOGSHIP_FORMAT", "xml"),
            ],
        );
        assert!(text.contains("--paths=\"logs/*.log\": logs/*.log: must be an absolute path"), "{text}");
        assert!(text.contains("--max-record-bytes=\"lots\": not a size"), "{text}");
        assert!(text.contains("must be an http:// or https:// URL"), "{text}");
        assert!(text.contains("AGENT_LOGSHIP_PASSWORD_FILE: missing"), "{text}");
        assert!(text.contains("' ' is not allowed in an index name"), "{text}");
        assert!(text.contains("must be log4j, json or cri"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn events_in_a_pod_use_the_service_account_and_read_no_files_unless_told() {
        let pod = [
            ("KUBERNETES_SERVICE_HOST", "fd00::1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("AGENT_LOGSHIP_EVENTS", "true"),
        ];
        let c = config(&[], &pod).expect("valid");
        let ev = c.events.expect("events on");
        assert_eq!(ev.kube_url.as_str(), "https://[fd00::1]/");
        assert_eq!(
            ev.token_file.as_deref(),
            Some(Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token"))
        );
        assert_eq!(
            ev.ca_file.as_deref(),
            Some(Path::new("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"))
        );
        assert_eq!(
            (ev.namespace, ev.spool_max_bytes, ev.watch_timeout),
            (None, 256 << 20, Duration::from_secs(300))
        );
        assert!(c.paths.is_empty(), "Events alone");
        let c =
            config(&["--paths", "/var/log/calypso/*.log", "--events-namespace", "*"], &pod).expect("valid");
        assert_eq!(c.paths, ["/var/log/calypso/*.log"], "beside files");
        assert_eq!(c.events.and_then(|e| e.namespace).as_deref(), Some("*"));
        // Off (the default): files only, with the default paths.
        let c = config(&[], &pod[..2]).expect("valid");
        assert!(c.events.is_none());
        assert_eq!(c.paths, ["/var/log/calypso/*.log"]);
    }

    #[test]
    fn events_settings_are_checked() {
        let outside = problems(&["--events", "true"], &[]);
        assert!(outside.contains("AGENT_LOGSHIP_KUBE_URL: missing: not in a pod"), "{outside}");
        let text = problems(
            &["--events", "true", "--kube-url", "https://k8s:6443", "--events-namespace", "Calypso_UAT"],
            &[("AGENT_LOGSHIP_EVENTS_WATCH_TIMEOUT", "500ms"), ("AGENT_LOGSHIP_SPOOL_MAX_BYTES", "lots")],
        );
        assert!(text.contains("must be a namespace name (a DNS label) or *"), "{text}");
        assert!(text.contains("must be at least 1s"), "{text}");
        assert!(
            text.contains("--spool-max-bytes") || text.contains("AGENT_LOGSHIP_SPOOL_MAX_BYTES"),
            "{text}"
        );
        // Without --events they are not the file shipper's: ignored, even when they would not
        // parse (the process test checks the warning).
        let off = config(
            &[],
            &[
                ("AGENT_LOGSHIP_KUBE_URL", "https://k8s:6443"),
                ("AGENT_LOGSHIP_EVENTS_NAMESPACE", "*"),
                ("AGENT_LOGSHIP_SPOOL_MAX_BYTES", "lots"),
            ],
        )
        .expect("a file shipper ignores the Events settings");
        assert!(off.events.is_none());
        let c = config(&["--events", "true", "--kube-url", "http://127.0.0.1:8001"], &[]).expect("valid");
        let ev = c.events.expect("on");
        assert_eq!((ev.token_file, ev.ca_file), (None, None), "no service account outside the cluster");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("1048576"), Ok(1 << 20));
        assert_eq!(bytes("512KiB"), Ok(512 << 10));
        assert_eq!(bytes("5Mi"), Ok(5 << 20));
        assert_eq!(bytes("1 GiB"), Ok(1 << 30));
        assert!(bytes("0").is_err());
        assert!(bytes("-1").is_err());
        assert!(bytes("5 furlongs").is_err());
        assert!(bytes("99999999999999999999GiB").is_err());
    }
}
