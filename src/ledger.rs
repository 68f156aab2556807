//! The ledger: what a repository held when rbg-notify last took its pushes
//! in, so a push whose hook never recorded it is still found.
//!
//! A hook can die before its push record is on disk (killed in its first
//! milliseconds, or never started at all). The repository still holds
//! what was pushed. Every run, holding the spool's lock, compares the
//! repository now (git's branch and tag tips, Mercurial's tip revision)
//! with the ledger and takes the difference in as one push. Push records
//! are then only a fast signal: what they say is in the difference too.
//!
//! Taking a difference in is one atomic write: the new state together with
//! the push it implies, pending. Pending pushes are then turned into
//! deliveries and cleared with a second write. A run killed in between
//! leaves a pending push that the next run turns into the same deliveries,
//! under the same ids, so nothing is lost and a repeat keeps its id.
//!
//! The ledger lives in the repository's folder, beside its spool, whatever
//! spool a run uses, so moving `spool_dir` never reports a push twice.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::spool::{self, PushRecord, Pushed};
use crate::wire;

/// Names the ledger's file inside a repository's git or hg folder.
pub const FILE: &str = "rbg-notify/ledger.json";

/// Names the ledger's lock file inside a repository's git or hg folder.
const LOCK: &str = "rbg-notify/ledger.lock";

/// Says what a repository held, as far as pushes are concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "vcs", rename_all = "lowercase")]
pub enum State {
    /// Gives a git repository's branches and tags, by full ref name, with
    /// the ids they point at.
    Git {
        /// Maps each `refs/heads/` and `refs/tags/` ref to its id.
        refs: BTreeMap<String, String>,
    },
    /// Gives a Mercurial repository's tip, which every changeset added
    /// since has a higher revision number than.
    Hg {
        /// Gives the tip's revision number, -1 for an empty repository.
        rev: i64,
        /// Gives the tip's node.
        node: String,
    },
}

/// Holds the ledger file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Gives the format version.
    pub version: u32,
    /// Gives the repository's folder.
    pub path: PathBuf,
    /// Says what the repository held when pushes were last taken in.
    pub state: State,
    /// Lists pushes taken in but not yet turned into deliveries.
    #[serde(default)]
    pub pending: Vec<PushRecord>,
}

/// Holds the ledger's lock until dropped.
pub struct Lock {
    _lock: spool::Lock,
}

impl Ledger {
    /// Returns the ledger file of the repository whose folder is `folder`.
    pub fn file(folder: &Path) -> PathBuf {
        folder.join(FILE)
    }

    /// Returns whether a ledger was written for the repository at `folder`
    /// before, so that a missing one was removed: the first write leaves a
    /// line in the lock file, which stays.
    pub fn kept(folder: &Path) -> bool {
        fs::metadata(folder.join(LOCK)).is_ok_and(|m| m.len() > 0)
    }

    /// Takes the ledger's lock, waiting until `deadline` at most; `None`
    /// means another run held it all that time.
    pub fn lock(folder: &Path, deadline: std::time::Instant) -> Result<Option<Lock>, Error> {
        let path = folder.join(LOCK);
        spool::create_parent(&path)?;
        Ok(spool::lock_file(&path, deadline)?.map(|lock| Lock { _lock: lock }))
    }

    /// Reads the ledger of the repository at `folder`; `None` when there
    /// is none yet. An unreadable one is renamed aside and reported in
    /// `problem`, and counts as none.
    pub fn read(folder: &Path, problem: &mut Option<String>) -> Result<Option<Ledger>, Error> {
        let path = Ledger::file(folder);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(spool::error(&path, "reading")(e)),
        };
        let why = match serde_json::from_slice::<Ledger>(&bytes) {
            Ok(ledger) if ledger.version > spool::FORMAT_VERSION => {
                format!(
                    "format version {} is newer than this rbg-notify reads",
                    ledger.version
                )
            }
            Ok(ledger) => return Ok(Some(ledger)),
            Err(e) => e.to_string(),
        };
        let mut aside = path.clone().into_os_string();
        aside.push(".broken");
        let kept = fs::rename(&path, &aside).is_ok();
        *problem = Some(format!(
            "{}: unreadable ledger ({why}){}; starting a new one, so a push whose hook \
             died before this run may be missing (replay it with --range)",
            path.display(),
            if kept { "; renamed to *.broken" } else { "" }
        ));
        Ok(None)
    }

    /// Writes the ledger durably, replacing the old one in one rename.
    pub fn write(&self) -> Result<(), Error> {
        let path = Ledger::file(&self.path);
        let bytes = serde_json::to_vec(self).map_err(Error::Payload)?;
        spool::create_parent(&path)?;
        spool::write_atomic(&path, &bytes)?;
        let lock = self.path.join(LOCK);
        if !Ledger::kept(&self.path) {
            let mut file = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&lock)
                .map_err(spool::error(&lock, "opening"))?;
            file.write_all(b"a ledger was written here\n")
                .map_err(spool::error(&lock, "writing"))?;
        }
        Ok(())
    }
}

