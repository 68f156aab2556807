//! A Mercurial repository as a run sees it: running `hg` so that nothing in
//! a user's hgrc changes what we parse, finding the repository root, reading
//! its `[rbgateway]` settings and its name, and turning the changesets of a
//! changegroup or of a `--range` revset into payload commits.
//!
//! Unlike git, Mercurial itself says which changesets a push added
//! (`HG_NODE` through `HG_NODE_LAST`, `hg help config.hooks`), so there is no
//! walk here. Building and sending payloads is left to `payload.rs` and
//! `deliver.rs`.

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

use crate::config::{resolve_setting_path, Env};
use crate::error::Error;
use crate::payload::{self, timestamp, Author, Commit, Target};
use crate::wire;

/// Holds a Mercurial repository and the `hg` program that reads it.
#[derive(Clone, Debug)]
pub struct Repo {
    /// Names the `hg` executable.
    program: OsString,
    /// Gives the repository root, the folder that holds `.hg`.
    root: PathBuf,
}

/// Holds the `[rbgateway]` settings of a repository's hgrc files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Gives `[rbgateway] repository`, the repository name, if set.
    pub repository: Option<String>,
    /// Gives `[rbgateway] config`, the settings file as written, if set.
    pub config: Option<String>,
}

/// Describes one changeset as `hg log -T json` prints it.
#[derive(Debug, Deserialize)]
struct Changeset {
    node: String,
    desc: String,
    branch: String,
    #[serde(default)]
    bookmarks: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    user: String,
    /// Gives the Unix time (a float in some old repositories) and the
    /// offset in seconds west of UTC, Mercurial's sign convention.
    date: (f64, i64),
}

/// Describes one item of `hg config -T json`.
#[derive(Debug, Deserialize)]
struct ConfigItem {
    name: String,
    value: String,
}

/// Opens the repository around the current folder, as `hg root` finds it.
///
/// The program is `$HG` when set (Mercurial sets it for hooks to the `hg`
/// that runs them, `hg help environment`), else `hg` on `PATH`.
pub fn open(env: &Env) -> Result<Repo, Error> {
    let program = env
        .var("HG")
        .map_or_else(|| OsString::from("hg"), OsStr::to_os_string);
    let stdout = run_ok(&program, None, &["root"])?;
    let root = path_from_bytes(trim_newline(&stdout));
    if !root.is_absolute() || !root.is_dir() {
        let message = format!("printed \"{}\", not the path of a folder", root.display());
        return Err(hg_error(&program, &["root"], &message));
    }
    Ok(Repo { program, root })
}

/// Returns the nearest folder at or above `start` that holds a `.hg`
/// folder, without running `hg`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|folder| folder.join(".hg").is_dir())
        .map(Path::to_path_buf)
}

impl Repo {
    /// Returns the repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the `[rbgateway]` settings from every hgrc the repository
    /// sees (system, user and `.hg/hgrc`), as `hg config` does.
    pub fn settings(&self) -> Result<Settings, Error> {
        let args = ["config", "-T", "json", wire::HG_SECTION];
        let output = run(&self.program, Some(&self.root), &args)?;
        // `hg config` exits 1 when the section has no items.
        match output.status.code() {
            Some(0) => parse_settings(&output.stdout)
                .map_err(|e| hg_error(&self.program, &args, &unparsable(&e))),
            Some(1) => Ok(Settings::default()),
            _ => Err(failure(&self.program, &args, &output)),
        }
    }

    /// Returns the full node of one revision, such as `tip`.
    pub fn node(&self, rev: &str) -> Result<String, Error> {
        let commits = self.commits(rev, None)?;
        match commits.into_iter().next() {
            Some(commit) => Ok(commit.id),
            None => Err(Error::Hg {
                command: format!("hg log --rev={rev}"),
                message: "listed no changeset".to_string(),
            }),
        }
    }

    /// Returns the tip's revision number and node: -1 and the null node
    /// for an empty repository.
    pub fn tip(&self) -> Result<(i64, String), Error> {
        #[derive(Deserialize)]
        struct Tip {
            rev: Option<i64>,
            node: String,
        }
        let args = ["log", "--hidden", "-T", "json", "--rev=tip"];
        let stdout = run_ok(&self.program, Some(&self.root), &args)?;
        let tips: Vec<Tip> = serde_json::from_slice(&stdout)
            .map_err(|e| hg_error(&self.program, &args, &unparsable(&e)))?;
        match tips.into_iter().next() {
            Some(tip) => Ok((tip.rev.unwrap_or(-1), tip.node)),
            None => Err(hg_error(&self.program, &args, "listed no changeset")),
        }
    }

