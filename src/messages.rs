//! Everything a run tells the administrator or the pusher on stderr.
//!
//! Git and Mercurial pass a hook's stderr to the pusher as `remote:` lines
//! (githooks(5)), so every message is one line, prefixed `rbg-notify:`, with
//! no colour. A write that fails (the pusher hung up) is ignored: it must
//! never stop a delivery. Webhooks are named by id; secrets and signatures
//! are never printed.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::config::{Source, Verbosity};
use crate::error::{chain, Error};

/// Lists the messages a run can print.
#[derive(Debug)]
pub enum Message<'a> {
    /// Reports a webhook that answered 2xx.
    Delivered {
        /// Names the webhook.
        webhook: &'a str,
        /// Counts the commits sent.
        commits: usize,
        /// Gives the HTTP status.
        status: u16,
        /// Gives the time the delivery took.
        elapsed: Duration,
    },
    /// Reports a delivery that did not get a 2xx answer.
    Failed {
        /// Names the webhook.
        webhook: &'a str,
        /// Counts the commits not delivered.
        commits: usize,
        /// Says why, without the secret.
        reason: &'a str,
    },
    /// Reports what a dry run would have sent.
    DryRun {
        /// Names the webhook, or `None` when no settings file exists.
        webhook: Option<&'a str>,
        /// Counts the commits.
        commits: usize,
        /// Counts the body's bytes.
        bytes: usize,
    },
    /// Reports new commits that no webhook wants.
    NoWebhook {
        /// Names the repository.
        repository: &'a str,
        /// Counts the commits.
        commits: usize,
    },
    /// Tells which settings file a run uses.
    Settings {
        /// Names the file.
        path: &'a Path,
        /// Tells how it was found.
        source: &'a Source,
    },
    /// Tells the repository name a run uses.
    Repository {
        /// Gives the name.
        name: &'a str,
    },
    /// Reports what one ref update added.
    Ref {
        /// Gives the full ref name.
        name: &'a str,
        /// Counts the new commits reported under it.
        commits: usize,
    },
    /// Reports one commit found.
    Commit {
        /// Gives the full id.
        id: &'a str,
        /// Gives the message's first line.
        summary: &'a str,
    },
    /// Reports something odd that does not stop the run.
    Warning(String),
    /// Reports an error that stops a run or a part of it.
    Error(&'a Error),
}

impl Message<'_> {
    /// Returns the least verbosity at which the message is printed.
    fn level(&self) -> Verbosity {
        match self {
            Message::Failed { .. } | Message::Error(_) => Verbosity::Quiet,
            Message::Delivered { .. }
            | Message::DryRun { .. }
            | Message::NoWebhook { .. }
            | Message::Warning(_) => Verbosity::Normal,
            _ => Verbosity::Verbose,
        }
    }
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Delivered {
                webhook,
                commits,
                status,
                elapsed,
            } => write!(
                f,
                "webhook \"{webhook}\": delivered {} (HTTP {status}, {} ms)",
                plural(*commits, "commit"),
                elapsed.as_millis()
            ),
            Message::Failed {
                webhook,
                commits,
                reason,
            } => write!(
                f,
                "error: webhook \"{webhook}\": {} not delivered: {reason}",
                plural(*commits, "commit")
            ),
            Message::DryRun {
                webhook,
                commits,
                bytes,
            } => {
                let commits = plural(*commits, "commit");
                match webhook {
                    Some(id) => write!(
                        f,
                        "webhook \"{id}\": dry run, would send {commits} ({bytes} bytes)"
                    ),
                    None => write!(
                        f,
                        "dry run without a settings file: payload of {commits} ({bytes} bytes)"
                    ),
                }
            }
            Message::NoWebhook {
                repository,
                commits,
            } => write!(
                f,
                "{} found, but no enabled webhook wants pushes to repository \"{repository}\"",
                plural(*commits, "new commit")
            ),
            Message::Settings { path, source } => {
                write!(f, "settings: {} (from {source})", path.display())
            }
            Message::Repository { name } => write!(f, "repository name: \"{name}\""),
            Message::Ref { name, commits } => {
                write!(f, "{name}: {}", plural(*commits, "new commit"))
            }
            Message::Commit { id, summary } => write!(f, "  {id} {summary}"),
            Message::Warning(text) => write!(f, "warning: {text}"),
            Message::Error(error) => write!(f, "error: {}", chain(*error)),
        }
    }
}

/// Writes messages to a sink, at or below a verbosity.
pub struct Log {
    verbosity: Verbosity,
    sink: Box<dyn Write + Send>,
}

impl Log {
    /// Builds a log that writes to `sink`.
    pub fn new(verbosity: Verbosity, sink: Box<dyn Write + Send>) -> Log {
        Log { verbosity, sink }
    }

    /// Builds a log on the process's stderr.
    pub fn stderr(verbosity: Verbosity) -> Log {
        Log::new(verbosity, Box::new(std::io::stderr()))
    }

    /// Prints a message if the verbosity allows it.
    pub fn say(&mut self, message: Message<'_>) {
        if message.level() <= self.verbosity {
            // A closed stderr (the pusher's connection dropped) must not
            // abort a run that may still deliver, so the result is dropped.
            let _ = writeln!(self.sink, "rbg-notify: {message}");
        }
    }

    /// Returns whether per-commit detail is wanted, so callers can skip
    /// building it.
    pub fn verbose(&self) -> bool {
        self.verbosity >= Verbosity::Verbose
    }
}

/// Writes `n thing` or `n things`.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn filters_by_verbosity_and_prefixes_lines() {
        let out = Shared::default();
        let mut log = Log::new(Verbosity::Quiet, Box::new(out.clone()));
        log.say(Message::Ref {
            name: "refs/heads/main",
            commits: 2,
        });
        log.say(Message::Warning("odd".into()));
        log.say(Message::Failed {
            webhook: "rb",
            commits: 1,
            reason: "HTTP 500 Internal Server Error",
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "rbg-notify: error: webhook \"rb\": 1 commit not delivered: HTTP 500 Internal Server Error\n");
    }

    #[test]
    fn survives_a_closed_stderr() {
        let mut log = Log::new(Verbosity::Verbose, Box::new(Closed));
        log.say(Message::Repository { name: "r" });
        log.say(Message::Warning("still here".into()));
    }
}
