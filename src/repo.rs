//! The repository a run works on, git or Mercurial, behind one face: its
//! name, its settings, where its spool lives, how a push is recorded, and
//! how a recorded push or a range becomes payload commits.
//!
//! The details live in `git.rs`/`walk.rs` and `hg.rs`; this file only
//! chooses between them.

use std::io::BufRead;
use std::ops;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use crate::config::{self, Config, Env, Mode, Source};
use crate::error::Error;
use crate::ledger::State;
use crate::messages::{Log, Message};
use crate::payload::Commit;
use crate::refs::{self, Range, RefUpdate};
use crate::settings::{Settings, Webhook};
use crate::spool::Pushed;
use crate::{git, hg, walk, wire};

/// Holds an open repository.
pub enum Repo {
    /// Holds a git repository.
    Git(Repository),
    /// Holds a Mercurial repository and its `[rbgateway]` settings.
    Hg(hg::Repo, hg::Settings),
}

/// Holds the settings file a run found and read, and how it was found.
#[derive(Debug)]
pub struct Loaded {
    /// Names the file.
    pub path: PathBuf,
    /// Tells how it was found.
    pub source: Source,
    /// Holds what it says.
    pub settings: Settings,
}

/// Holds what reading a push found, before anything is walked.
pub struct Read {
    /// Describes the push to record, or `None` when it changed nothing
    /// worth recording (only deletions, or no usable lines).
    pub pushed: Option<Pushed>,
    /// Lists the input that could not be read; the rest still counts.
    pub errors: Vec<Error>,
}

impl Repo {
    /// Opens the repository the mode reads: Mercurial for a changegroup,
    /// git for post-receive, and for the other modes whichever
    /// repository is nearest the current folder.
    pub fn open(mode: &Mode, env: &Env) -> Result<Repo, Error> {
        let hg = match mode {
            Mode::Changegroup => true,
            Mode::PostReceive => false,
            Mode::Range { .. } | Mode::Retry | Mode::Check | Mode::Ping { .. } => {
                nearest_is_hg(env)
            }
        };
        if hg {
            let repo = hg::open(env)?;
            let settings = repo.settings()?;
            return Ok(Repo::Hg(repo, settings));
        }
        git::open(env).map(Repo::Git)
    }

    /// Finds and reads the settings file (`config.rs` says where it is
    /// looked for); `None` when there is none to find.
    pub fn load_settings(&self, config: &Config, env: &Env) -> Result<Option<Loaded>, Error> {
        let own = self.settings_path(env)?;
        let Some((path, source)) = config::locate_settings(config, env, own) else {
            return Ok(None);
        };
        let settings = Settings::load(&path)?;
        Ok(Some(Loaded {
            path,
            source,
            settings,
        }))
    }

    /// Returns the settings file the repository's own setting names, and
    /// that setting's key.
    pub fn settings_path(&self, env: &Env) -> Result<Option<(PathBuf, &'static str)>, Error> {
        match self {
            Repo::Git(repo) => git::settings_path(repo, env),
            Repo::Hg(repo, settings) => Ok(hg::settings_path(repo, settings, env)),
        }
    }

