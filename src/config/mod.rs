//! What the user asked for: the command line ([`cli`]), the file
//! ([`file`](mod@file), or an air file through [`air`]), their values parsed
//! ([`values`]) and merged into [`settings`]; the reference of every key
//! ([`reference`](mod@reference)); and what a change of the file means for a running
//! hotrun ([`plan`]).

pub mod air;
pub mod cli;
pub mod file;
pub mod plan;
#[cfg(test)]
mod proptests;
pub mod reference;
pub mod settings;
pub mod values;
