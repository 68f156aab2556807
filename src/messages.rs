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
    /// Reports a webhook that answered 2xx to every delivery.
    Delivered {
        /// Names the webhook.
        webhook: &'a str,
        /// Counts the commits sent.
        commits: usize,
        /// Counts the deliveries (payloads) sent.
        deliveries: usize,
        /// Gives the HTTP status.
        status: u16,
        /// Gives the time the delivery took.
        elapsed: Duration,
    },
    /// Reports a webhook with deliveries left in the spool.
    Kept {
        /// Names the webhook.
        webhook: &'a str,
        /// Counts the commits delivered before the failure.
        delivered: usize,
        /// Counts the commits kept in the spool.
        commits: usize,
        /// Says why, without the secret.
        reason: &'a str,
        /// Names the spool folder.
        spool: &'a Path,
        /// Says the receiver refused it, so only `--retry` sends it again.
        held: bool,
    },
    /// Reports a webhook that answered a ping with 2xx.
    Pinged {
        /// Names the webhook.
        webhook: &'a str,
        /// Gives the HTTP status.
        status: u16,
        /// Gives the time the ping took.
        elapsed: Duration,
    },
    /// Reports a webhook that did not answer a ping with 2xx.
    PingFailed {
        /// Names the webhook.
        webhook: &'a str,
        /// Says why, without the secret.
        reason: &'a str,
    },
    /// Reports a failed attempt that is about to be tried again.
    Retrying {
        /// Names the webhook.
        webhook: &'a str,
        /// Says why the attempt failed.
        reason: &'a str,
    },
    /// Reports a push kept in the spool without being sent.
    PushKept {
        /// Names the spool folder.
        spool: &'a Path,
        /// Says why it was not sent now.
        reason: &'a str,
    },
    /// Sums up a `--retry` run.
    Spool {
        /// Counts the deliveries sent.
        delivered: usize,
        /// Counts the deliveries still waiting.
        waiting: usize,
        /// Names the spool folder.
        spool: &'a Path,
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
            Message::Kept { .. }
            | Message::PushKept { .. }
            | Message::PingFailed { .. }
            | Message::Error(_) => Verbosity::Quiet,
            Message::Delivered { .. }
            | Message::DryRun { .. }
            | Message::Pinged { .. }
            | Message::NoWebhook { .. }
            | Message::Retrying { .. }
            | Message::Spool { .. }
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
                deliveries,
                status,
                elapsed,
            } => {
                write!(f, "webhook \"{webhook}\": delivered {}", plural(*commits, "commit"))?;
                if *deliveries > 1 {
                    write!(f, " in {deliveries} payloads")?;
                }
                write!(f, " (HTTP {status}, {} ms)", elapsed.as_millis())
            }
            Message::Kept {
                webhook,
                delivered,
                commits,
                reason,
                spool,
                held,
            } => {
                write!(f, "error: webhook \"{webhook}\": ")?;
                if *delivered > 0 {
                    write!(f, "delivered {}, but ", plural(*delivered, "commit"))?;
                }
                let (commits, spool) = (plural(*commits, "commit"), spool.display());
                match held {
                    false => write!(
                        f,
                        "{commits} not delivered: {reason}; kept in {spool} for the next push \
                         or `rbg-notify --retry`"
                    ),
                    true => write!(
                        f,
                        "{commits} not delivered: {reason}; kept in {spool} on hold: fix the \
                         cause, then run `rbg-notify --retry`"
                    ),
                }
            }
            Message::Pinged {
                webhook,
                status,
                elapsed,
            } => write!(
                f,
                "webhook \"{webhook}\": ping answered (HTTP {status}, {} ms)",
                elapsed.as_millis()
            ),
            Message::PingFailed { webhook, reason } => {
                write!(f, "error: webhook \"{webhook}\": ping failed: {reason}")
            }
            Message::Retrying { webhook, reason } => {
                write!(f, "webhook \"{webhook}\": {reason}; trying again")
            }
            Message::PushKept { spool, reason } => write!(
                f,
                "error: push kept in {} and not sent: {reason}; run `rbg-notify --retry` once fixed",
                spool.display()
            ),
            Message::Spool {
                delivered,
                waiting,
                spool,
            } => write!(
                f,
                "spool {}: {} sent, {} waiting",
                spool.display(),
                plural(*delivered, "delivery"),
                plural(*waiting, "delivery")
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
            // One write per line: stderr is unbuffered, so `writeln!` would
            // send each formatted piece on its own, and Mercurial's ssh
            // transport shows every piece it reads as a `remote:` line.
            let line = format!("rbg-notify: {message}\n");
            // A closed stderr (the pusher's connection dropped) must not
            // abort a run that may still deliver, so the result is dropped.
            let _ = self.sink.write_all(line.as_bytes());
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
    match (n, thing.strip_suffix('y')) {
        (1, _) => format!("1 {thing}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {thing}s"),
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
        log.say(Message::Kept {
            webhook: "rb",
            delivered: 0,
            commits: 1,
            reason: "HTTP 500 Internal Server Error",
            spool: Path::new("/srv/r.git/rbg-notify/spool"),
            held: false,
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "rbg-notify: error: webhook \"rb\": 1 commit not delivered: HTTP 500 Internal Server \
             Error; kept in /srv/r.git/rbg-notify/spool for the next push or `rbg-notify --retry`\n"
        );
    }

    #[test]
    fn survives_a_closed_stderr() {
        let mut log = Log::new(Verbosity::Verbose, Box::new(Closed));
        log.say(Message::Repository { name: "r" });
        log.say(Message::Warning("still here".into()));
    }
}
