//! The spool: the folder where pushes and deliveries wait, on disk, until a
//! receiver has answered 2xx.
//!
//! Nothing is sent before it is durable here. A run first records the push
//! it was given (a *push record*: the ref updates and the branch tips before
//! the push, or the changegroup's first and last node). Holding the lock, it
//! takes in what the repository gained since the ledger (`ledger.rs`) was
//! written, which covers every push record, turns it into *spooled
//! deliveries* (one file per payload and webhook, with the exact body),
//! removes the push records, and only then sends. A delivery file is
//! removed only after a 2xx answer. A run killed at any instant thus leaves
//! at worst a delivery that is sent again later, under the same
//! `X-RBG-Delivery` id, never one that is lost.
//!
//! Every file is written to a temporary name, synced, renamed into place,
//! and the folder synced. One exclusive lock (`lock` in the folder) is held
//! while pushes are turned into deliveries and deliveries are sent,
//! so two runs never send the same delivery.
//!
//! File names sort in the order things must be sent: a push record is
//! `<id>.push`, its deliveries `<id>.<n>.delivery`, where `<id>` starts with
//! the time it was recorded. The formats are described in the README and
//! carry a `version`; a newer rbg-notify reads every older version.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Gives the version written in every spool file.
pub const FORMAT_VERSION: u32 = 1;

/// Names the spool's folder inside a repository's git or hg folder.
pub const DEFAULT_FOLDER: &str = "rbg-notify/spool";

const PUSH_SUFFIX: &str = ".push";
const DELIVERY_SUFFIX: &str = ".delivery";
const TEMP_PREFIX: &str = ".tmp.";
const BROKEN_SUFFIX: &str = ".broken";
const HELD_SUFFIX: &str = ".held";

/// Gives the age past which a temporary file is taken to be left by a run
/// that died while writing it, rather than one still being written.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// Describes something odd found in the spool, already dealt with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Says what was found and done, naming the file.
    pub text: String,
    /// Says whether an administrator should look (a file set aside, a push
    /// lost), rather than a note on a recovery.
    pub serious: bool,
}

impl Problem {
    fn serious(text: String) -> Problem {
        Problem {
            text,
            serious: true,
        }
    }

    fn note(text: String) -> Problem {
        Problem {
            text,
            serious: false,
        }
    }
}

/// Describes a push recorded before any work is done on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    /// Gives the format version.
    pub version: u32,
    /// Identifies the push; its deliveries' ids start with it.
    pub id: String,
    /// Names the repository in payloads.
    pub repository: String,
    /// Gives the repository's folder, so a shared spool folder never mixes
    /// up two repositories' pushes.
    pub path: PathBuf,
    /// Says what was pushed.
    pub push: Pushed,
}

/// Says what a push record holds, per version control system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "vcs", rename_all = "lowercase")]
pub enum Pushed {
    /// Records a git push.
    Git {
        /// Lists the ref updates as `[old, new, refname]`, in input order.
        updates: Vec<[String; 3]>,
        /// Lists the branch tips before the push as `[refname, id]`, so the
        /// walk can be redone exactly even after later pushes moved the
        /// branches, for every webhook's branch filter.
        tips: Vec<[String; 2]>,
    },
    /// Records a Mercurial changegroup.
    Hg {
        /// Gives the first changeset's node.
        first: String,
        /// Gives the last changeset's node.
        last: String,
    },
}

/// Describes a spooled delivery; the body follows it in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Gives the format version.
    pub version: u32,
    /// Identifies the delivery; sent as `X-RBG-Delivery` on every attempt.
    pub id: String,
    /// Names the webhook by id; its URL and secret are read at send time.
    pub webhook: String,
    /// Names the event.
    pub event: String,
    /// Names the repository.
    pub repository: String,
    /// Counts the commits in the body.
    pub commits: usize,
    /// Counts the body's bytes, so a cut file is recognised.
    pub bytes: usize,
    /// Gives the repository's folder, so a shared spool folder never sends
    /// one repository's delivery for another of the same name. Absent in
    /// files written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// Holds one spooled delivery read back from its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spooled {
    /// Gives the file.
    pub path: PathBuf,
    /// Describes the delivery.
    pub header: Header,
    /// Gives the exact body to sign and send.
    pub body: Vec<u8>,
    /// Gives the answer that put the delivery on hold until `--retry`, if
    /// one did.
    pub held: Option<String>,
}

