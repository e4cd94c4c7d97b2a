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
use std::time::SystemTime;

use agent_core::config::Problem;
use agent_core::dns::Dns;
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
use crate::setup::{self, SetupOptions};
use crate::sink::client::{ClientError, ClientOptions, EsClient};
use crate::sink::{self, BatchLimits, Batcher, Bulk, EsOptions, EsSink, Sink, StdoutSink};

const USER_AGENT: &str = concat!("agent-logship/", env!("CARGO_PKG_VERSION"));

/// Runs of records (up to 256 each) waiting for the encoder: few, the budget bounds the bytes.
const CHANNEL: usize = 8;

/// Batches waiting for the sink: one, ready the moment the sink can take it.
const BATCHES: usize = 1;

/// One LIST page of Events (500 of them) from the API server.
const LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    let options = ClientOptions {
        urls: es.urls.clone(),
        ca_file: es.ca_file.clone(),
        auth: es.auth.clone(),
        timeout: es.request_timeout,
    };
    let client = EsClient::new(&options, dns, USER_AGENT).map_err(client_failure)?;
    let report = setup::setup(&client, &SetupOptions { retention_days: config.retention_days })
        .await
        .map_err(|e| Failure::Unavailable(format!("setup: {e:#}")))?;
    Ok(report.to_string())
}

/// The Elasticsearch client could not be made: a bad CA file is a setting's problem (64: for
/// `setup`; a shipper waits for a usable one instead); a TLS stack that cannot start is ours (70).
fn client_failure(e: ClientError) -> Failure {
    match e {
        ClientError::CaFile { .. } | ClientError::CaFileEmpty(_) => {
            Failure::Config(vec![Problem::without_value(config::CA_FILE.meta.env, e.to_string())])
        }
        ClientError::NoUrl => {
            Failure::Config(vec![Problem::without_value(config::ES_URL.meta.env, e.to_string())])
        }
        ClientError::Build(_) => Failure::Broken(e.to_string()),
    }
}

