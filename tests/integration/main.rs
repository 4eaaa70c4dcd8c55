//! The integration tests, one module per topic, in one test crate: one binary to compile and
//! link against Burn instead of one per file. `cargo test --test integration MODULE::` runs one
//! topic (for example `cargo test --test integration cli::`).

#[path = "../common/mod.rs"]
mod common;

mod analysis;
mod cli;
mod data;
mod fourier;
mod interop;
mod io;
mod llc;
mod methods;
mod model;
mod notebook_model;
mod open;
mod operations;
mod progress;
mod report;
mod run;
mod sweep;
mod training;
