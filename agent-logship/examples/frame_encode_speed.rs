//! Framing + parsing + masking + encoding + ids of a generated 200 MB Calypso log (one record in
//! five with a 6-line stack trace), single thread, in memory: `cargo run --release -p
//! agent-logship --example frame_encode_speed [time zone]`. Numbers in
//! bench/agent-logship-framing.md. `AGENT_LOGSHIP_REDACT=false` turns masking off, as in the agent;
//! `LOG=<file>` reads that log instead (for example the one `bench/run logship` writes), and under
//! `valgrind --tool=cachegrind` the pair gives masking's cost in instructions, which unlike
//! times do not move between runs.
#![allow(clippy::print_stdout)]
use agent_logship::*;
fn main() {
    let file = std::env::var_os("LOG");
    let mut log = file.as_ref().map(|p| std::fs::read(p).expect("LOG: a readable file")).unwrap_or_default();
    let mut i = 0u64;
    while file.is_none() && log.len() < 200 << 20 {
        log.extend_from_slice(format!("2026-11-27 13:53:{:02},{:03} INFO  [pool-1-thread-{}] [com.calypso.tk.Engine] processed trade {i} in 12 ms\n", i % 60, i % 1000, i % 8).as_bytes());
        if i.is_multiple_of(5) {
            log.extend_from_slice(b"com.calypso.tk.core.PersistenceException: could not save trade\n\tat com.calypso.tk.service.sql.TradeSQL.save(TradeSQL.java:311)\n\tat com.calypso.tk.service.RemoteTradeImpl.save(RemoteTradeImpl.java:88)\nCaused by: java.sql.SQLRecoverableException: IO Error\n\tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:489)\n\t... 12 more\n");
        }
        i += 1;
    }
    let tz = std::env::args()
        .nth(1)
        .map(|z| parse::parse_time_zone(&z).unwrap_or(jiff::tz::TimeZone::UTC))
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let e = encode::Encoder::new(encode::EncodeContext {
        component: "DataServer".into(),
        environment: Some("uat".into()),
        namespace: Some("calypso-uat".into()),
        pod_name: Some("ds-0".into()),
        node_name: Some("node-1".into()),
        container_name: Some("ds".into()),
        host_name: Some("ds-0".into()),
        time_zone: tz,
        target: encode::Target::DataStream,
        format: framing::Format::Log4j,
    });
    let file = record::FileMeta {
        path: "/var/log/calypso/ds.log".into(),
        fingerprint: 1,
        name: "ds.log".into(),
        pod: None,
    };
    let now = std::time::SystemTime::now();
    let cpu0 = cpu();
    let t0 = std::time::Instant::now();
    let mut f = framing::make_frame(framing::Format::Log4j, options())(frame::Position::default());
    let mut recs = Vec::new();
    let mut n = 0usize;
    let mut out = Vec::with_capacity(8 << 20);
    let mut framed = std::time::Duration::ZERO;
    let mut ids = 0u128;
    for c in log.chunks(64 << 10) {
        let tf = std::time::Instant::now();
        f.push(c, tokio::time::Instant::now(), &mut recs);
        framed += tf.elapsed();
        for r in recs.drain(..) {
            e.encode_into(&r, &file, &|| now, &mut out);
            ids ^= encode::document_id("a", "b", "c", "d", r.offset, r.chain);
            out.push(b'\n');
            n += 1;
            if out.len() > 5 << 20 {
                out.clear();
            }
        }
    }
    f.finish(&mut recs);
    let wall = t0.elapsed().as_secs_f64();
    let cpu_s = cpu() - cpu0;
    let mb = log.len() as f64 / 1e6;
    println!(
        "{mb:.0} MB, {n} records: framing alone {:.0} MB/s; framing+parse+encode+id {:.0} MB/s wall, {:.0} MB per CPU-second, {:.2} M records/CPU-s ({})",
        mb / framed.as_secs_f64(),
        mb / wall,
        mb / cpu_s,
        n as f64 / cpu_s / 1e6,
        ids % 7
    );
}
fn options() -> framing::FramingOptions {
    let mut options = framing::FramingOptions::default();
    if std::env::var("AGENT_LOGSHIP_REDACT").is_ok_and(|v| v == "false") {
        options.redactor = None;
    }
    options
}
fn cpu() -> f64 {
    // utime+stime of this process from /proc/self/stat (clock ticks of 1/100 s).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let t: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    t / 100.0
}