/// Runs the pipeline until SIGTERM/SIGINT (then stops gracefully) or until a part fails; what a
/// stop leaves unshipped is said in the log and at `termination` (the termination-message path).
pub async fn run(
    config: Config,
    dns: Dns,
    signals: Signals,
    termination: Option<&Path>,
) -> Result<(), Failure> {
    let listener = config.listen.bind().map_err(|e| {
        Failure::Config(vec![Problem::new(&config.listen_setting, config.listen.to_string(), e.to_string())])
    })?;
    prepare_data_dir(&config.data_dir)?;
    let metrics = Arc::new(Metrics::default());
    let budget = Budget::new(config.max_inflight_bytes);
    let limits = BatchLimits {
        docs: config.batch_docs as usize,
        bytes: usize::try_from(config.batch_bytes).unwrap_or(usize::MAX),
        age: config.batch_age,
    };
    let sink = match &config.output {
        Output::Stdout => Sink::Stdout(StdoutSink::stdout()),
        Output::Elasticsearch(es) => {
            let options = EsOptions {
                ca_file: es.ca_file.clone(),
                auth: es.auth.clone(),
                gzip: es.gzip,
                timeout: es.request_timeout,
                dead_letter_max_bytes: es.dead_letter_max_bytes,
                ..EsOptions::new(es.urls.clone(), &config.data_dir)
            };
            let max_in_flight = options.max_in_flight;
            let sink = EsSink::new(&options, dns.clone(), metrics.clone()).map_err(client_failure)?;
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
        Some(start_files(&config, budget.clone(), metrics.clone(), batches_tx.clone(), limits)?)
    };
    let events = match &config.events {
        Some(ev) => {
            Some(start_events(ev, &config, dns, budget.clone(), batches_tx.clone(), limits, &stopped)?)
        }
        None => None,
    };
    drop(batches_tx);
    let (files, mut encoding) = files.unzip();
    let (event_metrics, mut watching, mut event_shipping) = match events {
        Some((m, tasks)) => (Some(m), Some(tasks.watcher), Some(tasks.shipper)),
        None => (None, None, None),
    };
    let observed = Arc::new(Observed {
        metrics: metrics.clone(),
        budget: budget.clone(),
        sources: match &files {
            Some(f) => Box::new(Files(f.clone())),
            None => Box::new(NoFiles),
        },
        events: event_metrics,
        broken: Default::default(),
        stopping: Default::default(),
    });
    tracing::info!(
        paths = %config.paths.join(","),
        events = %config.events.as_ref().map_or("off".to_string(), |e| e.kube_url.to_string()),
        output = %match &config.output {
            Output::Stdout => "stdout".to_string(),
            Output::Elasticsearch(es) => es.urls.iter().map(|u| agent_core::redact::url(u.as_str())).collect::<Vec<_>>().join(","),
        },
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "shipping"
    );

    let (abort_tx, abort_rx) = watch::channel(false);
    let aborted = move || {
        let mut rx = abort_rx.clone();
        async move {
            let _ = rx.wait_for(|a| *a).await;
        }
    };
    let mut shipping = tokio::spawn(sink::run(batches_rx, sink, metrics.clone(), aborted()));
    let (stop_server, server_stopped) = watch::channel(false);
    let server = tokio::spawn(crate::server::serve(listener, observed.clone(), async move {
        let mut rx = server_stopped;
        let _ = rx.wait_for(|s| *s).await;
    }));

    let broken = tokio::select! {
        signal = signals.first() => {
            tracing::info!("{signal}: reading the sources to their ends, shipping what was read, then checkpointing");
            None
        }
        // The encoder ends only when the files source has stopped sending.
        ended = finished(&mut encoding) => Some(match ended {
            Ok(()) => "file reading stopped".to_string(),
            Err(e) => format!("the encoder failed: {e}"),
        }),
        ended = finished(&mut watching) => Some(format!("the Events watcher stopped: {ended:?}")),
        ended = finished(&mut event_shipping) => Some(format!("the Events shipper stopped: {ended:?}")),
        ended = &mut shipping => Some(match ended {
            Ok(Ok(_)) => "the sink stopped".to_string(),
            Ok(Err(e)) => format!("the sink failed: {e}"),
            Err(e) => format!("the sink failed: {e}"),
        }),
    };
    observed.stopping.store(true, Ordering::Relaxed);
    let _ = stop_sources.send(true);
    if let Some(reason) = broken {
        if let Some(f) = &files {
            f.stop_reading();
        }
        if let Ok(mut b) = observed.broken.lock() {
            *b = Some(reason.clone());
        }
        let _ = abort_tx.send(true);
        if let Some(f) = &files {
            checkpoint(f).await;
        }
        let _ = stop_server.send(true);
        return Err(Failure::Broken(reason));
    }
    // The files source reads to the files' ends, flushes and drops its sender: the encoder
    // ends, drops its own; the Events tasks stop (the spool keeps what they had not shipped);
    // then the sink drains.
    if let Some(f) = &files {
        f.drain();
    }
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        for task in [encoding.take(), watching.take(), event_shipping.take()].into_iter().flatten() {
            let _ = task.await;
        }
        (&mut shipping).await
    })
    .await;
    match drained {
        Ok(Ok(Ok(sink::Ended::Drained))) => tracing::info!("everything read was shipped"),
        Ok(other) => tracing::warn!(?other, "the sink ended before draining"),
        Err(_) => {
            if let Some(f) = &files {
                f.stop_reading();
            }
            let _ = abort_tx.send(true);
            tracing::warn!(
                in_flight_bytes = budget.in_flight(),
                "the shutdown grace ran out: what was not acknowledged is read again at the next start"
            );
        }
    }
    if let Some(f) = &files {
        checkpoint(f).await;
    }
    say_unshipped(files.as_deref(), observed.events.as_deref(), termination);
    let _ = stop_server.send(true);
    let _ = server.await;
    Ok(())
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
    budget: Budget,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Bulk>,
    limits: BatchLimits,
) -> Result<(Arc<FilesSource>, JoinHandle<()>), Failure> {
    let framing = FramingOptions {
        record_start: config.record_start.clone(),
        max_record_bytes: usize::try_from(config.max_record_bytes).unwrap_or(usize::MAX),
        flush_timeout: config.flush_timeout,
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
        ..FilesConfig::new(&config.data_dir)
    };
    let files = Arc::new(
        FilesSource::start(files_config, make_frame, budget, records_tx, metrics.clone())
            .map_err(|e| Failure::Broken(format!("cannot start reading files: {e}")))?,
    );
    let batcher = Batcher::new(records_rx, limits, encoder.index().clone());
    Ok((files, tokio::spawn(encode(batcher, tx, encoder, metrics))))
}

