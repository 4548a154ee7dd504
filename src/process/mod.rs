//! Child processes that can never leak: the `__supervise` helper every build and app
//! runs under, its client, and their output read line by line within bounds.

pub mod lines;
pub mod supervisor;