    /// Describes the changesets of `revset`, in the order `hg log` lists
    /// them, on `branch` when given, else on each changeset's own branch.
    pub fn commits(&self, revset: &str, branch: Option<&str>) -> Result<Vec<Commit>, Error> {
        // --hidden: an obsolete changeset in the range must not abort the
        // lookup. `--rev=` keeps a revset that starts with `-` a value.
        let rev = format!("--rev={revset}");
        let args = ["log", "--hidden", "-T", "json", rev.as_str()];
        let stdout = run_ok(&self.program, Some(&self.root), &args)?;
        let changesets =
            parse_log(&stdout).map_err(|e| hg_error(&self.program, &args, &unparsable(&e)))?;
        Ok(changesets
            .into_iter()
            .map(|c| describe(c, branch))
            .collect())
    }
}

/// Returns the settings file named by `[rbgateway] config`, if set,
/// resolved against the repository root.
pub fn settings_path(
    repo: &Repo,
    settings: &Settings,
    env: &Env,
) -> Option<(PathBuf, &'static str)> {
    let value = settings.config.as_deref()?;
    let path = resolve_setting_path(value, repo.root(), env);
    Some((path, wire::HG_KEY_CONFIG))
}

/// Returns the name of the repository root folder.
pub fn folder_name(repo: &Repo) -> Result<String, Error> {
    let folder = repo
        .root()
        .canonicalize()
        .unwrap_or_else(|_| repo.root().to_path_buf());
    match folder.file_name() {
        Some(name) => Ok(name.to_string_lossy().into_owned()),
        None => Err(Error::Usage(format!(
            "cannot name the repository at {}; set [rbgateway] repository in its hgrc \
             or give --repository",
            folder.display()
        ))),
    }
}

/// Returns the first and last changeset of the changegroup a hook was run
/// for: `HG_NODE` and `HG_NODE_LAST`, the latter `None` when Mercurial is
/// too old to set it (then the changegroup ends at the tip).
pub fn changegroup_nodes(env: &Env) -> Result<(&str, Option<&str>), Error> {
    let first = node_var(env, wire::HG_ENV_NODE)?.ok_or_else(|| {
        Error::Usage(format!(
            "{} is not set; run rbg-notify as a Mercurial changegroup hook, or give --range",
            wire::HG_ENV_NODE
        ))
    })?;
    Ok((first, node_var(env, wire::HG_ENV_NODE_LAST)?))
}

/// Returns the revset for `--range`: any revset, typically `REV1:REV2`,
/// listed oldest first.
pub fn range_revset(range: &str) -> Result<String, Error> {
    if range.trim().is_empty() {
        return Err(Error::Usage(
            "--range must name a revset, such as REV1:REV2".to_string(),
        ));
    }
    Ok(format!("sort(({range}), rev)"))
}

/// Reads a node id from the environment, refusing anything but hex so the
/// value cannot change the meaning of the revset it goes into.
fn node_var<'a>(env: &'a Env, name: &str) -> Result<Option<&'a str>, Error> {
    let Some(value) = env.var(name) else {
        return Ok(None);
    };
    match value.to_str() {
        // All f's is Mercurial's id of the working directory, never a
        // changeset a push added.
        Some(text) if text.bytes().all(|b| b == b'f') => Err(Error::Usage(format!(
            "{name} is the working directory's id, not a changeset"
        ))),
        Some(text) if text.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(text)),
        _ => Err(Error::Usage(format!(
            "{name} is not a changeset id: \"{}\"",
            value.to_string_lossy()
        ))),
    }
}

/// Turns a changeset into a payload commit.
fn describe(changeset: Changeset, branch: Option<&str>) -> Commit {
    let (seconds, west) = changeset.date;
    let tags = changeset
        .tags
        .into_iter()
        .filter(|tag| tag != wire::HG_TIP)
        .collect();
    Commit {
        id: changeset.node,
        message: payload::clip_message(changeset.desc),
        target: Target {
            branch: Some(branch.map_or(changeset.branch, str::to_string)),
            bookmarks: changeset.bookmarks,
            tags,
        },
        author: Some(split_user(&changeset.user)),
        timestamp: hg_timestamp(seconds, west),
    }
}

