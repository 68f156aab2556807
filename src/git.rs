//! A git repository as a run sees it: opening it the way a hook is run,
//! reading its `rbgateway.*` settings and its name, and turning commits into
//! payload commits with their messages decoded.
//!
//! Which commits a push added is `walk.rs`'s business.

use std::path::PathBuf;
use std::{panic, thread};

use encoding_rs::Encoding;
use git2::{Commit as GitCommit, Oid, Repository};

use crate::config::{resolve_setting_path, Env};
use crate::error::Error;
use crate::payload::{self, timestamp, Author, Commit, Target};
use crate::{walk, wire};

/// Gives the size of one mapped window of a pack file.
const PACK_WINDOW: usize = 2 << 20;

/// Gives the most of all pack files mapped at once. libgit2 maps 1 GiB
/// windows by default, so reading every commit of a big push kept the whole
/// commit part of the pack resident; this bounds it (see #6).
const PACK_MAPPED_LIMIT: usize = 8 << 20;

/// Sets libgit2's process-wide options for reading many commits once each:
/// no object cache (each commit is read by the walk and again when its
/// payload is built, so a cache only grows with the push), no hash check on
/// every read (git itself checks objects when they are received, not when
/// they are read), and bounded pack mappings.
///
/// # Safety
///
/// Writes libgit2 globals without synchronization: call it before any
/// thread that may use libgit2 starts.
pub unsafe fn tune_libgit2() -> Result<(), Error> {
    git2::opts::enable_caching(false);
    git2::opts::strict_hash_verification(false);
    // SAFETY: the caller guarantees no other thread uses libgit2 yet.
    unsafe {
        git2::opts::set_mwindow_size(PACK_WINDOW)
            .and_then(|()| git2::opts::set_mwindow_mapped_limit(PACK_MAPPED_LIMIT))
            .map_err(Error::git("setting libgit2's pack window limits"))
    }
}

/// Opens the repository a hook runs in: `$GIT_DIR` when git set it (it does
/// for hooks, githooks(5)), else the repository around the current folder.
pub fn open(env: &Env) -> Result<Repository, Error> {
    match env.var("GIT_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            Repository::open(&dir)
                .map_err(Error::git(format!("opening repository {}", dir.display())))
        }
        None => Repository::open_from_env().map_err(Error::git(
            "finding the git repository around the current folder",
        )),
    }
    .map_err(plain)
}

/// Says plainly what libgit2 says tersely: that SHA-256 repositories are
/// not supported, and what to do about a repository another user owns.
fn plain(error: Error) -> Error {
    match &error {
        Error::Git { source, .. } if source.message().contains("sha256") => {
            Error::Usage("SHA-256 repositories are not supported; only SHA-1 ones are".to_string())
        }
        Error::Git { source, .. } if source.code() == git2::ErrorCode::Owner => {
            Error::Usage(format!(
                "{}; run rbg-notify as the user that owns it, as its hooks run \
                 (e.g. runuser -u <owner> -- rbg-notify --check)",
                source.message()
            ))
        }
        _ => error,
    }
}

/// Lists the refs whose full names start with one of `prefixes`, with the
/// ids they point at (symbolic refs left out). Names are read as the ref
/// updates on stdin are: lossily, when not UTF-8.
pub fn refs(repo: &Repository, prefixes: &[&str]) -> Result<Vec<(String, Oid)>, Error> {
    let listing = || Error::git("listing the repository's refs");
    let mut found = Vec::new();
    for reference in repo.references().map_err(listing())? {
        let reference = reference.map_err(listing())?;
        let name = String::from_utf8_lossy(reference.name_bytes());
        let kept = prefixes.iter().any(|p| name.starts_with(p));
        if let (true, Some(id)) = (kept, reference.target()) {
            found.push((name.into_owned(), id));
        }
    }
    Ok(found)
}

/// Returns the folder that names the repository: the bare repository
/// itself, or the work tree of a normal one. A linked worktree belongs to
/// the repository whose hooks a push runs, so it gives that one's folder.
pub fn home(repo: &Repository) -> PathBuf {
    let common = repo.commondir();
    match common.file_name().and_then(|n| n.to_str()) {
        Some(".git") => common.parent().unwrap_or(common).to_path_buf(),
        _ => common.to_path_buf(),
    }
}

/// Reads a text setting from the repository's git config (which includes
/// the user's and system's files, as `git config` does).
fn setting(repo: &Repository, key: &str) -> Result<Option<String>, Error> {
    let config = repo
        .config()
        .map_err(Error::git("reading the repository's git config"))?;
    match config.get_string(key) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(Error::git(format!("reading git config {key}"))(e)),
    }
}

/// Returns the settings file named by `rbgateway.config`, if set, resolved
/// against the repository's own folder.
pub fn settings_path(
    repo: &Repository,
    env: &Env,
) -> Result<Option<(PathBuf, &'static str)>, Error> {
    let value = setting(repo, wire::GIT_KEY_CONFIG)?;
    Ok(value.map(|v| {
        (
            resolve_setting_path(&v, repo.path(), env),
            wire::GIT_KEY_CONFIG,
        )
    }))
}

