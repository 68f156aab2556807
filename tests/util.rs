//! Support code for the end-to-end tests: a recording webhook receiver on
//! 127.0.0.1, git fixtures made with the real `git` CLI, and a guarded way
//! to run the built `rbg-notify` binary.
//!
//! Each concern lives in its own submodule; this file only re-exports them,
//! so tests write `use crate::util::{GitEnv, Receiver, Reply};`. No test here
//! mocks git or the network, and none touches the process environment.

// The test modules each use a different subset of these helpers.
#![allow(dead_code)]

mod command;
mod git;
mod receiver;
mod request;

pub use command::*;
pub use git::*;
pub use receiver::*;
pub use request::*;