    /// Names the repository setting that can name the settings file.
    pub fn settings_key(&self) -> &'static str {
        match self {
            Repo::Git(_) => wire::GIT_KEY_CONFIG,
            Repo::Hg(..) => wire::HG_KEY_CONFIG,
        }
    }

    /// Returns the repository's own folder (`.git`, the bare repository, or
    /// `.hg`), which holds the default spool.
    pub fn folder(&self) -> PathBuf {
        let folder = match self {
            Repo::Git(repo) => repo.commondir().to_path_buf(),
            Repo::Hg(repo, _) => repo.root().join(".hg"),
        };
        folder.canonicalize().unwrap_or(folder)
    }

    /// Refuses a run by root in a repository another user owns: the files
    /// it would keep there (spool, ledger) would be root's, and the hooks,
    /// which run as the owner, could no longer write them.
    pub fn check_owner(&self) -> Result<(), Error> {
        use std::os::unix::fs::MetadataExt;
        let folder = self.folder();
        let uid = |path: &Path| std::fs::metadata(path).map(|m| m.uid()).ok();
        match (uid(Path::new("/proc/self")), uid(&folder)) {
            (Some(0), Some(owner)) if owner != 0 => Err(Error::Usage(format!(
                "{} belongs to user {owner}; run rbg-notify as that user, as its hooks run, \
                 so the files it keeps there stay theirs (e.g. runuser -u <owner> -- rbg-notify --retry)",
                folder.display()
            ))),
            _ => Ok(()),
        }
    }

    /// Reads the push a hook was run for: git's ref updates from `stdin`
    /// with the branch tips before the push, or Mercurial's changegroup.
    pub fn read_push(&self, env: &Env, stdin: &mut dyn BufRead) -> Result<Read, Error> {
        match self {
            Repo::Git(repo) => {
                let (updates, errors) = refs::parse_ref_updates(stdin);
                let tips = walk::pre_push_tips(repo, &updates)?;
                let useful = updates.iter().any(|u| !u.is_deleted());
                let pushed = useful.then(|| Pushed::Git {
                    updates: updates
                        .into_iter()
                        .map(|u| [u.old, u.new, u.name])
                        .collect(),
                    tips: tips
                        .iter()
                        .map(|(name, id)| [name.clone(), id.to_string()])
                        .collect(),
                });
                Ok(Read { pushed, errors })
            }
            Repo::Hg(repo, _) => {
                let (first, last) = hg::changegroup_nodes(env)?;
                // Older Mercurial sets no HG_NODE_LAST: the changegroup ends
                // at the tip, which is pinned now, before later pushes move it.
                let last = match last {
                    Some(last) => last.to_string(),
                    None => repo.node(wire::HG_TIP)?,
                };
                let pushed = Pushed::Hg {
                    first: first.to_string(),
                    last,
                };
                Ok(Read {
                    pushed: Some(pushed),
                    errors: Vec::new(),
                })
            }
        }
    }

    /// Says what the repository holds now, for the ledger: git's branch
    /// and tag tips, or Mercurial's tip.
    pub fn state(&self) -> Result<State, Error> {
        match self {
            Repo::Git(repo) => {
                let kept = [wire::BRANCH_PREFIX, wire::TAG_PREFIX];
                let refs = git::refs(repo, &kept)?;
                let refs = refs.into_iter().map(|(n, id)| (n, id.to_string()));
                Ok(State::Git {
                    refs: refs.collect(),
                })
            }
            Repo::Hg(repo, _) => {
                let (rev, node) = repo.tip()?;
                Ok(State::Hg { rev, node })
            }
        }
    }

    /// Finds the commits of a recorded push, in payload order, as `webhook`
    /// hears of them (its branch filter), or as every branch has them. Refs
    /// that cannot be walked are reported on `log` and counted in
    /// `problems`.
    pub fn found(
        &self,
        pushed: &Pushed,
        webhook: Option<&Webhook>,
        log: &mut Log,
        problems: &mut usize,
    ) -> Result<Found, Error> {
        let only = webhook.filter(|w| w.branches.is_some());
        let accept = |branch: &str| only.is_none_or(|w| w.wants_branch(branch));
        match (self, pushed) {
            (Repo::Git(repo), Pushed::Git { updates, tips }) => {
                let updates: Vec<RefUpdate> = updates
                    .iter()
                    .map(|[old, new, name]| RefUpdate {
                        old: old.clone(),
                        new: new.clone(),
                        name: name.clone(),
                    })
                    .collect();
                let tips: Vec<(String, Oid)> = tips
                    .iter()
                    .filter_map(|[name, id]| Some((name.clone(), Oid::from_str(id).ok()?)))
                    .collect();
                let filter: Option<&dyn Fn(&str) -> bool> = only.map(|_| &accept as _);
                let walked = walk::pushed_with_tips(repo, &updates, &tips, filter);
                for error in &walked.errors {
                    log.say(Message::Error(error));
                }
                *problems += walked.errors.len();
                for warning in walked.warnings {
                    log.say(Message::Warning(warning));
                }
                for (name, commits) in &walked.per_ref {
                    log.say(Message::Ref {
                        name,
                        commits: *commits,
                    });
                }
                Ok(Found::Git(walked.commits))
            }
            (Repo::Hg(repo, _), Pushed::Hg { first, last }) => {
                let mut commits = repo.commits(&format!("{first}:{last}"), None)?;
                // Mercurial names the changesets a push added; a branch
                // filter only picks those of its named branches.
                commits.retain(|c| c.target.branch.as_deref().is_none_or(&accept));
                say_branches(&commits, log);
                Ok(Found::Hg(commits))
            }
            _ => Err(Error::Usage(
                "the spool holds a push recorded for the other kind of repository".to_string(),
            )),
        }
    }

    /// Finds the commits of a range given by hand.
    pub fn range(&self, range: &str, refname: Option<&str>) -> Result<Found, Error> {
        match self {
            Repo::Git(repo) => {
                let range = Range::parse(range).map_err(Error::Usage)?;
                Ok(Found::Git(walk::range(repo, &range, refname)?))
            }
            Repo::Hg(repo, _) => Ok(Found::Hg(repo.commits(&hg::range_revset(range)?, refname)?)),
        }
    }

    /// Describes the found commits at `positions` for a payload, loading
    /// their messages only now, so a huge push is held a chunk at a time.
    pub fn describe(
        &self,
        found: &Found,
        positions: ops::Range<usize>,
    ) -> Result<Vec<Commit>, Error> {
        match (self, found) {
            (Repo::Git(repo), Found::Git(found)) => git::describe_all(repo, &found[positions]),
            (_, Found::Hg(commits)) => Ok(commits[positions].to_vec()),
            (Repo::Hg(..), Found::Git(_)) => Ok(Vec::new()),
        }
    }
}

