//! rbg-notify tells Review Board, or any webhook receiver, which commits a
//! push added to a self-hosted git or Mercurial repository.
//!
//! A run reads the push (`refs.rs`, `walk.rs`, `git.rs`), builds the
//! payloads (`payload.rs`), and for every webhook of the settings file
//! (`settings.rs`) that wants them, signs and sends them (`sign.rs`,
//! `deliver.rs`). This file only strings those steps together; `main.rs`
//! turns the command line into a `Config` and the result into an exit
//! status.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod deliver;
pub mod error;
pub mod exit;
pub mod git;
pub mod messages;
pub mod payload;
pub mod refs;
pub mod settings;
pub mod sign;
pub mod walk;
pub mod wire;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, Env, Mode};
use crate::deliver::Outcome;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::messages::{Log, Message};
use crate::payload::{Commit, Limits, Payload};
use crate::settings::{Event, Settings, Webhook};

/// Tells how a run went, for the exit status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Counts the webhooks every payload was delivered to.
    pub delivered: usize,
    /// Counts the webhooks with a failed delivery.
    pub failed: usize,
    /// Counts the input lines and refs that could not be read or walked.
    pub problems: usize,
}

impl Report {
    /// Returns the exit status that sums the run up.
    pub fn status(&self) -> ExitStatus {
        let mut status = ExitStatus::Success;
        if self.failed > 0 {
            status = status.merge(ExitStatus::DeliveryFailed);
        }
        if self.problems > 0 {
            status = status.merge(ExitStatus::Error);
        }
        status
    }
}

/// Holds what a push added, read from the repository, before delivery.
struct Push {
    /// Names the repository in the payload.
    repository: String,
    /// Gives the settings file the repository's own settings name, if any,
    /// and the setting's key.
    settings: Option<(PathBuf, &'static str)>,
    /// Names the repository setting that can name the settings file.
    settings_key: &'static str,
    /// Lists the new commits in payload order.
    commits: Vec<Commit>,
}

/// Runs rbg-notify: reads the push `config` describes, then delivers or
/// prints its payloads. Messages go to `log`; only a dry run writes to
/// `stdout`.
pub fn run(
    config: &Config,
    env: &Env,
    stdin: &mut dyn BufRead,
    log: &mut Log,
    stdout: &mut dyn Write,
) -> Result<Report, Error> {
    let mut report = Report::default();
    let push = read_git_push(config, env, stdin, log, &mut report)?;
    log.say(Message::Repository {
        name: &push.repository,
    });

    let located = config::locate_settings(config, env, push.settings.clone());
    let settings = match located {
        Some((path, source)) => {
            log.say(Message::Settings {
                path: &path,
                source: &source,
            });
            Some(Settings::load(&path)?)
        }
        None if config.dry_run => None,
        None => return Err(config::settings_not_found(push.settings_key)),
    };
    if push.commits.is_empty() {
        return Ok(report);
    }

    let payloads = payload::build(&push.repository, &push.commits, Limits::default())?;
    let Some(settings) = settings else {
        print_dry_run(None, &payloads, log, stdout);
        return Ok(report);
    };
    let webhooks = settings.matching(Event::Push, &push.repository);
    if webhooks.is_empty() {
        log.say(Message::NoWebhook {
            repository: &push.repository,
            commits: push.commits.len(),
        });
    }
    for webhook in webhooks {
        if config.dry_run {
            print_dry_run(Some(&webhook.id), &payloads, log, stdout);
        } else if send(webhook, &payloads, log) {
            report.delivered += 1;
        } else {
            report.failed += 1;
        }
    }
    Ok(report)
}

/// Reads a git push: the ref updates on stdin, or the range given by hand.
fn read_git_push(
    config: &Config,
    env: &Env,
    stdin: &mut dyn BufRead,
    log: &mut Log,
    report: &mut Report,
) -> Result<Push, Error> {
    let repo = git::open(env)?;
    let repository = match &config.repository {
        Some(name) => name.clone(),
        None => git::repository_name(&repo)?,
    };
    log.say(Message::Repository { name: &repository });
    let settings = git::settings_path(&repo, env)?;

    let found = match &config.mode {
        Mode::Range { range, refname } => {
            let range = refs::Range::parse(range).map_err(Error::Usage)?;
            walk::range(&repo, &range, refname.as_deref())?
        }
        Mode::PostReceive | Mode::Changegroup => {
            let (updates, errors) = refs::parse_ref_updates(stdin);
            let walked = walk::pushed(&repo, &updates)?;
            for error in errors.iter().chain(&walked.errors) {
                log.say(Message::Error(error));
            }
            report.problems += errors.len() + walked.errors.len();
            for warning in walked.warnings {
                log.say(Message::Warning(warning));
            }
            for (name, commits) in &walked.per_ref {
                log.say(Message::Ref {
                    name,
                    commits: *commits,
                });
            }
            walked.commits
        }
    };

    let mut commits = Vec::with_capacity(found.len());
    for found in found {
        let commit = git::describe(&repo, found.id, found.target)?;
        if log.verbose() {
            let summary = commit.message.lines().next().unwrap_or("");
            log.say(Message::Commit {
                id: &commit.id,
                summary,
            });
        }
        commits.push(commit);
    }
    Ok(Push {
        repository,
        settings,
        settings_key: wire::GIT_KEY_CONFIG,
        commits,
    })
}

/// Prints each payload on its own line of stdout, as it would be sent.
fn print_dry_run(
    webhook: Option<&str>,
    payloads: &[Payload],
    log: &mut Log,
    stdout: &mut dyn Write,
) {
    for payload in payloads {
        log.say(Message::DryRun {
            webhook,
            commits: payload.commits,
            bytes: payload.body.len(),
        });
        // A closed stdout (`| head`) ends the listing, not the run.
        if stdout
            .write_all(&payload.body)
            .and_then(|_| stdout.write_all(b"\n"))
            .is_err()
        {
            return;
        }
    }
    let _ = stdout.flush();
}

/// Sends every payload to one webhook, in order, stopping at the first
/// failure so the receiver never sees a later push before an earlier one.
/// Returns whether all were delivered.
fn send(webhook: &Webhook, payloads: &[Payload], log: &mut Log) -> bool {
    let total: usize = payloads.iter().map(|p| p.commits).sum();
    let mut sent = 0;
    let mut elapsed = Duration::ZERO;
    let mut status = 0;
    for payload in payloads {
        let attempt = deliver::deliver(webhook, wire::EVENT_PUSH, &payload.body);
        elapsed += attempt.elapsed;
        match attempt.outcome {
            Outcome::Delivered { status: s } => {
                status = s;
                sent += payload.commits;
            }
            Outcome::Failed(failure) => {
                let reason = failure.to_string();
                log.say(Message::Failed {
                    webhook: &webhook.id,
                    commits: total - sent,
                    reason: &reason,
                });
                return false;
            }
        }
    }
    log.say(Message::Delivered {
        webhook: &webhook.id,
        commits: sent,
        status,
        elapsed,
    });
    true
}
