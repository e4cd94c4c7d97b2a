//! Assembles the pipeline from the configuration and runs it until a signal: files -> frames ->
//! encoder -> sink, acknowledgements back to the files' checkpoints; Kubernetes Events ->
//! spool -> the same sink, acknowledgements back to the spool; the probe server beside.
//!
//! The graceful stop (SIGTERM) keeps the promise "nothing lost": stop reading, let the encoder
//! and the sink drain what was read (bounded by the shutdown grace), then write the checkpoints,
//! which by then cover everything acknowledged. If the grace runs out first, what was read but
//! not acknowledged is simply read again at the next start.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use agent_core::config::Problem;
use agent_core::dns::Dns;
use agent_core::listen::Listen;
use agent_core::shutdown::Signals;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{self, Config, EventsConfig, Output};
use crate::encode::{EncodeContext, Encoder};
use crate::events::{
    self,
    api::{KubeClient, KubeOptions, Scope},
    metrics::EventMetrics,
    shared::Shared,
};
use crate::files::source::{Item, Run};
use crate::files::{FileStatus, FilesConfig, FilesSource};
use crate::flow::Budget;
use crate::framing::{self, FramingOptions};
use crate::metrics::{FileLag, Metrics, Observed, SourceStatus};
use crate::redaction::Redactor;
use crate::setup::{self, SetupOptions};
use crate::sink::client::{ClientError, EsClient};
use crate::sink::proxy::ProxyOptions;
use crate::sink::tls::Part;
use crate::sink::{self, BatchLimits, Batcher, Bulk, EsOptions, EsSink, Sink, StdoutSink};

const USER_AGENT: &str = concat!("agent-logship/", env!("CARGO_PKG_VERSION"));

/// Runs of records (up to 256 each) waiting for the encoder: few, the budget bounds the bytes.
const CHANNEL: usize = 8;

/// Batches waiting for the sink: one, ready the moment the sink can take it.
const BATCHES: usize = 1;

/// One LIST page of Events (500 of them) from the API server.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why agent-logship stopped other than by a signal.
#[derive(Debug)]
pub enum Failure {
    /// A setting is wrong (found while starting): exit 64.
    Config(Vec<Problem>),
    /// `setup` could not reach or was refused by Elasticsearch: exit 69.
    Unavailable(String),
    /// A part of the pipeline failed: exit 70.
    Broken(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Config(problems) => write!(f, "{}", agent_core::config::Problems(problems.clone())),
            Failure::Unavailable(why) | Failure::Broken(why) => f.write_str(why),
        }
    }
}

/// `agent-logship setup`: the index template (and retention policy), then a report.
pub async fn setup(config: &Config, dns: Dns) -> Result<String, Failure> {
    let Output::Elasticsearch(es) = &config.output else {
        let reason = "missing: setup needs the Elasticsearch/OpenSearch URL";
        return Err(Failure::Config(vec![Problem::without_value(config::ES_URL.meta.env, reason)]));
    };
    let client = EsClient::new(&es.client, dns, USER_AGENT).map_err(client_failure)?;
    let options =
        SetupOptions { retention_days: config.retention_days, serverless: config.output.serverless() };
    let report =
        setup::setup(&client, &options).await.map_err(|e| Failure::Unavailable(format!("setup: {e:#}")))?;
    Ok(report.to_string())
}

/// The Elasticsearch client could not be made: a bad CA file is a setting's problem (64: for
/// `setup`; a shipper waits for a usable one instead); a TLS stack that cannot start is ours (70).
fn client_failure(e: ClientError) -> Failure {
    match &e {
        ClientError::Tls(tls) => {
            let setting = match tls.part {
                Part::Ca => &config::CA_FILE.meta,
                Part::ClientCert => &config::CLIENT_CERT_FILE.meta,
                Part::ClientKey => &config::CLIENT_KEY_FILE.meta,
            };
            Failure::Config(vec![Problem::without_value(setting.env, e.to_string())])
        }
        ClientError::NoUrl => {
            Failure::Config(vec![Problem::without_value(config::ES_URL.meta.env, e.to_string())])
        }
        ClientError::Build(_) => Failure::Broken(e.to_string()),
    }
}

/// The first restart after a failure waits about this long; each further one twice as long, up
/// to [`RESTART_MAX`]. A pipeline that ran that long before failing starts the count over.
const RESTART_MIN: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(60);

