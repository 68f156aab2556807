//! The end-to-end test binary: one crate made of modules, so the helpers in
//! `util` are compiled once and shared.

mod check;
mod cli;
mod git_push;
mod harness;
mod hg;
mod install;
mod spool;
mod tls;
mod util;