/// The Events source: its client, its spool, its two tasks (stopping when `stop` completes).
fn start_events<S>(
    ev: &EventsConfig,
    config: &Config,
    dns: Dns,
    budget: Budget,
    tx: mpsc::Sender<Bulk>,
    limits: BatchLimits,
    stop: impl Fn() -> S,
) -> Result<(Arc<EventMetrics>, events::source::EventsTasks), Failure>
where
    S: std::future::Future<Output = ()> + Send + 'static,
{
    let scope = match events_namespace(ev, config)? {
        ns if ns == "*" => Scope::All,
        ns => Scope::Namespace(ns),
    };
    let options = KubeOptions {
        url: ev.kube_url.clone(),
        token_file: ev.token_file.clone(),
        ca_file: ev.ca_file.clone(),
        scope: scope.clone(),
        page: 500,
        timeout: LIST_TIMEOUT,
        watch_timeout: ev.watch_timeout,
    };
    let client = KubeClient::new(options, dns, USER_AGENT).map_err(|e| match e {
        ClientError::CaFile { .. } | ClientError::CaFileEmpty(_) => {
            Failure::Config(vec![Problem::without_value(config::KUBE_CA_FILE.meta.env, e.to_string())])
        }
        e => Failure::Broken(e.to_string()),
    })?;
    let metrics = Arc::new(EventMetrics::default());
    let shared = Shared::open(&config.data_dir, ev.spool_max_bytes, metrics.clone())
        .map_err(|e| Failure::Broken(format!("cannot open the Events spool: {e}")))?;
    tracing::info!(scope = %scope, url = %agent_core::redact::url(ev.kube_url.as_str()), "shipping Kubernetes Events");
    Ok((metrics, events::source::start(client, shared, tx, limits, budget, stop)))
}

/// Whose Events: the setting, else the service account's namespace, else the pod's (Downward
/// API).
fn events_namespace(ev: &EventsConfig, config: &Config) -> Result<String, Failure> {
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
            Failure::Config(vec![Problem::without_value(config::EVENTS_NAMESPACE.meta.env, why)])
        })
}

async fn checkpoint(files: &FilesSource) {
    if let Err(e) = files.checkpoint().await {
        tracing::error!(error = %e, "cannot write the checkpoint: what was shipped since the last one is sent again at the next start (answered 409)");
    }
}

/// The files source as `/metrics` sees it.
struct Files(Arc<FilesSource>);

/// No files are read (Events alone).
struct NoFiles;

impl SourceStatus for NoFiles {
    fn files(&self) -> Vec<FileLag> {
        Vec::new()
    }
}

impl SourceStatus for Files {
    fn files(&self) -> Vec<FileLag> {
        let lag = |f: FileStatus| FileLag {
            path: f.path,
            lag_bytes: f.lag_bytes,
            oldest_unacknowledged: f.oldest_unacked,
        };
        self.0.status().into_iter().map(lag).collect()
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

/// The data directory must exist (it is created if it can be) and be writable before anything
/// is read: checkpoints that cannot be written would mean shipping everything again.
fn prepare_data_dir(dir: &Path) -> Result<(), Failure> {
    let bad = |e: std::io::Error| {
        let reason = format!("not a writable directory: {e} (mount a volume there, e.g. an emptyDir)");
        Failure::Config(vec![Problem::new(config::DATA_DIR.meta.env, dir.display().to_string(), reason)])
    };
    std::fs::create_dir_all(dir).map_err(bad)?;
    let probe = dir.join(".agent-logship-write-test");
    std::fs::write(&probe, b"").map_err(bad)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
