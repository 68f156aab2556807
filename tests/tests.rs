//! The end-to-end test binary: one crate made of modules, so the helpers in
//! `util` are compiled once and shared.

mod harness;
mod util;
