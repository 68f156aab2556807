//! Fanning a push out to its webhooks: the commits each webhook hears of
//! (its branch filter), built into payloads a chunk at a time, and either
//! spooled as deliveries or printed for a dry run.
//!
//! Which commits a push added is `repo.rs`'s business; sending the spool is
//! `send.rs`'s.

use std::io::{self, Write};
use std::rc::Rc;

use crate::config::Verbosity;
use crate::error::Error;
use crate::messages::{Log, Message};
use crate::payload::{self, Limits, Payload};
use crate::repo::{self, Found, Repo};
use crate::settings::{Event, Settings, Webhook};
use crate::spool::{self, Header, Pushed, Spool};

/// Gives the commits each webhook hears of: a range's as they are; a
/// recorded push's walked once for the webhooks without a branch filter, and
/// once more for each webhook with one.
pub enum Source<'a> {
    /// Holds a range given by hand, which every webhook hears of whole.
    Range(Rc<Found>),
    /// Holds a recorded push and its walk for every branch, once made.
    Push {
        /// Gives the recorded push.
        pushed: &'a Pushed,
        /// Holds the walk for every branch, once made.
        all: Option<Rc<Found>>,
        /// Says refs and errors were told already.
        said: bool,
    },
}

impl<'a> Source<'a> {
    /// Starts the source of a recorded push; nothing is walked yet.
    pub fn push(pushed: &'a Pushed) -> Source<'a> {
        Source::Push {
            pushed,
            all: None,
            said: false,
        }
    }

    /// Returns the commits `webhook` hears of (every branch's for `None`).
    /// Refs, warnings and errors are told on the first walk only.
    pub fn found(
        &mut self,
        repo: &Repo,
        webhook: Option<&Webhook>,
        log: &mut Log,
        problems: &mut usize,
    ) -> Result<Rc<Found>, Error> {
        let (pushed, all, said) = match self {
            Source::Range(found) => return Ok(Rc::clone(found)),
            Source::Push { pushed, all, said } => (pushed, all, said),
        };
        let filtered = webhook.is_some_and(|w| w.branches.is_some());
        if let (false, Some(all)) = (filtered, all.as_ref()) {
            return Ok(Rc::clone(all));
        }
        let mut quiet = Log::new(Verbosity::Quiet, Box::new(io::sink()));
        let mut uncounted = 0;
        let (log, problems) = match *said {
            true => (&mut quiet, &mut uncounted),
            false => (log, problems),
        };
        *said = true;
        let found = Rc::new(repo.found(pushed, webhook.filter(|_| filtered), log, problems)?);
        if !filtered {
            *all = Some(Rc::clone(&found));
        }
        Ok(found)
    }
}

/// Spools the payloads of the pushed commits for every webhook that wants
/// them, with delivery ids made from `id`, so spooling the same push twice
/// (after a crash) writes the same files.
#[allow(clippy::too_many_arguments)] // each is a different part of the run
pub fn spool_commits(
    spool: &Spool,
    repo: &Repo,
    id: &str,
    repository: &str,
    source: &mut Source,
    settings: &Settings,
    log: &mut Log,
    problems: &mut usize,
) -> Result<(), Error> {
    let webhooks = settings.matching(Event::Push, repository);
    if webhooks.is_empty() {
        return say_unwanted(source, repo, repository, log, problems);
    }
    let mut n = 0;
    let folder = repo.folder();
    for (index, webhook) in webhooks.into_iter().enumerate() {
        let found = source.found(repo, Some(webhook), log, problems)?;
        let mut write = |payload: Payload| {
            let header = Header {
                version: spool::FORMAT_VERSION,
                id: format!("{id}.{n:04}"),
                webhook: webhook.id.clone(),
                event: crate::wire::EVENT_PUSH.to_string(),
                repository: repository.to_string(),
                commits: payload.commits,
                bytes: payload.body.len(),
                path: Some(folder.clone()),
            };
            n += 1;
            spool.write_delivery(&header, &payload.body).map(drop)
        };
        let say = (index == 0).then_some(&mut *log);
        each_payload(repo, &found, repository, limits(webhook), say, &mut write)?;
    }
    Ok(())
}

/// Says that new commits were found but no webhook wants them.
fn say_unwanted(
    source: &mut Source,
    repo: &Repo,
    repository: &str,
    log: &mut Log,
    problems: &mut usize,
) -> Result<(), Error> {
    let found = source.found(repo, None, log, problems)?;
    if !found.is_empty() {
        log.say(Message::NoWebhook {
            repository,
            commits: found.len(),
        });
    }
    Ok(())
}

/// Builds the payloads of the found commits in order, describing at most
/// one payload's worth of commits at a time, and hands each to `each`.
/// Commits are listed on `say` when it is given.
fn each_payload(
    repo: &Repo,
    found: &Found,
    repository: &str,
    limits: Limits,
    mut say: Option<&mut Log>,
    each: &mut dyn FnMut(Payload) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut start = 0;
    while start < found.len() {
        let end = found.len().min(start + limits.max_commits);
        let commits = repo.describe(found, start..end)?;
        if let Some(log) = say.as_deref_mut() {
            repo::say_commits(&commits, log);
        }
        for payload in payload::build(repository, &commits, limits)? {
            each(payload)?;
        }
        start = end;
    }
    Ok(())
}

/// Returns the payload limits for a webhook.
fn limits(webhook: &Webhook) -> Limits {
    Limits {
        max_commits: webhook.max_commits,
        ..Limits::default()
    }
}

/// Prints each payload on its own line of stdout, as it would be sent to
/// each wanted webhook; with no settings file, as it would be built.
pub fn dry_run(
    repo: &Repo,
    settings: Option<&Settings>,
    repository: &str,
    source: &mut Source,
    log: &mut Log,
    problems: &mut usize,
    stdout: &mut dyn Write,
) -> Result<(), Error> {
    let targets: Vec<Option<&Webhook>> = match settings {
        None => vec![None],
        Some(settings) => settings
            .matching(Event::Push, repository)
            .into_iter()
            .map(Some)
            .collect(),
    };
    if targets.is_empty() {
        return say_unwanted(source, repo, repository, log, problems);
    }
    for (index, target) in targets.into_iter().enumerate() {
        let found = source.found(repo, target, log, problems)?;
        let webhook = target.map(|w| w.id.as_str());
        let limits = target.map_or_else(Limits::default, limits);
        let mut sizes = Vec::new();
        let mut print = |payload: Payload| {
            sizes.push((payload.commits, payload.body.len()));
            let line = stdout.write_all(&payload.body);
            line.and_then(|()| stdout.write_all(b"\n"))
                .map_err(Error::Stdout)
        };
        let say = (index == 0).then_some(&mut *log);
        let printed = each_payload(repo, &found, repository, limits, say, &mut print);
        for (commits, bytes) in sizes {
            log.say(Message::DryRun {
                webhook,
                commits,
                bytes,
            });
        }
        closed_quietly(printed)?;
    }
    closed_quietly(stdout.flush().map_err(Error::Stdout))
}

/// Ends a listing whose reader went away (`| head`) without an error, as
/// command-line tools do; any other failure to write is one.
fn closed_quietly(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(Error::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
