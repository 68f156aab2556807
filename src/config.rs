//! What one run is asked to do: the plain options the command line turns
//! into, the environment it runs in, and where the settings file is found.
//!
//! Nothing here knows about argh (`cli.rs` converts) or about the JSON
//! inside the settings file (`settings.rs` reads it).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::wire;

/// Holds everything a run needs to know, already parsed.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Says which input describes the push.
    pub mode: Mode,
    /// Names the settings file, overriding every other way of finding it.
    pub settings: Option<PathBuf>,
    /// Names the repository in payloads, overriding the repository's setting.
    pub repository: Option<String>,
    /// Says to print the payloads instead of sending them.
    pub dry_run: bool,
    /// Says how much to print on stderr.
    pub verbosity: Verbosity,
}

/// Names where the commits of a run come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Reads `<old> <new> <ref>` lines from stdin, as a git post-receive hook.
    #[default]
    PostReceive,
    /// Reads `HG_NODE` and `HG_NODE_LAST`, as a Mercurial changegroup hook.
    Changegroup,
    /// Sends what the spool holds, and nothing new.
    Retry,
    /// Explains the settings a push to this repository would use, sending
    /// nothing.
    Check,
    /// Sends a `ping` event to the matching webhooks, or to the one named.
    Ping {
        /// Names the only webhook to ping, matching or not.
        webhook: Option<String>,
    },
    /// Replays a range given by hand: `OLD..NEW` in git, `REV1:REV2` in hg.
    Range {
        /// Gives the range as typed.
        range: String,
        /// Names the branch the commits are reported on, if given.
        refname: Option<String>,
    },
}

/// Sets how much a run prints on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Prints errors only.
    Quiet,
    /// Prints a line per webhook, plus warnings and errors.
    #[default]
    Normal,
    /// Adds a line per ref and per commit.
    Verbose,
}

/// Holds the environment variables of a run, passed in so tests need not
/// change the process's own.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<OsString, OsString>,
}

impl Env {
    /// Captures the environment of the current process.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os().collect(),
        }
    }

    /// Builds an environment from name/value pairs.
    pub fn from_pairs<K: Into<OsString>, V: Into<OsString>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Returns a variable's value; an empty value counts as unset.
    pub fn var(&self, name: &str) -> Option<&OsStr> {
        self.vars
            .get(OsStr::new(name))
            .map(OsString::as_os_str)
            .filter(|v| !v.is_empty())
    }

    /// Returns a variable's value as text, if it is set and valid UTF-8.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.var(name).and_then(OsStr::to_str)
    }
}

/// Tells where the settings file was found, for `--verbose` and errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Came from `--config`.
    Flag,
    /// Came from the `RBG_NOTIFY_CONFIG` environment variable.
    Environment,
    /// Came from the repository's own setting (git config or hgrc).
    Repository(&'static str),
    /// Is the default path.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("--config"),
            Source::Environment => f.write_str(wire::ENV_CONFIG),
            Source::Repository(key) => f.write_str(key),
            Source::Default => f.write_str("the default path"),
        }
    }
}

/// Finds the settings file: `--config`, then `RBG_NOTIFY_CONFIG`, then the
/// repository's setting (already resolved by the caller), then the default
/// path. Returns `None` only when none is named and the default path does
/// not exist; a file that is named but missing is left for reading to
/// report.
pub fn locate_settings(
    config: &Config,
    env: &Env,
    repository_setting: Option<(PathBuf, &'static str)>,
) -> Option<(PathBuf, Source)> {
    if let Some(path) = &config.settings {
        return Some((path.clone(), Source::Flag));
    }
    if let Some(path) = env.var(wire::ENV_CONFIG) {
        return Some((PathBuf::from(path), Source::Environment));
    }
    if let Some((path, key)) = repository_setting {
        return Some((path, Source::Repository(key)));
    }
    let default = default_settings(env);
    default.exists().then_some((default, Source::Default))
}

/// Returns the settings file used when nothing else names one:
/// `/etc/rbg-notify/config.json`, or `$RBG_NOTIFY_DEFAULT_CONFIG` for an
/// installation that keeps its files elsewhere (and for tests, which must
/// not read the machine's own).
pub fn default_settings(env: &Env) -> PathBuf {
    let path = env.var(wire::ENV_DEFAULT_CONFIG);
    PathBuf::from(path.unwrap_or(OsStr::new(wire::DEFAULT_CONFIG_PATH)))
}

/// Lists the places `locate_settings` looks, for the "not found" error.
pub fn settings_not_found(repository_key: &str, env: &Env) -> Error {
    Error::NoConfig {
        tried: vec![
            "--config".to_string(),
            wire::ENV_CONFIG.to_string(),
            repository_key.to_string(),
            default_settings(env).display().to_string(),
        ],
    }
}

/// Resolves a path from a repository setting: `~/` is the home folder, and a
/// relative path is relative to `base` (the repository's own folder).
pub fn resolve_setting_path(value: &str, base: &Path, env: &Env) -> PathBuf {
    if let (Some(rest), Some(home)) = (value.strip_prefix("~/"), env.var("HOME")) {
        return Path::new(home).join(rest);
    }
    base.join(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_environment_beats_repository() {
        let repo = Some((PathBuf::from("/r.json"), wire::GIT_KEY_CONFIG));
        let env = Env::from_pairs([(wire::ENV_CONFIG, "/e.json")]);
        let flag = Config {
            settings: Some("/f.json".into()),
            ..Config::default()
        };
        let found = |c: &Config, e: &Env, r| locate_settings(c, e, r).unwrap();
        assert_eq!(
            found(&flag, &env, repo.clone()),
            ("/f.json".into(), Source::Flag)
        );
        assert_eq!(
            found(&Config::default(), &env, repo.clone()),
            ("/e.json".into(), Source::Environment)
        );
        let bare = Env::from_pairs([(wire::ENV_CONFIG, "")]);
        assert_eq!(
            found(&Config::default(), &bare, repo),
            ("/r.json".into(), Source::Repository(wire::GIT_KEY_CONFIG))
        );
    }

    #[test]
    fn resolves_setting_paths() {
        let env = Env::from_pairs([("HOME", "/home/git")]);
        let base = Path::new("/srv/repo.git");
        assert_eq!(
            resolve_setting_path("~/rb.json", base, &env),
            Path::new("/home/git/rb.json")
        );
        assert_eq!(
            resolve_setting_path("rb.json", base, &env),
            Path::new("/srv/repo.git/rb.json")
        );
        assert_eq!(
            resolve_setting_path("/etc/x.json", base, &env),
            Path::new("/etc/x.json")
        );
    }
}