/// Opens a spool folder.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
}

/// Holds the spool's lock until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Spool {
    /// Opens the spool in `dir`, creating the folder if needed.
    pub fn open(dir: &Path) -> Result<Spool, Error> {
        fs::create_dir_all(dir).map_err(error(dir, "creating the spool folder"))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    /// Returns the spool's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the spool's lock, waiting until `deadline` at most; `None`
    /// means another run held it all that time.
    pub fn lock(&self, deadline: Instant) -> Result<Option<Lock>, Error> {
        lock_file(&self.dir.join("lock"), deadline)
    }

    /// Writes a push record durably.
    pub fn record_push(&self, record: &PushRecord) -> Result<PathBuf, Error> {
        let bytes = serde_json::to_vec(record).map_err(Error::Payload)?;
        self.write(&format!("{}{PUSH_SUFFIX}", record.id), &bytes)
    }

    /// Writes a delivery durably. Writing the same delivery again (a push
    /// record turned into deliveries twice after a crash) replaces the file
    /// with the same bytes.
    pub fn write_delivery(&self, header: &Header, body: &[u8]) -> Result<PathBuf, Error> {
        let mut bytes = serde_json::to_vec(header).map_err(Error::Payload)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(body);
        self.write(&format!("{}{DELIVERY_SUFFIX}", header.id), &bytes)
    }

    /// Puts a delivery on hold until `--retry`, noting the answer that
    /// refused it.
    pub fn hold(&self, delivery: &Spooled, reason: &str) -> Result<(), Error> {
        let name = held_path(&delivery.path);
        let name = name
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.write(&name, reason.as_bytes()).map(drop)
    }

    /// Removes a delivery and its hold, durably. The hold goes first: a
    /// crash in between leaves a delivery that is simply sent again.
    pub fn remove_delivery(&self, delivery: &Spooled) -> Result<(), Error> {
        if delivery.held.is_some() {
            self.remove(&held_path(&delivery.path))?;
        }
        self.remove(&delivery.path)
    }

    /// Removes a push record or a delivery, durably.
    pub fn remove(&self, path: &Path) -> Result<(), Error> {
        match fs::remove_file(path) {
            Ok(()) => sync_dir(&self.dir).map_err(error(&self.dir, "syncing the spool folder")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(error(path, "removing")(e)),
        }
    }

    /// Lists the push records for the repository at `path`, oldest first.
    /// Files that cannot be read are set aside and reported in `problems`.
    pub fn push_records(
        &self,
        path: &Path,
        problems: &mut Vec<Problem>,
    ) -> Result<Vec<(PathBuf, PushRecord)>, Error> {
        let mut records = Vec::new();
        for file in self.files(PUSH_SUFFIX, problems)? {
            let parsed = fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<PushRecord>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(record) if record.version > FORMAT_VERSION => {
                    problems.push(Problem::serious(newer(&file, record.version)))
                }
                Ok(record) if record.path == path => records.push((file, record)),
                Ok(_) => {}
                Err(e) => self.set_aside(&file, &e, problems),
            }
        }
        Ok(records)
    }

    /// Lists the deliveries for `repository` at `path`, in the order they
    /// must be sent. Files that cannot be read are set aside and reported.
    pub fn deliveries(
        &self,
        repository: &str,
        path: &Path,
        problems: &mut Vec<Problem>,
    ) -> Result<Vec<Spooled>, Error> {
        let mut deliveries = Vec::new();
        for file in self.files(DELIVERY_SUFFIX, problems)? {
            match read_delivery(&file) {
                Ok(d) if d.header.version > FORMAT_VERSION => {
                    problems.push(Problem::serious(newer(&file, d.header.version)))
                }
                Ok(d) if d.header.path.as_deref().is_some_and(|p| p != path) => {}
                Ok(d) if d.header.repository == repository => deliveries.push(d),
                Ok(_) => {}
                Err(e) => self.set_aside(&file, &e, problems),
            }
        }
        Ok(deliveries)
    }

    /// Lists the complete files with `suffix`, sorted by name, and reports
    /// temporary files left by a run that died while writing them.
    fn files(&self, suffix: &str, problems: &mut Vec<Problem>) -> Result<Vec<PathBuf>, Error> {
        let entries =
            fs::read_dir(&self.dir).map_err(error(&self.dir, "reading the spool folder"))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(error(&self.dir, "reading the spool folder"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) && name.ends_with(suffix) {
                files.extend(self.recover_temp(&entry.path(), &name, problems));
            } else if name.ends_with(suffix) {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Deals with a temporary file, which a run writes and then renames,
    /// found while the lock is held. Deliveries are only written under the
    /// lock, so a delivery's temporary file is dead: it was never sent, and
    /// its push record or delivery still exists. A push record is written
    /// without the lock by the process whose id is in its name: while that
    /// process lives the file is left alone; once it is gone, a complete
    /// record is adopted (its run died between writing and renaming it), an
    /// incomplete one removed. Returns the adopted record's path.
    fn recover_temp(
        &self,
        path: &Path,
        name: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<PathBuf> {
        let final_name = &name[TEMP_PREFIX.len()..];
        let is_push = final_name.ends_with(PUSH_SUFFIX);
        if is_push && writer_alive(final_name, path) {
            return None;
        }
        let complete = is_push
            && fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice::<PushRecord>(&b).ok())
                .is_some();
        if complete {
            let target = self.dir.join(final_name);
            let adopted = fs::rename(path, &target).and_then(|()| sync_dir(&self.dir));
            if adopted.is_ok() {
                problems.push(Problem::note(format!(
                    "{}: recovered a push record whose run died before finishing it",
                    target.display()
                )));
                return Some(target);
            }
            return None;
        }
        if fs::remove_file(path).is_ok() {
            let what = match is_push {
                true => {
                    "a push record its run died writing; that push was not recorded \
                         (replay it with --range)"
                }
                false => "a delivery its run died writing (it was never sent and is made again)",
            };
            problems.push(Problem {
                text: format!("{}: removed {what}", path.display()),
                serious: is_push,
            });
        }
        None
    }

    /// Renames an unreadable file out of the way, keeping it for a look.
    fn set_aside(&self, path: &Path, why: &str, problems: &mut Vec<Problem>) {
        let mut aside = path.as_os_str().to_owned();
        aside.push(BROKEN_SUFFIX);
        let kept = fs::rename(path, &aside).is_ok();
        problems.push(Problem::serious(format!(
            "{}: unreadable spool file ({why}){}",
            path.display(),
            if kept { "; renamed to *.broken" } else { "" }
        )));
    }

    /// Writes `bytes` to `name` atomically and durably.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
        let path = self.dir.join(name);
        write_atomic(&path, bytes)?;
        Ok(path)
    }
}

/// Takes an exclusive lock on the file at `path`, creating it, waiting
/// until `deadline` at most; `None` means another run held it all that
/// time.
pub fn lock_file(path: &Path, deadline: Instant) -> Result<Option<Lock>, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(error(path, "opening the lock"))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(Lock { _file: file })),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(error(path, "locking")(e)),
        }
    }
}