/// Old pipeline tasks get this long to end after being told to stop before they are aborted:
/// the next start must not share the spool or the checkpoint with them.
const PARTS_END: Duration = Duration::from_secs(10);

/// Runs the pipeline until SIGTERM/SIGINT, then stops gracefully. A pipeline that fails (a part
/// ends, or it cannot start) is stopped and started again in the process after a
/// backoff: the process never exits for it, since a native sidecar's restart takes the Calypso
/// pod out of its Service. `Err` only for settings found unusable before the start (see
/// [`check`]); what a stop leaves unshipped is said in the log and at `termination`.
pub async fn run(
    config: Config,
    dns: Dns,
    signals: Signals,
    termination: Option<&Path>,
) -> Result<(), Failure> {
    let problems = check(&config, &dns, Check::Run);
    if !problems.is_empty() {
        return Err(Failure::Config(problems));
    }
    // A listen address in use (another container on the port, for a moment or for good) does
    // not stop the shipping: the probes and /metrics come once it is free.
    let listener = config.listen.bind().map_err(|error| {
        tracing::error!(
            setting = %config.listen_setting,
            address = %config.listen,
            %error,
            "cannot listen: shipping anyway, without probes or /metrics until the address is free (tried again every 10 s)"
        );
    });
    let parts = Parts {
        metrics: Arc::new(Metrics::default()),
        budget: Budget::new(config.max_inflight_bytes),
        events: config.events.as_ref().map(|_| Arc::new(EventMetrics::default())),
        files: Arc::new(FilesSlot::default()),
        redactor: config.redact.clone().map(|patterns| Arc::new(Redactor::new(patterns))),
    };
    let observed = Arc::new(Observed {
        metrics: parts.metrics.clone(),
        budget: parts.budget.clone(),
        sources: Box::new(parts.files.clone()),
        events: parts.events.clone(),
        redactor: parts.redactor.clone(),
        not_shipping: std::sync::Mutex::new(Some("starting".into())),
        problems: 0,
        stopping: Default::default(),
    });
    tracing::info!(
        paths = %config.paths.join(","),
        events = %config.events.as_ref().map_or("off".to_string(), |e| e.kube_url.to_string()),
        output = %match &config.output {
            Output::Stdout => "stdout".to_string(),
            Output::Elasticsearch(es) => es.client.urls.iter().map(|u| agent_core::redact::url(u.as_str())).collect::<Vec<_>>().join(","),
        },
        proxy = %match &config.output {
            Output::Elasticsearch(es) => es.client.proxy.as_ref().map_or("none".to_string(), ProxyOptions::describe),
            Output::Stdout => "none".to_string(),
        },
        listen = %listener.as_ref().ok().and_then(|l| l.local_addr().ok()).map_or(config.listen.to_string(), |a| a.to_string()),
        redact = %match &config.redact {
            None => "off".to_string(),
            Some(patterns) => format!("on ({} patterns)", patterns.len()),
        },
        "shipping"
    );
    if config.redact.is_none() {
        tracing::warn!(
            "AGENT_LOGSHIP_REDACT is false: records and Event messages are stored as written, \
             credentials included"
        );
    }
    let (stop_server, server_stopped) = watch::channel(false);
    let server =
        tokio::spawn(serve_when_bound(config.listen, listener.ok(), observed.clone(), server_stopped));

    let signal = signals.first();
    tokio::pin!(signal);
    let mut delays = agent_core::retry::backoff(RESTART_MIN, RESTART_MAX);
    loop {
        let started = Instant::now();
        let failure = match Pipeline::start(&config, &dns, &parts) {
            Ok(mut pipeline) => {
                observed.set_not_shipping(None);
                let ended = tokio::select! {
                    signal = &mut signal => Err(signal),
                    failure = pipeline.failed() => Ok(failure),
                };
                match ended {
                    Err(signal) => {
                        tracing::info!(
                            "{signal}: reading the sources to their ends, shipping what was read, then checkpointing"
                        );
                        observed.stopping.store(true, Ordering::Relaxed);
                        pipeline.stop(config.shutdown_grace, &parts.budget).await;
                        break;
                    }
                    Ok(failure) => {
                        pipeline.abort().await;
                        failure
                    }
                }
            }
            Err(failure) => failure,
        };
        Metrics::add(&parts.metrics.pipeline_restarts, 1);
        if started.elapsed() >= RESTART_MAX {
            delays = agent_core::retry::backoff(RESTART_MIN, RESTART_MAX);
        }
        let wait = delays.next().unwrap_or(RESTART_MAX);
        observed.set_not_shipping(Some(format!("{failure} (starting again)")));
        tracing::error!(
            %failure,
            restart_in = %humantime::format_duration(wait),
            "the pipeline failed: starting it again (the process stays up; what was not acknowledged is read again)"
        );
        let woke = tokio::select! {
            () = tokio::time::sleep(wait) => None,
            signal = &mut signal => Some(signal),
        };
        if let Some(signal) = woke {
            tracing::info!("{signal}: stopping (the pipeline was not running)");
            observed.stopping.store(true, Ordering::Relaxed);
            break;
        }
    }
    say_unshipped(parts.files.get().as_deref(), parts.events.as_deref(), termination);
    let _ = stop_server.send(true);
    let _ = server.await;
    Ok(())
}

