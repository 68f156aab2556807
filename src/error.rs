//! The one error type of the library, with a variant per stage of a run.
//!
//! Each variant carries what an administrator needs to act: a path, a line,
//! a ref, a commit id or a command. Printing the chain of causes is left to
//! `main.rs`; a variant's own text never repeats its source.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Lists everything that can stop a run or a part of it.
#[derive(Debug)]
pub enum Error {
    /// Reports a command line that asks for something impossible.
    Usage(String),
    /// Reports that no configuration file could be found.
    NoConfig {
        /// The places that were looked at, in order.
        tried: Vec<String>,
    },
    /// Reports a configuration file that could not be read.
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why reading it failed.
        source: io::Error,
    },
    /// Reports a configuration file that was read but is not valid.
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the webhook and field where there is one.
        message: String,
    },
    /// Reports that standard input could not be read.
    Stdin(io::Error),
    /// Reports a line of standard input that is not a ref update.
    Input {
        /// The line number, counting from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Reports a failed repository operation.
    Git {
        /// What was being done, naming the ref or commit.
        context: String,
        /// The libgit2 error.
        source: git2::Error,
    },
    /// Reports a failed Mercurial command or output that could not be read.
    Hg {
        /// The command line that was run.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// Reports a payload that could not be built.
    Payload(serde_json::Error),
    /// Reports that standard output could not be written.
    Stdout(io::Error),
    /// Reports a spool file or folder that could not be written or read.
    Spool {
        /// The file or folder.
        path: PathBuf,
        /// What was being done to it.
        doing: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}

impl Error {
    /// Builds a `Git` error from what was being done and the libgit2 error.
    pub fn git(context: impl Into<String>) -> impl FnOnce(git2::Error) -> Error {
        let context = context.into();
        move |source| Error::Git { context, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => f.write_str(message),
            Error::NoConfig { tried } => write!(
                f,
                "no configuration file found (looked at {}); give --config PATH, \
                 set RBG_NOTIFY_CONFIG, or set the repository's rbgateway.config",
                tried.join(", ")
            ),
            Error::ConfigRead { path, .. } => write!(f, "{}", path.display()),
            Error::Config { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Stdin(_) => f.write_str("reading ref updates from standard input"),
            Error::Input { line, message } => write!(f, "stdin line {line}: {message}"),
            // libgit2's own text ends with "; class=…; code=…", which says
            // nothing to an administrator, so only its message is shown.
            Error::Git { context, source } => write!(f, "{context}: {}", source.message()),
            Error::Hg { command, message } => write!(f, "`{command}`: {message}"),
            Error::Payload(_) => f.write_str("building the payload"),
            Error::Stdout(_) => f.write_str("writing to standard output"),
            Error::Spool { path, doing, .. } => write!(f, "{doing} {}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ConfigRead { source, .. } | Error::Stdin(source) | Error::Stdout(source) => {
                Some(source)
            }
            Error::Spool { source, .. } => Some(source),
            Error::Payload(source) => Some(source),
            _ => None,
        }
    }
}

/// Formats an error and its chain of causes as one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        match cause.downcast_ref::<io::Error>() {
            Some(io) => text.push_str(&io_text(io)),
            None => text.push_str(&cause.to_string()),
        }
        next = cause.source();
    }
    text
}

/// Describes an I/O error in our message style: lowercase, without Rust's
/// "(os error N)" suffix.
pub fn io_text(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_chain_in_our_style() {
        let error = Error::ConfigRead {
            path: "/etc/rbg-notify/config.json".into(),
            source: io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            chain(&error),
            "/etc/rbg-notify/config.json: no such file or directory"
        );
    }
}
