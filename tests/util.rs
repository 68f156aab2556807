//! Support code for the end-to-end tests: a recording webhook receiver on
//! 127.0.0.1 (plain or HTTPS, with a private CA), git and Mercurial
//! fixtures made with the real `git` and `hg` CLIs, and a guarded way to
//! run the built `rbg-notify` binary.
//!
//! Each concern lives in its own submodule; this file only re-exports them,
//! so tests write `use crate::util::{GitEnv, Receiver, Reply};`. No test here
//! mocks git or the network, and none touches the process environment.

// The test modules each use a different subset of these helpers.
#![allow(dead_code)]

mod command;
mod files;
mod git;
mod hg;
mod proxy;
mod receiver;
mod request;
mod tls;

pub use command::*;
pub use files::*;
pub use git::*;
pub use hg::*;
pub use proxy::*;
pub use receiver::*;
pub use request::*;
pub use tls::*;
