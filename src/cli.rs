//! The command line: argh's view of the flags, and its conversion into the
//! plain `Config` the rest of the library works with.
//!
//! Which mode a run is in also depends on how the program was invoked (a
//! `post-receive` symlink gets no arguments) and on Mercurial's hook
//! variables; both are decided here and nowhere else.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::config::{Config, Env, Mode, Verbosity};

/// Sends signed push webhooks for a git or Mercurial repository.
#[derive(FromArgs, Debug, Default, PartialEq)]
#[argh(
    note = r"Modes:
  (no flag)  as a git post-receive hook (a symlink named post-receive, or an
             entry of post-receive.d) reads the ref updates on stdin; as a
             Mercurial hook ([hooks] changegroup.rbgateway = rbg-notify)
             reads HG_NODE and HG_NODE_LAST; prints a line per webhook
  --range    replays commits by hand; with --dry-run, prints the payloads
  --retry    sends the deliveries failures left in the spool (for cron)
  --check    explains the settings file, the repository name and why each
             webhook matches or not; sends nothing; exits 0 when a webhook
             matches, 1 when none does, 2 on a settings error
  --ping     sends a ping event to each matching webhook (or --webhook ID)
             and prints each answer; exits 0 when all answered 2xx

The settings file is --config, else $RBG_NOTIFY_CONFIG, else the repository's
rbgateway.config, else /etc/rbg-notify/config.json. rb-gateway's config.json
and its webhooks file are read as they are.

Examples:
  rbg-notify --range ..HEAD --dry-run
  rbg-notify --range 1a2b3c4..5d6e7f8 --ref refs/heads/main -c /etc/rbg.json
  cd /srv/git/project.git && rbg-notify --check
  cd /srv/git/project.git && rbg-notify --ping --webhook reviews
  rbg-notify --retry --quiet",
    error_code(0, "every delivery got a 2xx answer, or there was nothing to send"),
    error_code(1, "a delivery failed"),
    error_code(2, "bad usage, configuration or input")
)]
pub struct Args {
    /// settings file (default: $RBG_NOTIFY_CONFIG, then the repository's
    /// rbgateway.config setting, then /etc/rbg-notify/config.json)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,

    /// repository name sent in the payload (default: the rbgateway.repository
    /// setting, then rb-gateway's name for this path, then the repository
    /// folder's name without .git)
    #[argh(option)]
    pub repository: Option<String>,

    /// replay the commits of OLD..NEW (git) or REV1:REV2 (Mercurial) instead
    /// of reading a push
    #[argh(option)]
    pub range: Option<String>,

    /// with --range: the branch the commits landed on, such as
    /// refs/heads/main (default: the branch whose tip is NEW)
    #[argh(option, long = "ref")]
    pub refname: Option<String>,

    /// send the deliveries waiting in the repository's spool, and nothing new
    #[argh(switch)]
    pub retry: bool,

    /// explain what a push to this repository would do: the settings file
    /// and why, the repository name and why, and which webhooks match; sends
    /// nothing
    #[argh(switch)]
    pub check: bool,

    /// send a ping event to each webhook that matches this repository and
    /// print each answer
    #[argh(switch)]
    pub ping: bool,

    /// with --ping: ping only the webhook with this id, matching or not
    #[argh(option)]
    pub webhook: Option<String>,

    /// read git ref updates from stdin, as when installed as post-receive
    #[argh(switch)]
    pub post_receive: bool,

    /// read a Mercurial changegroup from HG_NODE and HG_NODE_LAST
    #[argh(switch)]
    pub changegroup: bool,

    /// print the payloads to stdout, one per line, and send nothing
    #[argh(switch, short = 'n')]
    pub dry_run: bool,

    /// also print each ref and commit found
    #[argh(switch, short = 'v')]
    pub verbose: bool,

    /// print errors only
    #[argh(switch, short = 'q')]
    pub quiet: bool,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,
}

