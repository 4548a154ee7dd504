//! Integration tests: the real hotrun binary on fixture projects, with real processes,
//! real sockets and real file events. Every wait is on a fact with a deadline. What the
//! tests share with each other and with the benchmark is in `tests/support`
//! (the `hotrun-support` crate).

mod abuse;
mod apps;
mod bluegreen;
mod clients;
mod config;
mod golang;
mod live;
mod loops;
mod output;
mod panel;
mod pipeline;
mod processes;
mod reload;
mod saves;
mod setup;
mod swaps;
mod torture;
mod truth;
mod watching;
mod zeroconf;