/// Holds the commits a push or range added, in payload order: git's as ids
/// (messages are loaded a chunk at a time), Mercurial's as read from
/// `hg log`.
pub enum Found {
    /// Lists git commit ids and targets.
    Git(Vec<walk::Found>),
    /// Lists Mercurial commits, already described.
    Hg(Vec<Commit>),
}

impl Found {
    /// Counts the commits.
    pub fn len(&self) -> usize {
        match self {
            Found::Git(found) => found.len(),
            Found::Hg(commits) => commits.len(),
        }
    }

    /// Returns whether there are no commits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Prints how many commits landed on each branch, as git's walk prints
/// them per ref.
fn say_branches(commits: &[Commit], log: &mut Log) {
    let mut branches: Vec<(&str, usize)> = Vec::new();
    for commit in commits {
        let branch = commit.target.branch.as_deref().unwrap_or_default();
        match branches.iter_mut().find(|(name, _)| *name == branch) {
            Some((_, count)) => *count += 1,
            None => branches.push((branch, 1)),
        }
    }
    for (name, commits) in branches {
        log.say(Message::Ref { name, commits });
    }
}

/// Prints a line per commit when asked to be verbose.
pub fn say_commits(commits: &[Commit], log: &mut Log) {
    if !log.verbose() {
        return;
    }
    for commit in commits {
        let summary = commit.message.lines().next().unwrap_or("");
        log.say(Message::Commit {
            id: &commit.id,
            summary,
        });
    }
}

/// Returns whether a `.hg` folder is nearer the current folder than any
/// git repository found from there; a tie goes to git.
fn nearest_is_hg(env: &Env) -> bool {
    if env.var("GIT_DIR").is_some() {
        return false;
    }
    let cwd = std::env::current_dir().ok();
    let Some(hg_root) = cwd.as_deref().and_then(hg::find_root) else {
        return false;
    };
    let Ok(repo) = git::open(env) else {
        return true;
    };
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    !canonical(&git::home(&repo)).starts_with(canonical(&hg_root))
}
