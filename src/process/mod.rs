//! Process lifecycles that can never leak: every build and every app generation runs
//! under a tiny single-threaded helper — hotrun re-executed as `hotrun __supervise` —
//! that
//!
//! - has its own parent-death signal (so it learns when hotrun dies, even by SIGKILL;
//!   PR_SET_PDEATHSIG fires when the *thread* that spawned it exits, which is why hotrun
//!   spawns from its single main thread),
//! - is a child subreaper (so processes the app double-forks come back to it),
//! - gives the command a parent-death signal of its own (SIGKILL), so the app dies
//!   with a helper that is killed, and marks it and all it starts with
//!   `client::MARK`, so hotrun can find and kill what such a helper leaves behind,
//! - starts the command in a new process group (sockets and `LISTEN_PID` are set up in
//!   the child, after fork, where the pid is known),
//! - on a stop request sends the stop signal to that group, waits the stop timeout,
//!   then SIGKILLs the group and every remaining descendant, reaps them all, and exits.
//!
//! It reports to hotrun on a status pipe: `started PID`, then `exited code N` or
//! `exited signal N`, or `failed MESSAGE` when the command could not be executed.
//! The command's stdin, stdout and stderr are the helper's own, so output reaches
//! hotrun without a copy in between.
//!
//! The two sides run in different processes: `client` in hotrun, `helper` in the
//! helper; `status` is what they say to each other. `collect` is the one loop that
//! reads a helper's output and status, for builds and apps alike.

pub mod client;
pub mod collect;
pub mod helper;
pub mod lines;
pub mod procfs;
pub mod status;
