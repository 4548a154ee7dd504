//! hotrun: build, run, watch and swap a web app on every save.
//!
//! The layout, and which folder may use which, is in `src/README.md`.

pub mod app;
pub mod build;
pub mod commands;
pub mod config;
pub mod core;
pub mod pipeline;
pub mod process;
pub mod runtime;
pub mod text;
pub mod ui;
pub mod watch;
pub mod web;

#[cfg(test)]
mod layout;
#[cfg(test)]
mod proptests;