/// Returns the name `rbgateway.repository` sets, if any.
pub fn name_setting(repo: &Repository) -> Result<Option<String>, Error> {
    setting(repo, wire::GIT_KEY_REPOSITORY)
}

/// Returns the repository folder's name without a trailing `.git`.
pub fn folder_name(repo: &Repository) -> Result<String, Error> {
    let folder = home(repo);
    let folder = folder.canonicalize().unwrap_or(folder);
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".git").unwrap_or(&name).to_string();
    if name.is_empty() {
        return Err(Error::Usage(format!(
            "cannot name the repository at {}; set git config {} or give --repository",
            folder.display(),
            wire::GIT_KEY_REPOSITORY
        )));
    }
    Ok(name)
}

/// Loads a commit and describes it for the payload.
pub fn describe(repo: &Repository, id: Oid, target: Target) -> Result<Commit, Error> {
    let commit = repo
        .find_commit(id)
        .map_err(Error::git(format!("reading commit {id}")))?;
    let when = commit.author().when();
    Ok(Commit {
        id: id.to_string(),
        message: payload::clip_message(message(&commit)),
        target,
        author: Some(author(&commit)),
        timestamp: timestamp(when.seconds(), when.offset_minutes() * 60),
    })
}

/// Gives the fewest commits worth describing on a second thread: opening the
/// repository again costs about as much as reading a few dozen commits.
const SPLIT_AT: usize = 200;

/// Describes the found commits, in order. A large batch is split in two
/// halves described at once, the second on its own thread with its own
/// handle on the repository (a libgit2 repository is not shared between
/// threads): reading and inflating every commit a second time, after the
/// walk, is most of a huge push's time (see #6). Should the second handle
/// fail, its half is described here after all, so errors are the same.
pub fn describe_all(repo: &Repository, found: &[walk::Found]) -> Result<Vec<Commit>, Error> {
    if found.len() < SPLIT_AT {
        return describe_each(repo, found);
    }
    let (head, tail) = found.split_at(found.len() / 2);
    let path = repo.path();
    let (commits, rest) = thread::scope(|scope| {
        let other = scope.spawn(move || {
            let repo = Repository::open(path).ok()?;
            describe_each(&repo, tail).ok()
        });
        let commits = describe_each(repo, head);
        let rest = other.join().unwrap_or_else(|p| panic::resume_unwind(p));
        (commits, rest)
    });
    let mut commits = commits?;
    match rest {
        Some(rest) => commits.extend(rest),
        None => commits.extend(describe_each(repo, tail)?),
    }
    Ok(commits)
}

/// Describes the found commits one after the other.
fn describe_each(repo: &Repository, found: &[walk::Found]) -> Result<Vec<Commit>, Error> {
    found
        .iter()
        .map(|f| describe(repo, f.id, f.target.clone()))
        .collect()
}

/// Decodes a commit message: with the commit's `encoding` header when it
/// names one (git writes it when i18n.commitEncoding is set), else as UTF-8.
/// Bytes that do not decode become U+FFFD rather than failing the delivery.
fn message(commit: &GitCommit) -> String {
    decode(
        commit.message_bytes(),
        commit.message_encoding().ok().flatten(),
    )
}

/// Decodes `bytes` from the encoding labelled `label`, or from UTF-8.
fn decode(bytes: &[u8], label: Option<&str>) -> String {
    match label.and_then(|l| Encoding::for_label(l.trim().as_bytes())) {
        Some(encoding) => encoding.decode_without_bom_handling(bytes).0.into_owned(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Returns the commit's author, decoded like its message.
fn author(commit: &GitCommit) -> Author {
    let signature = commit.author();
    let label = commit.message_encoding().ok().flatten();
    Author {
        name: decode(signature.name_bytes(), label),
        email: decode(signature.email_bytes(), label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_batch_split_across_threads_in_order() {
        let dir = tempfile::TempDir::new().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let when = git2::Time::new(1_700_000_000, 60);
        let who = git2::Signature::new("A", "a@example.com", &when).unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let mut found = Vec::new();
        let mut parent = None;
        for i in 0..=SPLIT_AT {
            let parents: Vec<_> = parent.iter().collect();
            let message = format!("commit {i}");
            let id = repo
                .commit(None, &who, &who, &message, &tree, &parents)
                .unwrap();
            parent = Some(repo.find_commit(id).unwrap());
            found.push(walk::Found {
                id,
                target: Target::default(),
            });
        }
        let commits = describe_all(&repo, &found).unwrap();
        let ids: Vec<_> = commits.iter().map(|c| c.id.clone()).collect();
        let expected: Vec<_> = found.iter().map(|f| f.id.to_string()).collect();
        assert_eq!(ids, expected);
        assert_eq!(commits[SPLIT_AT].message, format!("commit {SPLIT_AT}"));
    }

    #[test]
    fn decodes_by_encoding_header() {
        assert_eq!(decode(b"caf\xe9", Some("ISO-8859-1")), "café");
        assert_eq!(decode(b"\x93\xfa\x96\x7b", Some("Shift_JIS")), "日本");
        assert_eq!(decode("café".as_bytes(), None), "café");
        assert_eq!(decode(b"caf\xe9", None), "caf\u{fffd}");
        assert_eq!(decode(b"caf\xe9", Some("no-such-encoding")), "caf\u{fffd}");
    }
}