/// How often an address in use is tried again.
const LISTEN_RETRY: Duration = Duration::from_secs(10);

/// Serves `/livez`, `/readyz` and `/metrics` on `listener`, or, while there is none, binds
/// `listen` again every [`LISTEN_RETRY`]; until `stopped` says so.
async fn serve_when_bound(
    listen: Listen,
    mut listener: Option<tokio::net::TcpListener>,
    observed: Arc<Observed>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if let Some(l) = listener.take() {
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let _ = crate::server::serve(l, observed, stop).await;
            return;
        }
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            () = tokio::time::sleep(LISTEN_RETRY) => {}
        }
        match listen.bind() {
            Ok(l) => {
                tracing::info!(listen = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening now");
                listener = Some(l);
            }
            Err(error) => tracing::debug!(%error, "cannot listen yet"),
        }
    }
}

/// Keeps a process whose settings make shipping impossible up and shipping nothing, until
/// SIGTERM: the problems are logged now and every minute, `/readyz` fails naming them, and
/// `/metrics` shows `agent_logship_configuration_problems` (when `listen` can be served). A
/// sidecar that exited instead would take the Calypso pod out of its Service.
pub async fn hold(
    problems: Vec<Problem>,
    listen: Option<Listen>,
    signals: Signals,
    termination: Option<&Path>,
) {
    let message = agent_core::config::Problems(problems.clone()).to_string();
    let observed = Arc::new(Observed::held(problems.len(), message.clone()));
    let (stop_server, server_stopped) = watch::channel(false);
    let server = listen.map(|listen| {
        let listener = listen.bind().map_err(|error| {
            tracing::error!(%error, "cannot serve /metrics either (tried again every 10 s)");
        });
        if let Ok(l) = &listener {
            let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(listen = %addr, "held: serving /livez, /readyz (not ready) and /metrics");
        }
        tokio::spawn(serve_when_bound(listen, listener.ok(), observed, server_stopped))
    });
    let signal = repeat_until(HOLD_REPEAT, signals.first(), || {
        tracing::error!(
            "not shipping until the settings are fixed (said again every minute; the process stays up so that \
             Calypso stays in service): {message}"
        );
    })
    .await;
    tracing::info!("{signal}: stopping");
    agent_core::termination::write(
        termination,
        &format!("stopped without having shipped anything: {message}"),
    );
    let _ = stop_server.send(true);
    if let Some(server) = server {
        let _ = server.await;
    }
}

/// How often a held process repeats its problems.
const HOLD_REPEAT: Duration = Duration::from_secs(60);

/// Calls `say` now and every `every` until `stop` completes; `stop`'s output.
async fn repeat_until<T>(
    every: Duration,
    stop: impl std::future::Future<Output = T>,
    mut say: impl FnMut(),
) -> T {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            out = &mut stop => return out,
            _ = tick.tick() => say(),
        }
    }
}

/// What the settings are checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Before running: the data directory is created if it can be; a CA file that is not usable
    /// (yet) is waited for by the shipper, not a problem.
    Run,
    /// `--check`: no data directory is created (one that exists is probed with a file written
    /// and removed at once); an unusable CA file is a problem.
    Only,
}