impl Args {
    /// Converts the flags into a `Config`, choosing the mode from the flags,
    /// then from the name the program was invoked as (`argv0`), then from
    /// Mercurial's hook variables.
    pub fn into_config(self, argv0: &OsStr, env: &Env) -> Result<Config, String> {
        let explicit = [
            self.range.is_some(),
            self.retry,
            self.check,
            self.ping,
            self.post_receive,
            self.changegroup,
        ];
        if explicit.iter().filter(|&&set| set).count() > 1 {
            return Err(
                "--range, --retry, --check, --ping, --post-receive and --changegroup \
                        exclude each other"
                    .to_string(),
            );
        }
        if (self.retry || self.check || self.ping) && self.dry_run {
            return Err("--dry-run only applies to reading a push or --range".to_string());
        }
        if self.webhook.is_some() && !self.ping {
            return Err("--webhook only makes sense with --ping".to_string());
        }
        if self.refname.is_some() && self.range.is_none() {
            return Err("--ref only makes sense with --range".to_string());
        }
        if self.verbose && self.quiet {
            return Err("--verbose and --quiet exclude each other".to_string());
        }
        if self.repository.as_deref() == Some("") {
            return Err("--repository must not be empty".to_string());
        }
        if self
            .repository
            .as_deref()
            .is_some_and(|r| r.chars().any(char::is_control))
        {
            return Err("--repository must not contain control characters".to_string());
        }

        let mode = if let Some(range) = self.range {
            Mode::Range {
                range,
                refname: self.refname,
            }
        } else if self.retry {
            Mode::Retry
        } else if self.check {
            Mode::Check
        } else if self.ping {
            Mode::Ping {
                webhook: self.webhook,
            }
        } else if self.post_receive || invoked_as_post_receive(Path::new(argv0)) {
            Mode::PostReceive
        } else if self.changegroup || invoked_as_changegroup(env) {
            Mode::Changegroup
        } else {
            return Err(
                "nothing to do: install rbg-notify as a git post-receive or Mercurial \
                 changegroup hook (a wrapper script gives --post-receive or --changegroup), \
                 or give --range, --retry, --check or --ping (see --help)"
                    .to_string(),
            );
        };

        let verbosity = match (self.verbose, self.quiet) {
            (true, _) => Verbosity::Verbose,
            (_, true) => Verbosity::Quiet,
            _ => Verbosity::Normal,
        };
        Ok(Config {
            mode,
            settings: self.config,
            repository: self.repository,
            dry_run: self.dry_run,
            verbosity,
        })
    }
}

/// Says why a run ends before it starts.
#[derive(Debug, PartialEq, Eq)]
pub enum Early {
    /// Prints this text on stdout and succeeds (`--help`, `--version`).
    Print(String),
    /// Reports this usage error.
    Usage(String),
}

