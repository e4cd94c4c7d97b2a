//! What the test doubles share: the start of their binaries (calypso-sim, es-sim, kube-sim) —
//! flags parsed as the agents parse theirs, logging from `AGENT_LOG` / `AGENT_LOG_FORMAT` — the
//! whole life of the HTTP doubles' binaries ([`serve`]: es-sim, kube-sim), and their
//! [`listener`] that goes down and comes back.

pub mod listener;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use agent_core::Exit;
use agent_core::config::{Problems, process_vars};
use agent_core::logging::Logging;
use agent_core::shutdown::Signals;

/// Parses the command line into `C` and starts logging; `Err` is the exit code for `--help`,
/// `--version` or a usage error (already reported).
pub fn begin<C: clap::Parser>() -> Result<C, ExitCode> {
    let cli: C = agent_core::cli::parse(std::env::args_os()).map_err(|stop| ExitCode::from(stop.exit))?;
    let vars = process_vars();
    match Logging::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(logging) => logging.init(),
        Err(problems) => {
            Logging::default().init();
            tracing::error!("{}", Problems(problems));
            return Err(Exit::Usage.into());
        }
    }
    Ok(cli)
}

/// An HTTP double as its binary runs it: started from options, stopped by `POST /_sim/exit` or a
/// signal.
// The binaries drive it on their own runtime with `block_on`: nothing needs the futures `Send`.
#[allow(async_fn_in_trait)]
/// Its listener's controls (the URL, the exit request) come with it, by `Deref`.
pub trait Served: Sized + std::ops::Deref<Target = std::sync::Arc<listener::Listener>> {
    /// The binary's name, for the line on stdout.
    const NAME: &'static str;
    type Options;
    /// Where the options say to listen (for the error when that fails).
    fn listen(opts: &Self::Options) -> SocketAddr;
    async fn start(opts: Self::Options) -> std::io::Result<Self>;
    /// Logs the one "stopped" line with what it served.
    fn log_stopped(&self);
}

/// The whole `main` of an HTTP double's binary: flags ([`begin`]), then `options` (`Err`: a
/// usage error, exit 64), a two-thread runtime (the benchmark pushes hundreds of MB through
/// es-sim while the shipper runs), the double started, the one stdout line tests, the demo and
/// the benchmark read the address from (`<name> listening on <url>`), then until exit is
/// requested or the first SIGTERM/SIGINT. 0 then; 70 when it cannot listen.
pub fn serve<D: Served, C: clap::Parser>(options: impl FnOnce(C) -> Result<D::Options, String>) -> ExitCode {
    let cli: C = match begin() {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    let opts = match options(cli) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Usage.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return Exit::Software.into();
        }
    };
    runtime.block_on(run::<D>(opts)).into()
}

async fn run<D: Served>(opts: D::Options) -> Exit {
    let signals = match Signals::install(None) {
        Ok(signals) => signals,
        Err(error) => {
            tracing::error!(%error, "cannot install the signal handlers");
            return Exit::Software;
        }
    };
    let listen = D::listen(&opts);
    let double = match D::start(opts).await {
        Ok(double) => double,
        Err(error) => {
            tracing::error!(%error, %listen, "cannot listen");
            return Exit::Software;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{} listening on {}", D::NAME, double.url()).and_then(|()| out.flush()).is_err() {
        tracing::warn!("cannot write the listening line to stdout");
    }
    drop(out);
    tokio::select! {
        () = double.exit_requested() => tracing::info!("exit requested"),
        signal = signals.first() => tracing::info!(signal, "stopping"),
    }
    double.log_stopped();
    // Connections finish their answer in flight; dropping the double then stops it.
    double.down().await;
    drop(double);
    Exit::Ok
}