/// Creates the folder that holds `path`, if needed.
pub fn create_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(error(parent, "creating the folder")),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically and durably: to a temporary name in
/// the same folder, synced, renamed into place, and the folder synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!("{TEMP_PREFIX}{name}"));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        error(path, "writing")(e)
    })
}

/// Returns whether the process that is writing the push record `name`
/// (`<time>-<pid>-<n>.push`) still runs; without `/proc` to ask, a file
/// younger than `STALE_TEMP` is taken to be still being written.
fn writer_alive(name: &str, path: &Path) -> bool {
    let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) if Path::new("/proc/self").exists() => {
            Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < STALE_TEMP),
    }
}

/// Reads a delivery file: a JSON header line, then the body.
fn read_delivery(path: &Path) -> Result<Spooled, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header: Header = serde_json::from_slice(&bytes[..split]).map_err(|e| e.to_string())?;
    let body = bytes[split + 1..].to_vec();
    if body.len() != header.bytes {
        return Err(format!(
            "body has {} bytes, header says {}",
            body.len(),
            header.bytes
        ));
    }
    let held = fs::read_to_string(held_path(path)).ok();
    Ok(Spooled {
        path: path.to_path_buf(),
        header,
        body,
        held,
    })
}

/// Returns the path of the file that puts a delivery on hold.
fn held_path(delivery: &Path) -> PathBuf {
    let mut path = delivery.as_os_str().to_owned();
    path.push(HELD_SUFFIX);
    PathBuf::from(path)
}