/// The problems that make shipping impossible beyond what parsing the settings finds: the data
/// directory, the Events namespace and the API server's CA, and (`Check::Only`) the
/// Elasticsearch CA.
pub fn check(config: &Config, dns: &Dns, how: Check) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(p) = usable_data_dir(&config.data_dir, how) {
        problems.push(p);
    }
    if let Some(ev) = &config.events {
        match events_namespace(ev, config) {
            Ok(ns) => {
                if let Err(Failure::Config(mut p)) = kube_client(ev, ns, dns.clone()) {
                    problems.append(&mut p);
                }
            }
            Err(p) => problems.push(p),
        }
    }
    if let (Check::Only, Output::Elasticsearch(es)) = (how, &config.output)
        && let Err(Failure::Config(mut p)) =
            EsClient::new(&es.client, dns.clone(), USER_AGENT).map_err(client_failure)
    {
        problems.append(&mut p);
    }
    problems
}

/// What outlives a pipeline's restarts: the counters, the budget, and what `/metrics` reads.
struct Parts {
    metrics: Arc<Metrics>,
    budget: Budget,
    events: Option<Arc<EventMetrics>>,
    files: Arc<FilesSlot>,
    /// One for the process: its counts outlive a pipeline restart.
    redactor: Option<Arc<Redactor>>,
}

/// One start of the pipeline: the files source and its encoder, the Events tasks, the sink.
struct Pipeline {
    files: Option<Arc<FilesSource>>,
    encoding: Option<JoinHandle<()>>,
    watching: Option<JoinHandle<()>>,
    event_shipping: Option<JoinHandle<()>>,
    shipping: Option<JoinHandle<Result<sink::Ended, sink::SinkError>>>,
    slot: Arc<FilesSlot>,
    stop_sources: watch::Sender<bool>,
    abort_sink: watch::Sender<bool>,
}

