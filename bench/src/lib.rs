//! Shared pieces of the benchmarks (the binaries are in `src/*.rs`, see bench/README.md).

pub mod open_loop;
pub mod wrk;
