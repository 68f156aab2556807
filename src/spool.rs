//! The spool: the folder where pushes and deliveries wait, on disk, until a
//! receiver has answered 2xx.
//!
//! Nothing is sent before it is durable here. A run first records the push
//! it was given (a *push record*: the ref updates and the branch tips before
//! the push, or the changegroup's first and last node), then turns push
//! records into *spooled deliveries* (one file per payload and webhook, with
//! the exact body), removes the push record, and only then sends. A
//! delivery file is removed only after a 2xx answer. A run killed at any
//! instant thus leaves at worst a delivery that is sent again later, under
//! the same `X-RBG-Delivery` id, never one that is lost.
//!
//! Every file is written to a temporary name, synced, renamed into place,
//! and the folder synced. One exclusive lock (`lock` in the folder) is held
//! while push records are turned into deliveries and deliveries are sent,
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

/// Gives the age past which a temporary file is taken to be left by a run
/// that died while writing it, rather than one still being written.
const STALE_TEMP: Duration = Duration::from_secs(600);

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
        /// Lists the branch tips before the push, so the walk can be
        /// redone exactly even after later pushes moved the branches.
        tips: Vec<String>,
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
        fs::create_dir_all(dir).map_err(spool_error(dir, "creating the spool folder"))?;
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
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(spool_error(&path, "opening the spool lock"))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(Lock { _file: file })),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => {
                    return Err(spool_error(&path, "locking the spool")(e));
                }
            }
        }
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

    /// Removes a push record or a delivery, durably.
    pub fn remove(&self, path: &Path) -> Result<(), Error> {
        match fs::remove_file(path) {
            Ok(()) => {
                sync_dir(&self.dir).map_err(spool_error(&self.dir, "syncing the spool folder"))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(spool_error(path, "removing")(e)),
        }
    }

    /// Lists the push records for the repository at `path`, oldest first.
    /// Files that cannot be read are set aside and reported in `problems`.
    pub fn push_records(
        &self,
        path: &Path,
        problems: &mut Vec<String>,
    ) -> Result<Vec<(PathBuf, PushRecord)>, Error> {
        let mut records = Vec::new();
        for file in self.files(PUSH_SUFFIX, problems)? {
            let parsed = fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<PushRecord>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(record) if record.version > FORMAT_VERSION => {
                    problems.push(newer(&file, record.version))
                }
                Ok(record) if record.path == path => records.push((file, record)),
                Ok(_) => {}
                Err(e) => self.set_aside(&file, &e, problems),
            }
        }
        Ok(records)
    }

    /// Lists the deliveries for `repository`, in the order they must be
    /// sent. Files that cannot be read are set aside and reported.
    pub fn deliveries(
        &self,
        repository: &str,
        problems: &mut Vec<String>,
    ) -> Result<Vec<Spooled>, Error> {
        let mut deliveries = Vec::new();
        for file in self.files(DELIVERY_SUFFIX, problems)? {
            match read_delivery(&file) {
                Ok(d) if d.header.version > FORMAT_VERSION => {
                    problems.push(newer(&file, d.header.version))
                }
                Ok(d) if d.header.repository == repository => deliveries.push(d),
                Ok(_) => {}
                Err(e) => self.set_aside(&file, &e, problems),
            }
        }
        Ok(deliveries)
    }

    /// Lists the complete files with `suffix`, sorted by name, and reports
    /// temporary files left by a run that died while writing them.
    fn files(&self, suffix: &str, problems: &mut Vec<String>) -> Result<Vec<PathBuf>, Error> {
        let entries =
            fs::read_dir(&self.dir).map_err(spool_error(&self.dir, "reading the spool folder"))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(spool_error(&self.dir, "reading the spool folder"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) && name.ends_with(suffix) {
                self.drop_stale_temp(&entry.path(), problems);
            } else if name.ends_with(suffix) {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Removes a temporary file old enough to be left by a dead run. It
    /// was never renamed into place, so no run had started sending it.
    fn drop_stale_temp(&self, path: &Path, problems: &mut Vec<String>) {
        let age = fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age > STALE_TEMP) && fs::remove_file(path).is_ok() {
            problems.push(format!(
                "{}: removed a spool file a run left half-written (it was never sent)",
                path.display()
            ));
        }
    }

    /// Renames an unreadable file out of the way, keeping it for a look.
    fn set_aside(&self, path: &Path, why: &str, problems: &mut Vec<String>) {
        let mut aside = path.as_os_str().to_owned();
        aside.push(BROKEN_SUFFIX);
        let kept = fs::rename(path, &aside).is_ok();
        problems.push(format!(
            "{}: unreadable spool file ({why}){}",
            path.display(),
            if kept { "; renamed to *.broken" } else { "" }
        ));
    }

    /// Writes `bytes` to `name` atomically and durably.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
        let path = self.dir.join(name);
        let temp = self.dir.join(format!("{TEMP_PREFIX}{name}"));
        let result = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &path)?;
            sync_dir(&self.dir)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&temp);
            spool_error(&path, "writing")(e)
        })?;
        Ok(path)
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
    Ok(Spooled {
        path: path.to_path_buf(),
        header,
        body,
    })
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
fn spool_error(path: &Path, doing: &'static str) -> impl FnOnce(io::Error) -> Error {
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
        let found = spool.deliveries("r", &mut Vec::new()).unwrap();
        let ids: Vec<_> = found.iter().map(|d| d.header.id.as_str()).collect();
        assert_eq!(ids, ["1.0001", "2.0000"]);
        assert_eq!(found[0].body, body);
        spool.remove(&found[0].path).unwrap();
        assert_eq!(spool.deliveries("r", &mut Vec::new()).unwrap().len(), 1);
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
        assert!(spool.deliveries("r", &mut problems).unwrap().is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("body has 4 bytes, header says 6"),
            "{problems:?}"
        );
        assert!(problems[1].contains("version 2 is newer"), "{problems:?}");
        assert!(dir.path().join("1.0000.delivery.broken").exists());
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
