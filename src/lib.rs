//! rbg-notify tells Review Board, or any webhook receiver, which commits a
//! push added to a self-hosted git or Mercurial repository.
//!
//! A run reads the push (`repo.rs`, with `refs.rs`, `walk.rs` and `git.rs`
//! for git, `hg.rs` for Mercurial) and records it in the spool
//! (`spool.rs`). It then takes in what the repository gained since the
//! ledger was written (`ledger.rs`), which covers recorded pushes and any
//! push whose hook died, turns that into payloads for every webhook of the
//! settings file (`settings.rs`) that wants them (`fanout.rs`,
//! `payload.rs`), spools each one, and sends what the spool holds
//! (`send.rs`, `deliver.rs`, `sign.rs`, with the CA files of `tls.rs`).
//! This file only strings those steps together; `main.rs` turns the command
//! line into a `Config` and the result into an exit status.

#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod error;
pub mod exit;
pub mod fanout;
mod fields;
pub mod git;
pub mod hg;
pub mod ledger;
pub mod messages;
pub mod naming;
pub mod payload;
pub mod ping;
pub mod proxy;
pub mod refs;
pub mod repo;
pub mod send;
pub mod settings;
pub mod sign;
pub mod spool;
pub mod tls;
pub mod walk;
pub mod wire;

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use crate::config::{Config, Env, Mode};
use crate::error::{chain, Error};
use crate::exit::ExitStatus;
use crate::fanout::{dry_run, spool_commits, Source};
use crate::ledger::Ledger;
use crate::messages::{Log, Message};
use crate::proxy::Proxies;
use crate::repo::{Found, Loaded, Repo};
use crate::send::Sending;
use crate::settings::Settings;
use crate::spool::{Problem, PushRecord, Pushed, Spool};

/// Tells how a run went, for the exit status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Counts the deliveries that got a 2xx answer.
    pub delivered: usize,
    /// Counts the webhooks with deliveries left waiting in the spool.
    pub failed: usize,
    /// Counts the input lines, refs and files that could not be used.
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

/// Holds what every step of a run needs.
struct Run<'a> {
    config: &'a Config,
    env: &'a Env,
    repo: Repo,
    name: String,
    started: Instant,
    report: Report,
    /// Names a configured spool folder found unwritable in this run.
    broken_spool: Option<PathBuf>,
    /// Holds the settings file as read at the start, until a mode takes it.
    loaded: Result<Option<Loaded>, Error>,
}

/// Runs rbg-notify: reads the push or range `config` describes, records it,
/// then delivers what the spool holds, or only prints the payloads for a
/// dry run. Messages go to `log`; only a dry run writes to `stdout`.
///
/// When the settings name a CA file, it sets `SSL_CERT_FILE` (see
/// `tls.rs`), so call it before the process starts any other thread.
pub fn run(
    config: &Config,
    env: &Env,
    stdin: &mut dyn BufRead,
    log: &mut Log,
    stdout: &mut dyn Write,
) -> Result<Report, Error> {
    let started = Instant::now();
    let repo = Repo::open(&config.mode, env)?;
    let writes = match config.mode {
        Mode::PostReceive | Mode::Changegroup | Mode::Range { .. } => !config.dry_run,
        Mode::Retry => true,
        Mode::Check | Mode::Ping { .. } => false,
    };
    if writes {
        repo.check_owner()?;
    }
    // Read once: naming may need it (rb-gateway's repository list), and so
    // does every mode. An error waits for the mode that needs the file.
    let loaded = repo.load_settings(config, env);
    let settings = loaded.as_ref().ok().and_then(Option::as_ref);
    let name = naming::resolve(&repo, config, settings.map(|l| &l.settings))?.name;
    log.say(Message::Repository { name: &name });
    let mut run = Run {
        config,
        env,
        repo,
        name,
        started,
        report: Report::default(),
        broken_spool: None,
        loaded,
    };
    run.trust_ca_files(log);

    match &config.mode {
        Mode::Range { range, refname } => {
            let found = run.repo.range(range, refname.as_deref())?;
            run.replay(found, log, stdout)?;
        }
        Mode::Retry => run.retry(log)?,
        Mode::Check => {
            let loaded = run.take_settings()?;
            run.report = check::check(&run.repo, config, env, loaded, stdout)?;
        }
        Mode::Ping { webhook } => {
            let loaded = run.take_settings()?;
            run.report = ping::ping(&run.repo, config, env, loaded, webhook.as_deref(), log)?;
        }
        Mode::PostReceive | Mode::Changegroup => run.hook(stdin, log, stdout)?,
    }
    Ok(run.report)
}