/// Formats Mercurial's date, whose offset counts seconds west of UTC (the
/// opposite sign of RFC 3339's), or `None` when it cannot be represented.
fn hg_timestamp(seconds: f64, west: i64) -> Option<String> {
    let east = i32::try_from(west.checked_neg()?).ok()?;
    // Saturating and truncating: whole seconds are all RFC 3339 shows here.
    timestamp(seconds.floor() as i64, east)
}

/// Splits a Mercurial user string, free text by convention
/// `Name <email>`, into a name and an email address (empty when none).
fn split_user(user: &str) -> Author {
    let user = user.trim();
    if let Some((name, rest)) = user.split_once('<') {
        if let Some((email, _)) = rest.split_once('>') {
            let (name, email) = (name.trim(), email.trim());
            return Author {
                name: if name.is_empty() { email } else { name }.to_string(),
                email: email.to_string(),
            };
        }
    }
    let is_address = user.contains('@') && !user.contains(char::is_whitespace);
    Author {
        name: user.to_string(),
        email: if is_address { user } else { "" }.to_string(),
    }
}

/// Parses `hg log -T json`. Bytes that are not UTF-8 (Mercurial escapes
/// undecodable bytes in its own way) become U+FFFD rather than failing.
fn parse_log(stdout: &[u8]) -> Result<Vec<Changeset>, serde_json::Error> {
    serde_json::from_str(&String::from_utf8_lossy(stdout))
}

/// Parses `hg config -T json rbgateway`.
fn parse_settings(stdout: &[u8]) -> Result<Settings, serde_json::Error> {
    let items: Vec<ConfigItem> = serde_json::from_str(&String::from_utf8_lossy(stdout))?;
    let mut settings = Settings::default();
    for item in items.into_iter().filter(|i| !i.value.is_empty()) {
        if item.name == wire::GIT_KEY_REPOSITORY {
            settings.repository = Some(item.value);
        } else if item.name == wire::GIT_KEY_CONFIG {
            settings.config = Some(item.value);
        }
    }
    Ok(settings)
}

/// Runs `hg` and returns its stdout, or an error if it did not exit 0.
fn run_ok(program: &OsStr, root: Option<&Path>, args: &[&str]) -> Result<Vec<u8>, Error> {
    let output = run(program, root, args)?;
    if !output.status.success() {
        return Err(failure(program, args, &output));
    }
    Ok(output.stdout)
}

/// Runs `hg` with `args` in `root`, whatever its exit status, in an
/// environment where the user's hgrc cannot change its output.
fn run(program: &OsStr, root: Option<&Path>, args: &[&str]) -> Result<Output, Error> {
    let mut command = Command::new(program);
    // HGPLAIN turns off [defaults], [alias], localized messages and other
    // output tweaks (`hg help scripting`); HGPLAINEXCEPT would turn some
    // back on. `+strictflags` stops a value such as a revset from being read
    // as `--config` or `-R`, which must then come first.
    command
        .env("HGPLAIN", "+strictflags")
        .env_remove("HGPLAINEXCEPT")
        .env("HGENCODING", "utf-8");
    if let Some(root) = root {
        command.arg("-R").arg(root);
    }
    command.args(args).output().map_err(|e| {
        let message = match e.kind() {
            ErrorKind::NotFound => "hg not found; install Mercurial or put hg on PATH".to_string(),
            _ => format!("cannot run hg: {e}"),
        };
        hg_error(program, args, &message)
    })
}

/// Builds the error for a command that exited with a failure, quoting the
/// first line of its stderr (Mercurial's `abort: ...`).
fn failure(program: &OsStr, args: &[&str], output: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
    let status = match output.status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    };
    let message = match first {
        Some(line) => format!("{status}: {line}"),
        None => status,
    };
    hg_error(program, args, &message)
}

/// Builds an `Error::Hg` naming the command as it was run.
fn hg_error(program: &OsStr, args: &[&str], message: &str) -> Error {
    Error::Hg {
        command: format!("{} {}", program.to_string_lossy(), args.join(" ")),
        message: message.to_string(),
    }
}