/// Parses the whole command line (`argv[0]` included) into a `Config`.
pub fn parse(argv: &[OsString], env: &Env) -> Result<Config, Early> {
    let argv0 = argv.first().map(OsString::as_os_str).unwrap_or_default();
    let words: Option<Vec<&str>> = argv.iter().skip(1).map(|a| a.to_str()).collect();
    let words = words.ok_or_else(|| Early::Usage("arguments must be valid UTF-8".to_string()))?;

    // argh::from_env would exit 1 on a bad flag; 1 means "a delivery
    // failed" here, so parse by hand and exit 2.
    let args = match Args::from_args(&["rbg-notify"], &words) {
        Ok(args) => args,
        Err(argh::EarlyExit {
            output,
            status: Ok(()),
        }) => return Err(Early::Print(output)),
        Err(argh::EarlyExit {
            output,
            status: Err(()),
        }) => {
            return Err(Early::Usage(lowercase_first(output.trim_end())));
        }
    };
    if args.version {
        return Err(Early::Print(format!(
            "rbg-notify {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    args.into_config(argv0, env).map_err(Early::Usage)
}

/// Lowercases a message's first letter: argh capitalises its messages.
fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    first.into_iter().chain(chars).collect()
}

/// Returns whether the program runs as git's post-receive hook: a symlink
/// named `post-receive`, or an entry of a `post-receive.d` folder run by a
/// dispatcher hook.
fn invoked_as_post_receive(argv0: &Path) -> bool {
    let name = argv0.file_name().and_then(OsStr::to_str);
    let folder = argv0
        .parent()
        .and_then(Path::file_name)
        .and_then(OsStr::to_str);
    name == Some("post-receive") || folder == Some("post-receive.d")
}

/// Returns whether Mercurial runs the program as a changegroup hook
/// (`hg help config.hooks`: HG_HOOKTYPE names the hook, HG_NODE the first
/// added changeset).
fn invoked_as_changegroup(env: &Env) -> bool {
    env.text("HG_HOOKTYPE") == Some("changegroup") && env.var("HG_NODE").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str], argv0: &str, env: &Env) -> Result<Config, String> {
        let args = Args::from_args(&["rbg-notify"], args).map_err(|e| e.output)?;
        args.into_config(OsStr::new(argv0), env)
    }

    #[test]
    fn picks_the_mode_from_flags_name_and_environment() {
        let none = Env::default();
        let hg = Env::from_pairs([("HG_HOOKTYPE", "changegroup"), ("HG_NODE", "abc")]);
        assert_eq!(
            config(&[], "/srv/r.git/hooks/post-receive", &none)
                .unwrap()
                .mode,
            Mode::PostReceive
        );
        assert_eq!(
            config(&[], "hooks/post-receive.d/50-rbg", &none)
                .unwrap()
                .mode,
            Mode::PostReceive
        );
        assert_eq!(
            config(&[], "/usr/bin/rbg-notify", &hg).unwrap().mode,
            Mode::Changegroup
        );
        assert_eq!(
            config(&["--post-receive"], "rbg-notify", &hg).unwrap().mode,
            Mode::PostReceive
        );
        let range = config(
            &["--range", "a..b", "--ref", "refs/heads/x"],
            "post-receive",
            &none,
        )
        .unwrap();
        assert_eq!(
            range.mode,
            Mode::Range {
                range: "a..b".into(),
                refname: Some("refs/heads/x".into())
            }
        );
        assert!(config(&[], "/usr/bin/rbg-notify", &none)
            .unwrap_err()
            .starts_with("nothing to do"));
        assert_eq!(
            config(&["--check"], "post-receive", &none).unwrap().mode,
            Mode::Check
        );
        assert_eq!(
            config(&["--ping", "--webhook", "rb"], "x", &none)
                .unwrap()
                .mode,
            Mode::Ping {
                webhook: Some("rb".into())
            }
        );
    }

    #[test]
    fn rejects_contradictions() {
        let env = Env::default();
        assert!(config(&["--range", "a..b", "--post-receive"], "x", &env).is_err());
        assert!(config(&["--retry", "--range", "a..b"], "x", &env).is_err());
        assert!(config(&["--retry", "--dry-run"], "x", &env).is_err());
        assert!(config(&["--check", "--ping"], "x", &env).is_err());
        assert!(config(&["--check", "--dry-run"], "x", &env).is_err());
        assert!(config(&["--webhook", "rb", "--check"], "x", &env).is_err());
        assert!(config(&["--ref", "main", "--post-receive"], "x", &env).is_err());
        assert!(config(&["-v", "-q", "--post-receive"], "x", &env).is_err());
        assert!(config(&["--repository", "", "--post-receive"], "x", &env).is_err());
    }

    #[test]
    fn parses_whole_command_lines() {
        let argv = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        let env = Env::default();
        let version = parse(&argv(&["post-receive", "--version"]), &env).unwrap_err();
        assert_eq!(
            version,
            Early::Print(format!("rbg-notify {}", env!("CARGO_PKG_VERSION")))
        );
        let bogus = parse(&argv(&["rbg-notify", "--bogus"]), &env).unwrap_err();
        assert_eq!(
            bogus,
            Early::Usage("unrecognized argument: --bogus".to_string())
        );
        assert!(matches!(
            parse(&argv(&["x", "--help"]), &env),
            Err(Early::Print(_))
        ));
        assert_eq!(
            parse(&argv(&["hooks/post-receive"]), &env).unwrap().mode,
            Mode::PostReceive
        );
    }

    #[test]
    fn maps_flags_to_config() {
        let env = Env::default();
        let c = config(
            &["-n", "-q", "-c", "/c.json", "--repository", "r1"],
            "post-receive",
            &env,
        )
        .unwrap();
        assert!(c.dry_run);
        assert_eq!(c.verbosity, Verbosity::Quiet);
        assert_eq!(c.settings, Some(PathBuf::from("/c.json")));
        assert_eq!(c.repository.as_deref(), Some("r1"));
    }
}