impl Run<'_> {
    /// Makes the settings' CA files trusted by this run's HTTPS deliveries.
    /// A run that sends nothing (`--check`, `--dry-run`) leaves the
    /// repository and the environment alone. When the bundle of several
    /// cannot be written, the first is trusted alone, and deliveries that
    /// need another wait in the spool.
    fn trust_ca_files(&mut self, log: &mut Log) {
        if self.config.dry_run || self.config.mode == Mode::Check {
            return;
        }
        let Ok(Some(loaded)) = &self.loaded else {
            return;
        };
        let files = loaded.settings.ca_files();
        let file = match tls::cert_file(&loaded.settings, &self.repo.folder()) {
            Ok(file) => file,
            Err(error) => {
                log.say(Message::Error(&error));
                self.report.problems += 1;
                let first = files.first().map(|f| f.to_path_buf());
                if let Some(first) = &first {
                    let only = format!("only {} is trusted in this run", first.display());
                    log.say(Message::Warning(only));
                }
                first
            }
        };
        if let Some(file) = file {
            // SAFETY: `run` is called before any other thread starts, and
            // nothing before this starts one: libgit2's and the HTTP
            // client's threads come with the walk and the deliveries.
            unsafe { tls::trust(&file) };
        }
    }

    /// Handles a VCS hook: records the push first, then sends.
    fn hook(
        &mut self,
        stdin: &mut dyn BufRead,
        log: &mut Log,
        stdout: &mut dyn Write,
    ) -> Result<(), Error> {
        let read = self.repo.read_push(self.env, stdin)?;
        for error in &read.errors {
            log.say(Message::Error(error));
        }
        self.report.problems += read.errors.len();
        let settings = self.settings(log);

        if self.config.dry_run {
            let Some(pushed) = read.pushed else {
                return Ok(());
            };
            let settings = settings?;
            return self.print(settings.as_ref(), &mut Source::push(&pushed), log, stdout);
        }

        // Nothing is sent before the push is on disk, so even a settings
        // file that cannot be read loses nothing: the push waits for it.
        let settings = settings.and_then(|s| s.ok_or_else(|| self.not_found()));
        let dir = self.spool_dir(settings.as_ref().ok());
        let record = read.pushed.map(|push| self.push_record(push));
        let spool = self.record(&dir, record.as_ref(), log)?;
        let settings = match settings {
            Ok(settings) => settings,
            Err(error) if record.is_none() => return Err(error),
            Err(error) => {
                self.report.problems += 1;
                let reason = chain(&error);
                log.say(Message::PushKept {
                    spool: spool.dir(),
                    reason: &reason,
                });
                return Ok(());
            }
        };
        self.work(&settings, log)?;
        Ok(())
    }

    /// Records a push in the spool at `dir`. When that folder cannot be
    /// written, says so and records it in the repository's own spool
    /// instead, which every later run and `--retry` also work through;
    /// returns the spool used.
    fn record(
        &mut self,
        dir: &Path,
        record: Option<&PushRecord>,
        log: &mut Log,
    ) -> Result<Spool, Error> {
        let write = |dir: &Path| -> Result<Spool, Error> {
            let spool = Spool::open(dir)?;
            if let Some(record) = record {
                spool.record_push(record)?;
            }
            Ok(spool)
        };
        let error = match write(dir) {
            Ok(spool) => return Ok(spool),
            Err(error) => error,
        };
        let inside = self.spool_dir(None);
        if inside == dir {
            return Err(error);
        }
        log.say(Message::Error(&error));
        self.report.problems += 1;
        self.broken_spool = Some(dir.to_path_buf());
        let spool = write(&inside)?;
        log.say(Message::Warning(format!(
            "using {} until the spool folder can be written",
            inside.display()
        )));
        Ok(spool)
    }

    /// Handles `--range`: spools the commits for every wanted webhook, then
    /// sends, or prints them for a dry run.
    fn replay(&mut self, found: Found, log: &mut Log, stdout: &mut dyn Write) -> Result<(), Error> {
        // An administrator replaying a range means that range: branch
        // filters do not apply to it.
        let mut source = Source::Range(Rc::new(found));
        let settings = self.settings(log)?;
        if self.config.dry_run {
            return self.print(settings.as_ref(), &mut source, log, stdout);
        }
        let settings = settings.ok_or_else(|| self.not_found())?;
        let spool = Spool::open(&self.spool_dir(Some(&settings)))?;
        let id = spool::new_id();
        let problems = &mut self.report.problems;
        let (repo, name) = (&self.repo, &self.name);
        spool_commits(
            &spool,
            repo,
            &id,
            name,
            &mut source,
            &settings,
            log,
            problems,
        )?;
        self.work(&settings, log)?;
        Ok(())
    }

    /// Prints the payloads of `source` for a dry run.
    fn print(
        &mut self,
        settings: Option<&Settings>,
        source: &mut Source,
        log: &mut Log,
        stdout: &mut dyn Write,
    ) -> Result<(), Error> {
        let problems = &mut self.report.problems;
        dry_run(
            &self.repo, settings, &self.name, source, log, problems, stdout,
        )
    }

    /// Handles `--retry`: sends what the spool holds and says what waits.
    fn retry(&mut self, log: &mut Log) -> Result<(), Error> {
        let settings = self.settings(log)?.ok_or_else(|| self.not_found())?;
        for (spool, delivered, waiting) in self.work(&settings, log)? {
            log.say(Message::Spool {
                delivered,
                waiting,
                spool: spool.dir(),
            });
        }
        Ok(())
    }

    /// Loads the settings file, or `None` when there is none to find.
    fn settings(&mut self, log: &mut Log) -> Result<Option<Settings>, Error> {
        let Some(loaded) = self.take_settings()? else {
            return Ok(None);
        };
        log.say(Message::Settings {
            path: &loaded.path,
            source: &loaded.source,
        });
        Ok(Some(loaded.settings))
    }

    /// Takes the settings file read at the start; each mode takes it once.
    fn take_settings(&mut self) -> Result<Option<Loaded>, Error> {
        std::mem::replace(&mut self.loaded, Ok(None))
    }

    /// Builds the error for a run that found no settings file.
    fn not_found(&self) -> Error {
        config::settings_not_found(self.repo.settings_key(), self.env)
    }

    /// Returns the folder of the repository's spool: `spool_dir/<name>`
    /// when the settings set `spool_dir`, else inside the repository.
    fn spool_dir(&self, settings: Option<&Settings>) -> PathBuf {
        match settings.and_then(|s| s.spool_dir.as_ref()) {
            Some(dir) => dir.join(&self.name),
            None => self.repo.folder().join(spool::DEFAULT_FOLDER),
        }
    }

    /// Opens the spools to work through: the one inside the repository
    /// when it exists (pushes kept while the settings could not be read
    /// wait there), then the configured one.
    fn spools(&mut self, settings: &Settings, log: &mut Log) -> Result<Vec<Spool>, Error> {
        let inside = self.spool_dir(None);
        let configured = self.spool_dir(Some(settings));
        let mut spools = Vec::new();
        if inside != configured && inside.is_dir() {
            spools.push(Spool::open(&inside)?);
        }
        if self.broken_spool.as_ref() == Some(&configured) {
            return Ok(spools);
        }
        match Spool::open(&configured) {
            Ok(spool) => spools.push(spool),
            Err(error) if !spools.is_empty() => {
                log.say(Message::Error(&error));
                self.report.problems += 1;
            }
            Err(error) => return Err(error),
        }
        Ok(spools)
    }

    /// Works through every spool of the repository: hands the push records
    /// of the others to the last one, the spool this run delivers from,
    /// which takes in what the repository gained since the last run. Sends
    /// what each holds; returns each spool with the deliveries sent and
    /// left waiting.
    fn work(
        &mut self,
        settings: &Settings,
        log: &mut Log,
    ) -> Result<Vec<(Spool, usize, usize)>, Error> {
        let mut spools = self.spools(settings, log)?;
        let Some(main) = spools.pop() else {
            return Ok(Vec::new());
        };
        let mut done = Vec::new();
        for spool in spools {
            let (sent, waiting) = self.process(&spool, Some(&main), settings, log)?;
            done.push((spool, sent, waiting));
        }
        let (sent, waiting) = self.process(&main, None, settings, log)?;
        done.push((main, sent, waiting));
        Ok(done)
    }

    /// Holding the spool's lock, takes in what was pushed (or, with `main`,
    /// hands the push records over to that spool) and sends the spool's
    /// deliveries. Returns the deliveries sent and left waiting.
    fn process(
        &mut self,
        spool: &Spool,
        main: Option<&Spool>,
        settings: &Settings,
        log: &mut Log,
    ) -> Result<(usize, usize), Error> {
        let deadline = self.started + settings.budget;
        let Some(_lock) = spool.lock(deadline)? else {
            self.report.failed += 1;
            let reason = "another rbg-notify run held the spool's lock for the whole time budget";
            log.say(Message::PushKept {
                spool: spool.dir(),
                reason,
            });
            return Ok((0, 0));
        };

        let mut problems = Vec::new();
        match main {
            Some(main) => {
                for (path, record) in spool.push_records(&self.repo.folder(), &mut problems)? {
                    main.record_push(&record)?;
                    spool.remove(&path)?;
                }
            }
            None => self.take_in(spool, settings, deadline, log, &mut problems)?,
        }
        let deliveries = spool.deliveries(&self.name, &self.repo.folder(), &mut problems)?;
        // A file set aside or a push lost needs an administrator's look:
        // the exit status says so too.
        self.report.problems += problems.iter().filter(|p| p.serious).count();
        for problem in problems {
            log.say(Message::Warning(problem.text));
        }

        let proxies = Proxies::new(settings, self.env);
        let how = Sending {
            deadline,
            held_too: self.config.mode == Mode::Retry,
            proxies: &proxies,
        };
        let sent = send::send_spool(spool, deliveries, settings, &how, log);
        self.report.delivered += sent.delivered;
        self.report.failed += sent.failed_webhooks;
        Ok((sent.delivered, sent.waiting))
    }

    /// Turns what was pushed into deliveries in `spool`: what the
    /// repository gained since the ledger was written, which covers every
    /// push record, or the push records alone when the ledger cannot be
    /// kept.
    fn take_in(
        &mut self,
        spool: &Spool,
        settings: &Settings,
        deadline: Instant,
        log: &mut Log,
        problems: &mut Vec<Problem>,
    ) -> Result<(), Error> {
        let folder = self.repo.folder();
        let mut seen = HashSet::new();
        let mut first = true;
        // Look again after each pass: a push recorded meanwhile by a run
        // that is waiting for the lock is taken in by this one.
        loop {
            let records = spool.push_records(&folder, problems)?;
            let fresh: Vec<_> = records
                .into_iter()
                .filter(|(_, r)| seen.insert(r.id.clone()))
                .collect();
            if fresh.is_empty() && !first {
                return Ok(());
            }
            first = false;
            match self.ledger_in(&fresh, deadline, problems) {
                Ok((ledger, _lock, unwritten)) => {
                    self.expand_pending(spool, &fresh, ledger, unwritten, settings, log)?
                }
                Err(error) => {
                    log.say(Message::Warning(format!(
                        "{}; a push whose hook died before recording it is not found \
                         until the ledger can be kept",
                        chain(&error)
                    )));
                    for (path, record) in &fresh {
                        if self.expand(spool, record, settings, log) {
                            spool.remove(path)?;
                        }
                    }
                }
            }
            if fresh.is_empty() {
                return Ok(());
            }
        }
    }

    /// Writes down in the ledger what the repository gained since it was
    /// last written, as one pending push, which the push records in
    /// `records` are part of. Without a ledger yet, starts one with the
    /// records as its pending pushes, which stand for themselves until it
    /// is written, after they have become deliveries. Returns the ledger,
    /// with its lock, and whether it is still to be written.
    fn ledger_in(
        &mut self,
        records: &[(PathBuf, PushRecord)],
        deadline: Instant,
        problems: &mut Vec<Problem>,
    ) -> Result<(Ledger, ledger::Lock, bool), Error> {
        let folder = self.repo.folder();
        let kept = Ledger::kept(&folder);
        let Some(lock) = Ledger::lock(&folder, deadline)? else {
            return Err(Error::Usage(format!(
                "another rbg-notify run held {} for the whole time budget",
                Ledger::file(&folder).display()
            )));
        };
        let mut unreadable = None;
        let ledger = Ledger::read(&folder, &mut unreadable)?;
        if ledger.is_none() && unreadable.is_none() && kept {
            unreadable = Some(format!(
                "{}: missing, though a ledger was kept here; starting a new one, so a push \
                 whose hook died before this run may be missing (replay it with --range)",
                Ledger::file(&folder).display()
            ));
        }
        if let Some(text) = unreadable {
            problems.push(Problem {
                text,
                serious: true,
            });
        }
        // Read after the records were listed: whatever they name is in it.
        let now = self.repo.state()?;
        let Some(mut ledger) = ledger else {
            // No ledger yet: the records are all there is to go by.
            let ledger = Ledger {
                version: spool::FORMAT_VERSION,
                path: folder,
                state: now,
                pending: records.iter().map(|(_, r)| r.clone()).collect(),
            };
            return Ok((ledger, lock, true));
        };
        if ledger.state == now {
            return Ok((ledger, lock, false));
        }
        // One push for all the repository gained, walked against the
        // ledger's branches: records do not stand for their own pushes
        // here, as each was walked against branches that an unrecorded
        // push may have moved. It is written down before it is expanded,
        // so a run killed after that makes the same deliveries again.
        let first: Vec<&str> = records.iter().flat_map(|(_, r)| ledger::named(r)).collect();
        if let Some(push) = ledger::changes(&ledger.state, &now, &first) {
            ledger.pending.push(self.push_record(push));
        }
        ledger.state = now;
        ledger.write()?;
        Ok((ledger, lock, false))
    }

    /// Turns the ledger's pending pushes into deliveries in `spool`, writes
    /// down which are left, then removes the push records it covers.
    fn expand_pending(
        &mut self,
        spool: &Spool,
        records: &[(PathBuf, PushRecord)],
        mut ledger: Ledger,
        unwritten: bool,
        settings: &Settings,
        log: &mut Log,
    ) -> Result<(), Error> {
        if unwritten || !ledger.pending.is_empty() {
            for record in std::mem::take(&mut ledger.pending) {
                if !self.expand(spool, &record, settings, log) {
                    ledger.pending.push(record);
                }
            }
            ledger.write()?;
        }
        for (path, _) in records {
            spool.remove(path)?;
        }
        Ok(())
    }

    /// Makes a push record for a push found in the repository itself.
    fn push_record(&self, push: Pushed) -> PushRecord {
        PushRecord {
            version: spool::FORMAT_VERSION,
            id: spool::new_id(),
            repository: self.name.clone(),
            path: self.repo.folder(),
            push,
        }
    }

    /// Turns one push into spooled deliveries; a push that cannot be read
    /// now is reported, and `false` says it must wait for a later run.
    fn expand(
        &mut self,
        spool: &Spool,
        record: &PushRecord,
        settings: &Settings,
        log: &mut Log,
    ) -> bool {
        let mut source = Source::push(&record.push);
        let problems = &mut self.report.problems;
        let spooled = spool_commits(
            spool,
            &self.repo,
            &record.id,
            &record.repository,
            &mut source,
            settings,
            log,
            problems,
        );
        if let Err(error) = spooled {
            log.say(Message::Error(&error));
            self.report.problems += 1;
            return false;
        }
        true
    }
}