/// Returns the push that took a repository from `before` to `after`, or
/// `None` when it added nothing (no change, or only deletions). Git refs
/// named in `first` come first, in that order (the order the pushes named
/// them); the others follow by name.
pub fn changes(before: &State, after: &State, first: &[&str]) -> Option<Pushed> {
    match (before, after) {
        (State::Git { refs: old }, State::Git { refs: new }) => {
            let mut names: Vec<&str> = Vec::new();
            let all = old.keys().chain(new.keys()).map(String::as_str);
            for name in first.iter().copied().chain(all) {
                if !names.contains(&name) && old.get(name) != new.get(name) {
                    names.push(name);
                }
            }
            let zero = || "0".repeat(40);
            let updates: Vec<[String; 3]> = names
                .into_iter()
                .map(|name| {
                    let old = old.get(name).cloned().unwrap_or_else(zero);
                    let new = new.get(name).cloned().unwrap_or_else(zero);
                    [old, new, name.to_string()]
                })
                .collect();
            if updates.iter().all(|[_, new, _]| wire::is_null_id(new)) {
                return None;
            }
            let tips = old
                .iter()
                .filter(|(name, _)| name.starts_with(wire::BRANCH_PREFIX))
                .map(|(name, id)| [name.clone(), id.clone()])
                .collect();
            Some(Pushed::Git { updates, tips })
        }
        (State::Hg { rev: old, .. }, State::Hg { rev: new, node }) if new > old => {
            Some(Pushed::Hg {
                first: (old + 1).to_string(),
                last: node.clone(),
            })
        }
        _ => None,
    }
}

/// Returns the ref names a push record names, in its order.
pub fn named(record: &PushRecord) -> Vec<&str> {
    match &record.push {
        Pushed::Git { updates, .. } => updates.iter().map(|[_, _, name]| name.as_str()).collect(),
        Pushed::Hg { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;

    fn git(refs: &[(&str, &str)]) -> State {
        State::Git {
            refs: refs
                .iter()
                .map(|(n, id)| (n.to_string(), id.repeat(40)))
                .collect(),
        }
    }

    fn updates(pushed: &Pushed) -> Vec<(String, String, String)> {
        let Pushed::Git { updates, .. } = pushed else {
            panic!("a git push")
        };
        updates
            .iter()
            .map(|[o, n, r]| (o[..1].to_string(), n[..1].to_string(), r.clone()))
            .collect()
    }

    #[test]
    fn git_difference_is_every_moved_created_and_deleted_ref() {
        let before = git(&[
            ("refs/heads/main", "a"),
            ("refs/heads/gone", "b"),
            ("refs/tags/v1", "c"),
        ]);
        let after = git(&[
            ("refs/heads/main", "d"),
            ("refs/heads/new", "e"),
            ("refs/tags/v1", "c"),
        ]);
        let pushed = changes(&before, &after, &["refs/heads/new"]).unwrap();
        assert_eq!(
            updates(&pushed),
            [
                ("0".into(), "e".into(), "refs/heads/new".into()),
                ("b".into(), "0".into(), "refs/heads/gone".into()),
                ("a".into(), "d".into(), "refs/heads/main".into()),
            ]
        );
        let Pushed::Git { tips, .. } = pushed else {
            unreachable!()
        };
        let names: Vec<&str> = tips.iter().map(|[n, _]| n.as_str()).collect();
        assert_eq!(names, ["refs/heads/gone", "refs/heads/main"]);
    }

    #[test]
    fn nothing_new_or_only_deletions_is_no_push() {
        let state = git(&[("refs/heads/main", "a"), ("refs/heads/old", "b")]);
        assert_eq!(changes(&state, &state, &["refs/heads/main"]), None);
        let fewer = git(&[("refs/heads/main", "a")]);
        assert_eq!(changes(&state, &fewer, &[]), None);
        // A name given first that did not change adds nothing.
        assert_eq!(changes(&fewer, &fewer, &["refs/heads/x"]), None);
    }

    #[test]
    fn hg_difference_is_every_revision_past_the_old_tip() {
        let before = State::Hg {
            rev: 4,
            node: "a".into(),
        };
        let after = State::Hg {
            rev: 9,
            node: "b".into(),
        };
        assert_eq!(
            changes(&before, &after, &[]),
            Some(Pushed::Hg {
                first: "5".into(),
                last: "b".into()
            })
        );
        assert_eq!(changes(&after, &before, &[]), None);
        assert_eq!(changes(&after, &after, &[]), None);
    }

    #[test]
    fn ledger_round_trips_and_an_unreadable_one_is_set_aside() {
        let dir = TempDir::new().unwrap();
        let mut problem = None;
        assert_eq!(Ledger::read(dir.path(), &mut problem).unwrap(), None);
        let ledger = Ledger {
            version: spool::FORMAT_VERSION,
            path: dir.path().to_path_buf(),
            state: git(&[("refs/heads/main", "a")]),
            pending: Vec::new(),
        };
        ledger.write().unwrap();
        assert_eq!(
            Ledger::read(dir.path(), &mut problem).unwrap(),
            Some(ledger)
        );
        assert_eq!(problem, None);

        fs::write(Ledger::file(dir.path()), b"{\"version\":1,").unwrap();
        assert_eq!(Ledger::read(dir.path(), &mut problem).unwrap(), None);
        let said = problem.unwrap();
        assert!(said.contains("unreadable ledger"), "{said}");
        assert!(dir.path().join("rbg-notify/ledger.json.broken").exists());
    }
}