/// Says that a command's output could not be parsed, and why.
fn unparsable(error: &serde_json::Error) -> String {
    format!("cannot parse its output: {error}")
}

/// Removes the line end `hg root` prints.
fn trim_newline(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// Turns the bytes of a path `hg` printed into a path; on Unix they are the
/// file system's own bytes, whatever the encoding.
#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// Turns the bytes of a path `hg` printed (UTF-8, HGENCODING) into a path.
#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `hg log --hidden -T json -r 0:tip` output (Mercurial 6.3): dates
    /// east and west of UTC, a user without an address, a tag, a named
    /// branch, a bookmark and the `tip` pseudo-tag.
    const LOG: &str = r#"[
 {
  "bookmarks": [],
  "branch": "default",
  "date": [1700000000, -3600],
  "desc": "first",
  "node": "9bbae5c795721a391a6c9002b8569c5e5bd286a9",
  "parents": ["0000000000000000000000000000000000000000"],
  "phase": "draft",
  "rev": 0,
  "tags": [],
  "user": "A U Thor <a@example.com>"
 },
 {
  "bookmarks": [],
  "branch": "default",
  "date": [1700000060, 0],
  "desc": "Fix café ✓\n\nbody",
  "node": "d2ebae7162d87e174d527f76e08bf4412ddf371b",
  "parents": ["9bbae5c795721a391a6c9002b8569c5e5bd286a9"],
  "phase": "draft",
  "rev": 1,
  "tags": ["v1"],
  "user": "Just A Name"
 },
 {
  "bookmarks": [],
  "branch": "default",
  "date": [1700000090, 0],
  "desc": "Added tag v1 for changeset d2ebae7162d8",
  "node": "09a4e6f8a1c0e554697180b4ae330e4512bd7f77",
  "parents": ["d2ebae7162d87e174d527f76e08bf4412ddf371b"],
  "phase": "draft",
  "rev": 2,
  "tags": [],
  "user": "A U Thor <a@example.com>"
 },
 {
  "bookmarks": ["feat"],
  "branch": "stable",
  "date": [1700000120, 7200],
  "desc": "Start stable",
  "node": "6236fa62c5d5badab6ed55f84416757675f8c333",
  "parents": ["09a4e6f8a1c0e554697180b4ae330e4512bd7f77"],
  "phase": "draft",
  "rev": 3,
  "tags": ["tip"],
  "user": "A U Thor <a@example.com>"
 }
]
"#;

    fn commits(branch: Option<&str>) -> Vec<Commit> {
        let changesets = parse_log(LOG.as_bytes()).unwrap();
        changesets
            .into_iter()
            .map(|c| describe(c, branch))
            .collect()
    }

    #[test]
    fn parses_hg_log_json_in_order() {
        let commits = commits(None);
        let ids: Vec<&str> = commits.iter().map(|c| &c.id[..8]).collect();
        assert_eq!(ids, ["9bbae5c7", "d2ebae71", "09a4e6f8", "6236fa62"]);
        assert_eq!(commits[1].message, "Fix café ✓\n\nbody");
        assert_eq!(
            commits[1].target,
            Target {
                branch: Some("default".into()),
                bookmarks: vec![],
                tags: vec!["v1".into()],
            }
        );
        let last = &commits[3].target;
        assert_eq!(last.branch.as_deref(), Some("stable"));
        assert_eq!(last.bookmarks, ["feat"]);
        assert!(last.tags.is_empty(), "tip is not a tag: {:?}", last.tags);
        let author = commits[0].author.as_ref().unwrap();
        assert_eq!(
            (&*author.name, &*author.email),
            ("A U Thor", "a@example.com")
        );
    }

    #[test]
    fn ref_overrides_every_branch() {
        for commit in commits(Some("release")) {
            assert_eq!(commit.target.branch.as_deref(), Some("release"));
        }
    }

    #[test]
    fn flips_the_offset_sign() {
        // `hg log -T '{date|rfc3339date}'` prints these for the same dates.
        let commits = commits(None);
        let times: Vec<_> = commits.iter().map(|c| c.timestamp.as_deref()).collect();
        assert_eq!(
            times,
            [
                Some("2023-11-14T23:13:20+01:00"),
                Some("2023-11-14T22:14:20Z"),
                Some("2023-11-14T22:14:50Z"),
                Some("2023-11-14T20:15:20-02:00"),
            ]
        );
        assert_eq!(
            hg_timestamp(1700000000.7, 0).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(hg_timestamp(0.0, i64::MIN), None);
        assert_eq!(hg_timestamp(0.0, 100 * 3600), None);
    }

    #[test]
    fn splits_user_strings() {
        let split = |user: &str| {
            let a = split_user(user);
            (a.name, a.email)
        };
        let pair = |n: &str, e: &str| (n.to_string(), e.to_string());
        assert_eq!(split("A U Thor <a@x.org>"), pair("A U Thor", "a@x.org"));
        assert_eq!(split(" Ann<ann@x.org> (work)"), pair("Ann", "ann@x.org"));
        assert_eq!(split("<a@x.org>"), pair("a@x.org", "a@x.org"));
        assert_eq!(split("a@x.org"), pair("a@x.org", "a@x.org"));
        assert_eq!(split("Just A Name"), pair("Just A Name", ""));
        assert_eq!(split("Broken <a@x.org"), pair("Broken <a@x.org", ""));
        assert_eq!(split(""), pair("", ""));
    }

    #[test]
    fn rejects_output_that_is_not_hg_json() {
        assert!(parse_log(b"changeset:   0:9bbae5c79572\n").is_err());
        assert!(parse_log(br#"[{"node": "ab"}]"#).is_err());
        assert!(parse_log(b"[\n]\n").unwrap().is_empty());
        // Bytes that are not UTF-8 are replaced, not fatal.
        let mut bytes = LOG.replacen("first", "caf#", 1).into_bytes();
        let at = bytes.iter().position(|&b| b == b'#').unwrap();
        bytes[at] = 0xff;
        assert_eq!(parse_log(&bytes).unwrap()[0].desc, "caf\u{fffd}");
    }

    #[test]
    fn reads_changegroup_nodes() {
        let first = "9bbae5c795721a391a6c9002b8569c5e5bd286a9";
        let last = "7ca614b525437fb14cba9a0e4d0f7d7459989503";
        let both = Env::from_pairs([("HG_NODE", first), ("HG_NODE_LAST", last)]);
        assert_eq!(changegroup_nodes(&both).unwrap(), (first, Some(last)));
        let old = Env::from_pairs([("HG_NODE", first)]);
        assert_eq!(changegroup_nodes(&old).unwrap(), (first, None));

        let missing = changegroup_nodes(&Env::default()).unwrap_err();
        assert!(missing.to_string().starts_with("HG_NODE is not set"));
        let evil = Env::from_pairs([("HG_NODE", first), ("HG_NODE_LAST", "tip) or all(")]);
        assert_eq!(
            changegroup_nodes(&evil).unwrap_err().to_string(),
            "HG_NODE_LAST is not a changeset id: \"tip) or all(\""
        );
    }

    #[test]
    fn sorts_range_revsets() {
        assert_eq!(range_revset("5:2").unwrap(), "sort((5:2), rev)");
        assert!(range_revset(" ").is_err());
    }

    #[test]
    fn reads_rbgateway_settings() {
        // Real `hg config -T json rbgateway` output.
        let json = br#"[
 {
  "defaultvalue": null,
  "name": "rbgateway.repository",
  "source": "/tmp/hgx/srv/.hg/hgrc:4",
  "value": "My Repo"
 },
 {
  "defaultvalue": null,
  "name": "rbgateway.config",
  "source": "/tmp/hgx/srv/.hg/hgrc:5",
  "value": "rb.json"
 }
]
"#;
        assert_eq!(
            parse_settings(json).unwrap(),
            Settings {
                repository: Some("My Repo".into()),
                config: Some("rb.json".into()),
            }
        );
        assert_eq!(parse_settings(b"[\n]\n").unwrap(), Settings::default());
    }

    #[test]
    fn finds_the_nearest_hg_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("repo/src/module");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_root(&deep), None);
        std::fs::create_dir(tmp.path().join("repo/.hg")).unwrap();
        assert_eq!(find_root(&deep), Some(tmp.path().join("repo")));
    }

    #[test]
    fn names_a_missing_hg() {
        let env = Env::from_pairs([("HG", "/nonexistent/bin/hg")]);
        let error = open(&env).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`/nonexistent/bin/hg root`: hg not found; install Mercurial or put hg on PATH"
        );
    }
}
