//! Assembles the pipeline from the configuration and runs it until a signal: files -> frames ->
//! encoder -> sink, acknowledgements back to the files' checkpoints, the probe server beside.
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

use crate::config::{self, Config, Output};
use crate::encode::{EncodeContext, Encoder};
use crate::files::source::Item;
use crate::files::{FileStatus, FilesConfig, FilesSource};
use crate::flow::Budget;
use crate::framing::{self, FramingOptions};
use crate::metrics::{FileLag, Metrics, Observed, SourceStatus};
use crate::setup::{self, SetupOptions};
use crate::sink::client::{ClientError, ClientOptions, EsClient};
use crate::sink::{self, BatchLimits, Batcher, Bulk, EsOptions, EsSink, Sink, StdoutSink};

const USER_AGENT: &str = concat!("agent-logship/", env!("CARGO_PKG_VERSION"));

/// Records waiting for the encoder: few, the budget bounds the bytes.
const CHANNEL: usize = 1024;

/// Batches waiting for the sink: one, ready the moment the sink can take it.
const BATCHES: usize = 1;

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

/// The Elasticsearch client could not be made: a bad CA file is a setting's problem (64); a
/// TLS stack that cannot start is ours (70).
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

/// Runs the pipeline until SIGTERM/SIGINT (then stops gracefully) or until a part fails.
pub async fn run(config: Config, dns: Dns, signals: Signals) -> Result<(), Failure> {
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
                ..EsOptions::new(es.urls.clone(), &config.data_dir)
            };
            let max_in_flight = options.max_in_flight;
            let sink = EsSink::new(&options, dns, metrics.clone()).map_err(client_failure)?;
            Sink::Es { sink: Arc::new(sink), max_in_flight }
        }
    };
    let framing = FramingOptions {
        record_start: config.record_start.clone(),
        max_record_bytes: usize::try_from(config.max_record_bytes).unwrap_or(usize::MAX),
        flush_timeout: config.flush_timeout,
    };
    let make_frame = framing::make_frame(config.format, framing);
    let encoder = Encoder::new(EncodeContext { host_name: host_name(), ..config.origin.clone() });

    let (records_tx, records_rx) = mpsc::channel::<Item>(CHANNEL);
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
        FilesSource::start(files_config, make_frame, budget.clone(), records_tx, metrics.clone())
            .map_err(|e| Failure::Broken(format!("cannot start reading files: {e}")))?,
    );
    let observed = Arc::new(Observed {
        metrics: metrics.clone(),
        budget: budget.clone(),
        sources: Box::new(Files(files.clone())),
        broken: Default::default(),
        stopping: Default::default(),
    });
    tracing::info!(
        paths = %config.paths.join(","),
        output = %match &config.output {
            Output::Stdout => "stdout".to_string(),
            Output::Elasticsearch(es) => es.urls.iter().map(|u| agent_core::redact::url(u.as_str())).collect::<Vec<_>>().join(","),
        },
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "shipping"
    );

    let (batches_tx, batches_rx) = mpsc::channel::<Bulk>(BATCHES);
    let batcher = Batcher::new(records_rx, limits, encoder.index().clone());
    let mut encoding = tokio::spawn(encode(batcher, batches_tx, encoder, metrics.clone()));
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
            tracing::info!("{signal}: reading the files to their ends, shipping what was read, then checkpointing");
            None
        }
        // The encoder ends only when the files source has stopped sending.
        ended = &mut encoding => Some(match ended {
            Ok(()) => "file reading stopped".to_string(),
            Err(e) => format!("the encoder failed: {e}"),
        }),
        ended = &mut shipping => Some(match ended {
            Ok(Ok(_)) => "the sink stopped".to_string(),
            Ok(Err(e)) => format!("the sink failed: {e}"),
            Err(e) => format!("the sink failed: {e}"),
        }),
    };
    observed.stopping.store(true, Ordering::Relaxed);
    if let Some(reason) = broken {
        files.stop_reading();
        if let Ok(mut b) = observed.broken.lock() {
            *b = Some(reason.clone());
        }
        let _ = abort_tx.send(true);
        checkpoint(&files).await;
        let _ = stop_server.send(true);
        return Err(Failure::Broken(reason));
    }
    // The source reads to the files' ends, flushes and drops its sender: the encoder ends,
    // drops its own, and the sink drains.
    files.drain();
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        let _ = (&mut encoding).await;
        (&mut shipping).await
    })
    .await;
    match drained {
        Ok(Ok(Ok(sink::Ended::Drained))) => tracing::info!("everything read was shipped"),
        Ok(other) => tracing::warn!(?other, "the sink ended before draining"),
        Err(_) => {
            files.stop_reading();
            let _ = abort_tx.send(true);
            tracing::warn!(
                in_flight_bytes = budget.in_flight(),
                "the shutdown grace ran out: what was not acknowledged is read again at the next start"
            );
        }
    }
    checkpoint(&files).await;
    let _ = stop_server.send(true);
    let _ = server.await;
    Ok(())
}

async fn checkpoint(files: &FilesSource) {
    if let Err(e) = files.checkpoint().await {
        tracing::error!(error = %e, "cannot write the checkpoint: what was shipped since the last one is sent again at the next start (answered 409)");
    }
}

/// The files source as `/metrics` sees it.
struct Files(Arc<FilesSource>);

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
