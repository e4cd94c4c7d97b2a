//! Shared pieces of the benchmarks (the binaries are in `src/*.rs`, see bench/README.md).

pub mod calypso_log;
pub mod http;
pub mod logship_report;
pub mod open_loop;
pub mod procfs;
pub mod wrk;
