//! Runs `wrk --latency` (Debian's package) and reads its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What `wrk --latency` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkReport {
    pub requests_per_sec: f64,
    pub requests: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    /// `Non-2xx or 3xx responses`.
    pub not_ok: u64,
    /// The `Socket errors:` line, if any.
    pub socket_errors: Option<String>,
}

/// `wrk -t<threads> -c<connections> -d<duration> --latency <url>`.
pub fn run(
    wrk: &Path,
    url: &str,
    threads: u32,
    connections: u32,
    duration: Duration,
) -> Result<WrkReport, String> {
    let out = Command::new(wrk)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", wrk.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&stdout).map_err(|e| format!("{e} in wrk's report:\n{stdout}"))
}

/// Reads wrk's report.
pub fn parse(report: &str) -> Result<WrkReport, String> {
    let mut requests_per_sec = None;
    let mut requests = None;
    let (mut p50, mut p90, mut p99) = (None, None, None);
    let mut not_ok = 0;
    let mut socket_errors = None;
    for line in report.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => requests_per_sec = n.parse::<f64>().ok(),
            [n, "requests", "in", ..] => requests = n.parse::<u64>().ok(),
            ["50%", d] => p50 = duration(d),
            ["90%", d] => p90 = duration(d),
            ["99%", d] => p99 = duration(d),
            ["Non-2xx", "or", "3xx", "responses:", n] => not_ok = n.parse().unwrap_or(u64::MAX),
            ["Socket", "errors:", ..] => socket_errors = Some(line.to_string()),
            _ => {}
        }
    }
    Ok(WrkReport {
        requests_per_sec: requests_per_sec.ok_or("no Requests/sec")?,
        requests: requests.ok_or("no request count")?,
        p50: p50.ok_or("no 50% latency")?,
        p90: p90.ok_or("no 90% latency")?,
        p99: p99.ok_or("no 99% latency")?,
        not_ok,
        socket_errors,
    })
}

/// wrk's durations: `512.00us`, `1.20ms`, `2.00s`, `1.00m`.
fn duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_nanos((secs * 1e9).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 10s test @ http://127.0.0.1:8081/readyz
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.34us  200.12us   5.00ms   80.00%
    Req/Sec    60.00k     2.00k   65.00k    70.00%
  Latency Distribution
     50%  500.00us
     75%  600.00us
     90%  700.00us
     99%    1.20ms
  1200000 requests in 10.00s, 100.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 0
  Non-2xx or 3xx responses: 5
Requests/sec: 120000.00
Transfer/sec:     10.00MB
";
        let r = parse(report).expect("parses");
        assert_eq!(r.requests_per_sec, 120000.0);
        assert_eq!(r.requests, 1_200_000);
        assert_eq!(r.p50, Duration::from_micros(500));
        assert_eq!(r.p90, Duration::from_micros(700));
        assert_eq!(r.p99, Duration::from_micros(1200));
        assert_eq!(r.not_ok, 5);
        assert!(r.socket_errors.is_some_and(|s| s.contains("read 3")));
        assert!(parse("nothing").is_err());
    }
}