/// Describes a file written by a newer rbg-notify.
fn newer(path: &Path, version: u32) -> String {
    format!(
        "{}: spool format version {version} is newer than this rbg-notify reads ({FORMAT_VERSION}); left alone",
        path.display()
    )
}

/// Syncs a folder, so a rename or removal in it survives a power loss.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Builds a spool error naming the file and what was being done.
pub fn error(path: &Path, doing: &'static str) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Spool {
        path,
        doing,
        source,
    }
}

/// Makes a new push id: the time in nanoseconds (so names sort by age),
/// the process id and a counter (so two runs in one nanosecond differ).
pub fn new_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:020}-{:07}-{count:03}", std::process::id())
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;

    fn header(id: &str, repository: &str, body: &[u8]) -> Header {
        Header {
            version: FORMAT_VERSION,
            id: id.to_string(),
            webhook: "rb".to_string(),
            event: "push".to_string(),
            repository: repository.to_string(),
            commits: 1,
            bytes: body.len(),
            path: None,
        }
    }

    #[test]
    fn deliveries_come_back_exactly_in_name_order() {
        let dir = TempDir::new().unwrap();
        let spool = Spool::open(&dir.path().join("s")).unwrap();
        let body = b"{\"event\":\"push\",\"commits\":[]}\n\xff".to_vec();
        spool
            .write_delivery(&header("2.0000", "r", b"b"), b"b")
            .unwrap();
        spool
            .write_delivery(&header("1.0001", "r", &body), &body)
            .unwrap();
        spool
            .write_delivery(&header("1.0000", "other", b"x"), b"x")
            .unwrap();
        let found = spool
            .deliveries("r", Path::new("/r"), &mut Vec::new())
            .unwrap();
        let ids: Vec<_> = found.iter().map(|d| d.header.id.as_str()).collect();
        assert_eq!(ids, ["1.0001", "2.0000"]);
        assert_eq!(found[0].body, body);
        spool.remove(&found[0].path).unwrap();
        assert_eq!(
            spool
                .deliveries("r", Path::new("/r"), &mut Vec::new())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn push_records_round_trip_and_stay_with_their_repository() {
        let dir = TempDir::new().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let record = PushRecord {
            version: FORMAT_VERSION,
            id: new_id(),
            repository: "r".into(),
            path: "/srv/r.git".into(),
            push: Pushed::Hg {
                first: "a".into(),
                last: "b".into(),
            },
        };
        spool.record_push(&record).unwrap();
        let mine = spool
            .push_records(Path::new("/srv/r.git"), &mut Vec::new())
            .unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].1, record);
        assert!(spool
            .push_records(Path::new("/srv/other.git"), &mut Vec::new())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn cut_and_foreign_files_are_reported_not_sent() {
        let dir = TempDir::new().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let path = spool
            .write_delivery(&header("1.0000", "r", b"abcdef"), b"abcdef")
            .unwrap();
        let text = fs::read(&path).unwrap();
        fs::write(&path, &text[..text.len() - 2]).unwrap();
        let mut future = header("2.0000", "r", b"x");
        future.version = FORMAT_VERSION + 1;
        spool.write_delivery(&future, b"x").unwrap();

        let mut problems = Vec::new();
        assert!(spool
            .deliveries("r", Path::new("/r"), &mut problems)
            .unwrap()
            .is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].text.contains("body has 4 bytes, header says 6"),
            "{problems:?}"
        );
        assert!(
            problems[1].text.contains("version 2 is newer"),
            "{problems:?}"
        );
        assert!(problems.iter().all(|p| p.serious));
        assert!(dir.path().join("1.0000.delivery.broken").exists());
    }

    #[test]
    fn holds_stick_until_the_delivery_goes_and_paths_keep_repositories_apart() {
        let dir = TempDir::new().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut other = header("1.0001", "r", b"y");
        other.path = Some("/srv/elsewhere/r.git".into());
        spool.write_delivery(&other, b"y").unwrap();
        let mut mine = header("1.0000", "r", b"x");
        mine.path = Some("/srv/r.git".into());
        spool.write_delivery(&mine, b"x").unwrap();

        let here = Path::new("/srv/r.git");
        let found = spool.deliveries("r", here, &mut Vec::new()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].held, None);
        spool
            .hold(&found[0], "HTTP 400 Bad Request: Bad signature.")
            .unwrap();
        let found = spool.deliveries("r", here, &mut Vec::new()).unwrap();
        assert_eq!(
            found[0].held.as_deref(),
            Some("HTTP 400 Bad Request: Bad signature.")
        );
        spool.remove_delivery(&found[0]).unwrap();
        assert!(spool
            .deliveries("r", here, &mut Vec::new())
            .unwrap()
            .is_empty());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            ["1.0001.delivery"],
            "only the other repository's delivery is left"
        );
    }

    #[test]
    fn temporary_files_of_dead_runs_are_recovered_or_removed() {
        let dir = TempDir::new().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        // No process has id 4194304 or more on Linux (pid_max's ceiling).
        let dead = "00000000000000000001-4194304-000";
        let record = PushRecord {
            version: FORMAT_VERSION,
            id: dead.to_string(),
            repository: "r".into(),
            path: "/srv/r.git".into(),
            push: Pushed::Hg {
                first: "a".into(),
                last: "b".into(),
            },
        };
        let complete = serde_json::to_vec(&record).unwrap();
        fs::write(dir.path().join(format!(".tmp.{dead}.push")), &complete).unwrap();
        let cut = "00000000000000000002-4194304-000";
        fs::write(dir.path().join(format!(".tmp.{cut}.push")), &complete[..10]).unwrap();
        let alive = format!("00000000000000000003-{:07}-000", std::process::id());
        fs::write(
            dir.path().join(format!(".tmp.{alive}.push")),
            &complete[..10],
        )
        .unwrap();
        fs::write(dir.path().join(format!(".tmp.{dead}.0000.delivery")), b"{").unwrap();

        let mut problems = Vec::new();
        let records = spool
            .push_records(Path::new("/srv/r.git"), &mut problems)
            .unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].1, record);
        assert!(spool
            .deliveries("r", Path::new("/srv/r.git"), &mut problems)
            .unwrap()
            .is_empty());
        assert_eq!(problems.len(), 3, "{problems:?}");
        let texts: Vec<&str> = problems.iter().map(|p| p.text.as_str()).collect();
        assert!(
            texts.iter().any(|t| t.contains("recovered a push record")),
            "{texts:?}"
        );
        assert_eq!(
            problems.iter().filter(|p| p.serious).count(),
            1,
            "{problems:?}"
        );
        assert!(dir.path().join(format!(".tmp.{alive}.push")).exists());
        assert!(!dir.path().join(format!(".tmp.{cut}.push")).exists());
        assert!(!dir
            .path()
            .join(format!(".tmp.{dead}.0000.delivery"))
            .exists());
    }

    #[test]
    fn lock_excludes_a_second_holder_until_released() {
        let dir = TempDir::new().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let soon = || Instant::now() + Duration::from_millis(50);
        let held = spool.lock(soon()).unwrap().expect("first lock");
        assert!(spool.lock(soon()).unwrap().is_none());
        drop(held);
        assert!(spool.lock(soon()).unwrap().is_some());
    }

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(a < b, "{a} {b}");
    }
}
