//! A git repository as a run sees it: opening it the way a hook is run,
//! reading its `rbgateway.*` settings and its name, and turning commits into
//! payload commits with their messages decoded.
//!
//! Which commits a push added is `walk.rs`'s business.

use std::path::{Path, PathBuf};

use encoding_rs::Encoding;
use git2::{Commit as GitCommit, Oid, Repository};

use crate::config::{resolve_setting_path, Env};
use crate::error::Error;
use crate::payload::{self, timestamp, Author, Commit, Target};
use crate::wire;

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
}

/// Returns the folder that names the repository and anchors relative
/// settings: the bare repository itself, or the work tree of a normal one.
pub fn home(repo: &Repository) -> &Path {
    repo.workdir().unwrap_or_else(|| repo.path())
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

/// Returns the repository name: `rbgateway.repository` if set, else the
/// folder's name without a trailing `.git` (`/srv/repo1.git` is `repo1`).
pub fn repository_name(repo: &Repository) -> Result<String, Error> {
    if let Some(name) = setting(repo, wire::GIT_KEY_REPOSITORY)? {
        return Ok(name);
    }
    let folder = home(repo)
        .canonicalize()
        .unwrap_or_else(|_| home(repo).to_path_buf());
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
    fn decodes_by_encoding_header() {
        assert_eq!(decode(b"caf\xe9", Some("ISO-8859-1")), "café");
        assert_eq!(decode(b"\x93\xfa\x96\x7b", Some("Shift_JIS")), "日本");
        assert_eq!(decode("café".as_bytes(), None), "café");
        assert_eq!(decode(b"caf\xe9", None), "caf\u{fffd}");
        assert_eq!(decode(b"caf\xe9", Some("no-such-encoding")), "caf\u{fffd}");
    }
}