impl Pipeline {
    fn start(config: &Config, dns: &Dns, parts: &Parts) -> Result<Pipeline, String> {
        let limits = BatchLimits {
            docs: config.batch_docs as usize,
            bytes: usize::try_from(config.batch_bytes).unwrap_or(usize::MAX),
            age: config.batch_age,
        };
        let sink = match &config.output {
            Output::Stdout => Sink::Stdout(StdoutSink::stdout()),
            Output::Elasticsearch(es) => {
                let options = EsOptions {
                    client: es.client.clone(),
                    gzip: es.gzip,
                    ids: es.ids,
                    dead_letter_max_bytes: es.dead_letter_max_bytes,
                    ..EsOptions::new(Vec::new(), &config.data_dir)
                };
                let max_in_flight = options.max_in_flight;
                let sink = EsSink::new(&options, dns.clone(), parts.metrics.clone())
                    .map_err(|e| format!("cannot start the Elasticsearch client: {e}"))?;
                Sink::Es { sink: Arc::new(sink), max_in_flight }
            }
        };
        // Every source hands its batches to the one sink.
        let (batches_tx, batches_rx) = mpsc::channel::<Bulk>(BATCHES);
        let (stop_sources, sources_stopped) = watch::channel(false);
        let stopped = move || {
            let mut rx = sources_stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let files = if config.paths.is_empty() {
            None
        } else {
            Some(start_files(config, parts, batches_tx.clone(), limits)?)
        };
        let (files, encoding) = files.unzip();
        parts.files.set(files.clone());
        let events = match (&config.events, &parts.events) {
            (Some(ev), Some(metrics)) => {
                let started =
                    start_events(ev, config, dns, parts, metrics, batches_tx.clone(), limits, &stopped);
                match started {
                    Ok(tasks) => Some(tasks),
                    Err(e) => {
                        // The files part is running already: stopped before the next try.
                        let _ = stop_sources.send(true);
                        if let Some(f) = &files {
                            f.stop_reading();
                        }
                        parts.files.set(None);
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        drop(batches_tx);
        let (abort_sink, abort_rx) = watch::channel(false);
        let aborted = async move {
            let mut rx = abort_rx;
            let _ = rx.wait_for(|a| *a).await;
        };
        let shipping = tokio::spawn(sink::run(batches_rx, sink, parts.metrics.clone(), aborted));
        let (watching, event_shipping) = events.map(|t| (t.watcher, t.shipper)).unzip();
        Ok(Pipeline {
            files,
            encoding,
            watching,
            event_shipping,
            shipping: Some(shipping),
            slot: parts.files.clone(),
            stop_sources,
            abort_sink,
        })
    }

    /// Completes when a part ended although nothing told it to: why.
    async fn failed(&mut self) -> String {
        tokio::select! {
            // The encoder ends only when the files source has stopped sending.
            ended = finished(&mut self.encoding) => match ended {
                Ok(()) => "file reading stopped".to_string(),
                Err(e) => format!("the encoder failed: {e}"),
            },
            ended = finished(&mut self.watching) => format!("the Events watcher stopped: {}", ended_how(ended)),
            ended = finished(&mut self.event_shipping) => format!("the Events shipper stopped: {}", ended_how(ended)),
            ended = finished(&mut self.shipping) => match ended {
                Ok(Ok(_)) => "the sink stopped".to_string(),
                Ok(Err(e)) => format!("the sink failed: {e}"),
                Err(e) => format!("the sink failed: {e}"),
            },
        }
    }

    /// After a failure: everything stops at once; the checkpoint keeps what was acknowledged,
    /// the rest is read again by the next start. Returns once every part has ended.
    async fn abort(mut self) {
        let _ = self.stop_sources.send(true);
        if let Some(f) = &self.files {
            f.stop_reading();
        }
        let _ = self.abort_sink.send(true);
        self.end_parts().await;
        if let Some(f) = self.files.take() {
            checkpoint(&f).await;
            // The next start loads the checkpoint: this source's writer must be gone first.
            self.slot.set(None);
            drop(f);
        }
    }

    /// The graceful stop: the files source reads to the files' ends, flushes and drops its
    /// sender, so the encoder ends and drops its own; the Events tasks stop (the spool keeps
    /// what they had not shipped); then the sink drains — all within `grace`. Then the
    /// checkpoint, which covers everything acknowledged.
    async fn stop(mut self, grace: Duration, budget: &Budget) {
        let _ = self.stop_sources.send(true);
        if let Some(f) = &self.files {
            f.drain();
        }
        let tasks = [self.encoding.take(), self.watching.take(), self.event_shipping.take()];
        let mut shipping = self.shipping.take();
        let drained = tokio::time::timeout(grace, async {
            for task in tasks.into_iter().flatten() {
                let _ = task.await;
            }
            finished(&mut shipping).await
        })
        .await;
        match drained {
            Ok(Ok(Ok(sink::Ended::Drained))) => tracing::info!("everything read was shipped"),
            Ok(other) => tracing::warn!(?other, "the sink ended before draining"),
            Err(_) => {
                if let Some(f) = &self.files {
                    f.stop_reading();
                }
                let _ = self.abort_sink.send(true);
                tracing::warn!(
                    in_flight_bytes = budget.in_flight(),
                    "the shutdown grace ran out: what was not acknowledged is read again at the next start"
                );
            }
        }
        if let Some(f) = &self.files {
            checkpoint(f).await;
        }
    }

    /// Waits for every task told to stop, aborting those that do not end within [`PARTS_END`].
    async fn end_parts(&mut self) {
        for task in
            [self.encoding.take(), self.watching.take(), self.event_shipping.take()].into_iter().flatten()
        {
            end(task).await;
        }
        if let Some(task) = self.shipping.take() {
            end(task).await;
        }
    }
}

/// Waits for a task told to stop; aborts it if it does not end within [`PARTS_END`].
async fn end<T>(mut task: JoinHandle<T>) {
    if tokio::time::timeout(PARTS_END, &mut task).await.is_err() {
        task.abort();
        let _ = task.await;
    }
}

/// A task's end as a log says it (returned, or cancelled).
fn ended_how(ended: Result<(), tokio::task::JoinError>) -> String {
    match ended {
        Ok(()) => "it returned".to_string(),
        Err(e) => e.to_string(),
    }
}

/// What a stop leaves unshipped (Elasticsearch away, or the grace too short), said in the log and
/// as the termination message (`kubectl describe pod` shows it, exit 0 or not): read again at the
/// next start while the pod's volume lives, gone with it when the pod is deleted.
fn say_unshipped(files: Option<&FilesSource>, events: Option<&EventMetrics>, termination: Option<&Path>) {
    let lagging: Vec<u64> = files
        .map(FilesSource::status)
        .unwrap_or_default()
        .iter()
        .map(|s| s.lag_bytes)
        .filter(|&b| b > 0)
        .collect();
    let bytes: u64 = lagging.iter().sum();
    let events = events.map_or(0, |m| m.spool_pending.load(Ordering::Relaxed));
    // Only the parts that have something left: a file sidecar names no Events, and the reverse.
    let mut parts = Vec::new();
    if bytes > 0 {
        let files =
            if lagging.len() == 1 { "1 file".to_string() } else { format!("{} files", lagging.len()) };
        parts.push(format!("{bytes} bytes of log in {files}"));
    }
    if events > 0 {
        parts.push(format!("{events} Kubernetes Event occurrences"));
    }
    if parts.is_empty() {
        return;
    }
    let message = format!(
        "stopped with {} not yet in Elasticsearch: read again at the next start if this pod's volume survives, \
         lost if the pod is deleted",
        parts.join(" and ")
    );
    tracing::warn!(unshipped_bytes = bytes, events, "{message}");
    agent_core::termination::write(termination, &message);
}

/// A task's end, for `select!`; never, for a task that was not started (or whose end was seen).
async fn finished<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(t) => {
            let ended = t.await;
            *task = None;
            ended
        }
        None => std::future::pending().await,
    }
}

/// The files source and its encoder task, sending batches into `tx`.
fn start_files(
    config: &Config,
    parts: &Parts,
    tx: mpsc::Sender<Bulk>,
    limits: BatchLimits,
) -> Result<(Arc<FilesSource>, JoinHandle<()>), String> {
    let framing = FramingOptions {
        record_start: config.record_start.clone(),
        max_record_bytes: usize::try_from(config.max_record_bytes).unwrap_or(usize::MAX),
        flush_timeout: config.flush_timeout,
        redactor: parts.redactor.clone(),
    };
    let make_frame = framing::make_frame(config.format, framing);
    let encoder = Encoder::new(EncodeContext { host_name: host_name(), ..config.origin.clone() });
    let (records_tx, records_rx) = mpsc::channel::<Run>(CHANNEL);
    let files_config = FilesConfig {
        paths: config.paths.clone(),
        exclude: config.exclude.clone(),
        start_at: config.start_at,
        rescan_interval: config.rescan_interval,
        poll_interval: config.poll_interval,
        rotate_grace: config.rotate_grace,
        forget_after: config.forget_after,
        framed_max_bytes: usize::try_from(config.max_inflight_bytes).unwrap_or(usize::MAX),
        masking: parts.redactor.as_ref().map_or_else(|| "off".to_owned(), |r| format!("{:016x}", r.digest())),
        ..FilesConfig::new(&config.data_dir)
    };
    let files = Arc::new(
        FilesSource::start(files_config, make_frame, parts.budget.clone(), records_tx, parts.metrics.clone())
            .map_err(|e| format!("cannot start reading files: {e}"))?,
    );
    let batcher = Batcher::new(records_rx, limits, encoder.index().clone());
    Ok((files, tokio::spawn(encode(batcher, tx, encoder, parts.metrics.clone()))))
}

/// The Events source: its client, its spool, its two tasks (stopping when `stop` completes).
#[allow(clippy::too_many_arguments)] // the pipeline's parts, each passed once
fn start_events<S>(
    ev: &EventsConfig,
    config: &Config,
    dns: &Dns,
    parts: &Parts,
    metrics: &Arc<EventMetrics>,
    tx: mpsc::Sender<Bulk>,
    limits: BatchLimits,
    stop: impl Fn() -> S,
) -> Result<events::source::EventsTasks, String>
where
    S: std::future::Future<Output = ()> + Send + 'static,
{
    let namespace = events_namespace(ev, config).map_err(|p| p.to_string())?;
    let scope = Scope::of(&namespace);
    let client = kube_client(ev, namespace, dns.clone()).map_err(|e| e.to_string())?;
    let shared = Shared::open(&config.data_dir, ev.spool_max_bytes, metrics.clone())
        .map_err(|e| format!("cannot open the Events spool: {e}"))?;
    tracing::info!(scope = %scope, url = %agent_core::redact::url(ev.kube_url.as_str()), "shipping Kubernetes Events");
    Ok(events::source::start(client, shared, tx, limits, parts.budget.clone(), parts.redactor.clone(), stop))
}

/// The API server's client for the Events of `namespace` (`*`: all).
fn kube_client(ev: &EventsConfig, namespace: String, dns: Dns) -> Result<KubeClient, Failure> {
    let options = KubeOptions {
        url: ev.kube_url.clone(),
        token_file: ev.token_file.clone(),
        ca_file: ev.ca_file.clone(),
        scope: Scope::of(&namespace),
        page: 500,
        timeout: LIST_TIMEOUT,
        watch_timeout: ev.watch_timeout,
    };
    KubeClient::new(options, dns, USER_AGENT).map_err(|e| match e {
        ClientError::Tls(_) => {
            Failure::Config(vec![Problem::without_value(config::KUBE_CA_FILE.meta.env, e.to_string())])
        }
        e => Failure::Broken(e.to_string()),
    })
}

/// Whose Events: the setting, else the service account's namespace, else the pod's (Downward
/// API).
fn events_namespace(ev: &EventsConfig, config: &Config) -> Result<String, Problem> {
    if let Some(ns) = &ev.namespace {
        return Ok(ns.clone());
    }
    let file = Path::new(events::api::SERVICE_ACCOUNT_DIR).join("namespace");
    std::fs::read_to_string(&file)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| config.origin.namespace.clone())
        .ok_or_else(|| {
            let why = format!(
                "missing: no {} (no service account token mounted) and no AGENT_LOGSHIP_NAMESPACE; give the namespace",
                file.display()
            );
            Problem::without_value(config::EVENTS_NAMESPACE.meta.env, why)
        })
}

async fn checkpoint(files: &FilesSource) {
    if let Err(e) = files.checkpoint().await {
        tracing::error!(error = %e, "cannot write the checkpoint: what was shipped since the last one is sent again at the next start (answered 409)");
    }
}

/// The files source of the pipeline running now, as `/metrics` sees it.
#[derive(Default)]
struct FilesSlot(std::sync::Mutex<Option<Arc<FilesSource>>>);

impl FilesSlot {
    fn set(&self, files: Option<Arc<FilesSource>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = files;
    }

    fn get(&self) -> Option<Arc<FilesSource>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl SourceStatus for Arc<FilesSlot> {
    fn files(&self) -> Vec<FileLag> {
        let lag = |f: FileStatus| FileLag {
            path: f.path,
            lag_bytes: f.lag_bytes,
            oldest_unacknowledged: f.oldest_unacked,
        };
        self.get().map(|f| f.status().into_iter().map(lag).collect()).unwrap_or_default()
    }
}

/// `host.name`: the kernel's host name (in a pod, the pod's name).
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Encodes records into batches as they come; ends when the sources have stopped.
async fn encode(mut batcher: Batcher<Item>, tx: mpsc::Sender<Bulk>, encoder: Encoder, metrics: Arc<Metrics>) {
    // Owns the encoder (which keeps a little state of its own, so is not shared).
    let mut add = move |bulk: &mut sink::BulkWriter, (record, file, ack): Item| {
        let id = encoder.id(&record, &file);
        let unparsed =
            bulk.push(id.as_str(), ack, |out| encoder.encode_into(&record, &file, &SystemTime::now, out));
        if unparsed {
            Metrics::add(&metrics.timestamps_unparsed, 1);
        }
    };
    while let Some(bulk) = batcher.next(&mut add).await {
        if tx.send(bulk).await.is_err() {
            return;
        }
    }
}

/// The data directory must exist (for a run it is created if it can be) and be writable before
/// anything is read: checkpoints that cannot be written would mean shipping everything again.
fn usable_data_dir(dir: &Path, how: Check) -> Result<(), Problem> {
    let bad = |reason: String| {
        Problem::new(
            config::DATA_DIR.meta.env,
            dir.display().to_string(),
            format!("{reason} (mount a volume there, e.g. an emptyDir)"),
        )
    };
    let not_writable = |e: std::io::Error| bad(format!("not a writable directory: {e}"));
    if how == Check::Only && !dir.exists() {
        // Not created by a check: it will be, if its nearest existing ancestor is a directory.
        return match dir.ancestors().find(|a| a.exists()) {
            Some(a) if !a.is_dir() => Err(bad(format!("{} is not a directory", a.display()))),
            _ => Ok(()),
        };
    }
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let probe = dir.join(".agent-logship-write-test");
    std::fs::write(&probe, b"").map_err(not_writable)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_held_agent_says_its_problems_every_minute_until_stopped() {
        let mut said = Vec::new();
        let start = tokio::time::Instant::now();
        let stop = async {
            tokio::time::sleep(Duration::from_secs(210)).await;
            "SIGTERM"
        };
        let signal = repeat_until(HOLD_REPEAT, stop, || said.push(start.elapsed().as_secs())).await;
        assert_eq!(signal, "SIGTERM");
        assert_eq!(said, [0, 60, 120, 180], "at once, then every minute");
    }
}
