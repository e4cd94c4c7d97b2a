//! How fast masking reads a log: `cargo run --release -p agent-core --example redact_speed
//! <log file>` (for example the one `bench/run logship` writes into target/logship-bench/) times
//! [`agent_core::redact::starts`], the test every record agent-logship ships goes through,
//! and [`agent_core::redact::find`] over every record of the file (a record: from a line that
//! begins with a date to the next). Under `valgrind --tool=cachegrind` it counts instructions,
//! which, unlike times, do not move between runs.
#![allow(clippy::print_stdout)]
fn main() {
    let path = std::env::args().nth(1).expect("usage: redact_speed <log file>");
    let text = std::fs::read_to_string(&path).expect("a UTF-8 log file");
    let mut records = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices("\n20") {
        records.push(&text[start..i]);
        start = i + 1;
    }
    records.push(&text[start..]);
    let mb = text.len() as f64 / 1e6;
    let t0 = std::time::Instant::now();
    let held = records.iter().filter(|r| agent_core::redact::starts(r.as_bytes()).any()).count();
    let may = t0.elapsed().as_secs_f64();
    let t0 = std::time::Instant::now();
    let found: usize = records.iter().map(|r| agent_core::redact::find(r).len()).sum();
    let find = t0.elapsed().as_secs_f64();
    println!(
        "{mb:.0} MB, {} records: starts {:.0} MB/s ({held} may hold a credential); find {:.0} MB/s ({found} found)",
        records.len(),
        mb / may,
        mb / find
    );
}
