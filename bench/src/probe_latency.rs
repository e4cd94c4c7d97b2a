//! `probe-latency`: the latency of an HTTP endpoint at a fixed request rate (default 1000
//! requests/s for 10 s over 4 keep-alive connections), open loop: measured from each request's
//! scheduled send time, so queueing behind a slow answer is counted (see `open_loop`). wrk has no
//! rate limit and Debian has no wrk2, whence this.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::Duration;

use calypso_bench::open_loop::{self, Config, Target, quantile};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "probe-latency", version)]
struct Cli {
    /// The endpoint, `http://host:port/path`.
    url: String,
    /// Requests per second, over all connections.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long to send first without measuring.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = match Target::parse(&cli.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("probe-latency: {e}");
            return ExitCode::from(64);
        }
    };
    let cfg = Config {
        target,
        rate: cli.rate,
        duration: cli.duration,
        warmup: cli.warmup,
        connections: cli.connections,
    };
    match open_loop::run(&cfg) {
        Ok(report) => {
            println!(
                "{} at {} requests/s for {} over {} connections:",
                cli.url,
                cli.rate,
                humantime::format_duration(cli.duration),
                cli.connections
            );
            println!("  {}", summary(&report));
            if report.errors > 0 || report.not_ok > 0 {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("probe-latency: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line: the latency quantiles, the generator's own lag, the errors.
fn summary(r: &open_loop::Report) -> String {
    let us = |d: Duration| format!("{:.0} us", d.as_secs_f64() * 1e6);
    format!(
        "{} answers ({:.0}/s): latency p50 {}  p99 {}  p99.9 {}  max {}; from the actual send p99 {}; \
         send lag p99 {}; not 200: {}; errors: {}",
        r.latency.len(),
        r.rate(),
        us(quantile(&r.latency, 0.5)),
        us(quantile(&r.latency, 0.99)),
        us(quantile(&r.latency, 0.999)),
        us(quantile(&r.latency, 1.0)),
        us(quantile(&r.service, 0.99)),
        us(quantile(&r.lag, 0.99)),
        r.not_ok,
        r.errors
    )
}
