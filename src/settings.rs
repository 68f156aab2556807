//! The settings file: reading the webhooks it lists and checking every field.
//!
//! Three shapes are read. Ours is a JSON object with a `webhooks` array;
//! other top-level keys belong to other tools and are left alone.
//! rb-gateway's own `config.json` has a `repositories` list (`name`, `path`,
//! `scm`) and names its webhooks file with `webhookStorePath`, relative to
//! the config file's folder ([gw] `config.go`); that webhooks file, a bare
//! JSON list of webhooks, is read as a settings file too. Inside a webhook
//! every key must be known, so a typo cannot silently turn a webhook off.
//! Finding the file (flag, environment, repository setting, default) is left
//! to `config.rs`, which knows the repository; matching webhooks to a push,
//! and repository paths to rb-gateway's names, happens here.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::fields::{json_error, kind, Fields};
use crate::payload;

/// Gives the connect and read timeout of a delivery when none is set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Gives the longest a run may spend delivering when no budget is set, so
/// a push is never held longer, however many webhooks fail.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

/// The keys a webhook may have. `repos` is rb-gateway's own name for
/// `repositories`, accepted so its webhooks file can be reused as is.
const WEBHOOK_KEYS: &[&str] = &[
    "id",
    "url",
    "secret",
    "enabled",
    "events",
    "repositories",
    "repos",
    "timeout",
    "max_commits",
    "branches",
    "ca_file",
];

/// Gives rb-gateway's webhooks file when its config names none ([gw]
/// `config.go`).
const GATEWAY_DEFAULT_WEBHOOKS: &str = "webhooks.json";

/// Names rb-gateway's config key for its webhooks file.
const GATEWAY_KEY_WEBHOOKS: &str = "webhookStorePath";

/// Names an event a webhook can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Commits reached the repository.
    Push,
}

/// Describes one configured receiver.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// Identifies the webhook in messages; never the secret.
    pub id: String,
    /// Gives the http or https URL deliveries are POSTed to.
    pub url: String,
    /// Gives the HMAC-SHA1 key, used as UTF-8 bytes.
    pub secret: String,
    /// Says whether deliveries are made at all.
    pub enabled: bool,
    /// Lists the events the webhook hears of.
    pub events: Vec<Event>,
    /// Lists the repository names the webhook hears of.
    pub repositories: Vec<String>,
    /// Bounds the time of one delivery, connection and answer included.
    pub timeout: Duration,
    /// Bounds the commits in one payload.
    pub max_commits: usize,
    /// Lists the branch patterns the webhook hears of (`*` any run of
    /// characters, `?` one), or `None` for every branch.
    pub branches: Option<Vec<String>>,
    /// Names a PEM file of CA certificates to trust besides the bundled
    /// roots; a relative path is relative to the folder of the file that
    /// lists the webhook.
    pub ca_file: Option<PathBuf>,
}

impl Webhook {
    /// Returns whether the webhook hears of pushes to `branch`.
    pub fn wants_branch(&self, branch: &str) -> bool {
        self.branches
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| glob_match(p, branch)))
    }

    /// Returns whether this webhook wants `event` from `repository`.
    pub fn wants(&self, event: Event, repository: &str) -> bool {
        self.enabled
            && self.events.contains(&event)
            && self.repositories.iter().any(|r| r == repository)
    }
}

/// Describes one entry of rb-gateway's `repositories` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayRepository {
    /// Gives the repository name rb-gateway sends.
    pub name: String,
    /// Gives the repository's folder, made absolute against the config
    /// file's folder.
    pub path: PathBuf,
    /// Gives `scm` (`git` or `hg`), if set.
    pub scm: Option<String>,
}

/// Holds a loaded and checked configuration file.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Names the file the settings were read from.
    pub path: PathBuf,
    /// Names the file the webhooks were read from: `path` itself, or
    /// rb-gateway's webhooks file.
    pub webhooks_path: PathBuf,
    /// Lists the webhooks in file order.
    pub webhooks: Vec<Webhook>,
    /// Lists rb-gateway's repositories, empty for our own format.
    pub repositories: Vec<GatewayRepository>,
    /// Names the folder holding each repository's spool, if set; relative
    /// paths are relative to the settings file's folder.
    pub spool_dir: Option<PathBuf>,
    /// Bounds the time a run spends delivering.
    pub budget: Duration,
    /// Names the HTTP proxy deliveries go through, overriding the
    /// environment's `https_proxy`/`http_proxy`.
    pub proxy: Option<String>,
    /// Names a PEM file of CA certificates to trust besides the bundled
    /// roots; a relative path is relative to the settings file's folder.
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        let bytes = fs::read(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(path, &bytes)
    }

    /// Checks configuration file contents; `path` names the file in errors
    /// and anchors relative paths. rb-gateway's webhooks file, when the
    /// contents name one, is read from disk, and so is every CA file named,
    /// to check it.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Settings, Error> {
        let fail = |message: String| config_error(path, message);
        let root: Value = serde_json::from_slice(bytes).map_err(|e| fail(json_error(&e)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let root = match root {
            Value::Array(list) => {
                let webhooks = parse_webhooks(&list, base).map_err(fail)?;
                return Ok(Settings::new(path, path, webhooks));
            }
            Value::Object(root) => root,
            other => {
                return Err(fail(format!(
                    "expected a JSON object or a list of webhooks, found {}",
                    kind(&other)
                )))
            }
        };
        let top = Fields {
            map: &root,
            label: "settings",
        };

        let repositories = match root.get("repositories") {
            None => Vec::new(),
            Some(_) => parse_repositories(&top, base).map_err(fail)?,
        };
        let gateway = root.contains_key(GATEWAY_KEY_WEBHOOKS) || root.contains_key("repositories");
        let mut settings = match root.get("webhooks") {
            Some(Value::Array(list)) => {
                Settings::new(path, path, parse_webhooks(list, base).map_err(fail)?)
            }
            Some(other) => {
                return Err(fail(format!(
                    "field \"webhooks\": expected an array, found {}",
                    kind(other)
                )))
            }
            None if gateway => load_gateway_webhooks(path, &top, base)?,
            None => {
                return Err(fail(format!(
                    "missing field \"webhooks\" (or rb-gateway's \"{GATEWAY_KEY_WEBHOOKS}\")"
                )))
            }
        };

        settings.repositories = repositories;
        if root.contains_key("spool_dir") {
            let dir = PathBuf::from(top.string("spool_dir").map_err(fail)?);
            settings.spool_dir = Some(base.join(dir));
        }
        settings.budget = top.seconds("budget", DEFAULT_BUDGET).map_err(fail)?;
        if root.contains_key("proxy") {
            settings.proxy = Some(top.proxy("proxy").map_err(fail)?);
        }
        if root.contains_key("ca_file") {
            settings.ca_file = Some(top.ca_file("ca_file", base).map_err(fail)?);
        }
        Ok(settings)
    }

    /// Builds settings with these webhooks and every other field unset.
    fn new(path: &Path, webhooks_path: &Path, webhooks: Vec<Webhook>) -> Settings {
        Settings {
            path: path.to_path_buf(),
            webhooks_path: webhooks_path.to_path_buf(),
            webhooks,
            repositories: Vec::new(),
            spool_dir: None,
            budget: DEFAULT_BUDGET,
            proxy: None,
            ca_file: None,
        }
    }

    /// Returns every CA file the settings name, the top-level one first,
    /// each once.
    pub fn ca_files(&self) -> Vec<&Path> {
        let named = self.webhooks.iter().map(|w| w.ca_file.as_deref());
        let mut files: Vec<&Path> = Vec::new();
        for file in std::iter::once(self.ca_file.as_deref())
            .chain(named)
            .flatten()
        {
            if !files.contains(&file) {
                files.push(file);
            }
        }
        files
    }

    /// Returns the rb-gateway repository whose path is one of `folders`,
    /// both compared once symlinks and `..` are resolved.
    pub fn gateway_repository(&self, folders: &[PathBuf]) -> Option<&GatewayRepository> {
        let folders: Vec<PathBuf> = folders.iter().map(|f| canonical(f)).collect();
        self.repositories
            .iter()
            .find(|r| folders.contains(&canonical(&r.path)))
    }

    /// Returns the webhooks that want `event` from `repository`, in file
    /// order.
    pub fn matching(&self, event: Event, repository: &str) -> Vec<&Webhook> {
        self.webhooks
            .iter()
            .filter(|w| w.wants(event, repository))
            .collect()
    }
}

/// Builds a configuration error naming the file.
fn config_error(path: &Path, message: String) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        message,
    }
}

/// Returns a path with symlinks and `..` resolved, or as given when it does
/// not exist.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Reads rb-gateway's webhooks file, named by `webhookStorePath` relative
/// to the config file's folder; its errors name that file.
fn load_gateway_webhooks(path: &Path, top: &Fields, base: &Path) -> Result<Settings, Error> {
    let name = match top.map.get(GATEWAY_KEY_WEBHOOKS) {
        None => GATEWAY_DEFAULT_WEBHOOKS.to_string(),
        Some(_) => top
            .string(GATEWAY_KEY_WEBHOOKS)
            .map_err(|m| config_error(path, m))?,
    };
    let file = base.join(name);
    let bytes = fs::read(&file).map_err(|source| Error::ConfigRead {
        path: file.clone(),
        source,
    })?;
    let fail = |message: String| config_error(&file, message);
    let base = file.parent().unwrap_or(Path::new("."));
    let list = match serde_json::from_slice(&bytes).map_err(|e| fail(json_error(&e)))? {
        Value::Array(list) => list,
        other => {
            return Err(fail(format!(
                "expected a list of webhooks, found {}",
                kind(&other)
            )))
        }
    };
    Ok(Settings::new(
        path,
        &file,
        parse_webhooks(&list, base).map_err(fail)?,
    ))
}

/// Checks rb-gateway's `repositories` list: objects with a `name` and a
/// `path`, and maybe an `scm`.
fn parse_repositories(top: &Fields, base: &Path) -> Result<Vec<GatewayRepository>, String> {
    let Some(Value::Array(list)) = top.map.get("repositories") else {
        let found = kind(&top.map["repositories"]);
        return Err(top.error("repositories", format!("expected an array, found {found}")));
    };
    let mut repositories = Vec::with_capacity(list.len());
    for (index, value) in list.iter().enumerate() {
        let label = format!("repositories[{index}]");
        let Value::Object(map) = value else {
            return Err(format!(
                "{label}: expected an object, found {}",
                kind(value)
            ));
        };
        let field = Fields { map, label: &label };
        let scm = match map.get("scm") {
            None => None,
            Some(_) => Some(field.string("scm")?),
        };
        repositories.push(GatewayRepository {
            name: field.string("name")?,
            path: base.join(field.string("path")?),
            scm,
        });
    }
    Ok(repositories)
}

/// Checks a list of webhooks, refusing duplicate ids; relative paths in
/// them are relative to `base`.
fn parse_webhooks(list: &[Value], base: &Path) -> Result<Vec<Webhook>, String> {
    let mut webhooks: Vec<Webhook> = Vec::with_capacity(list.len());
    for (index, value) in list.iter().enumerate() {
        let webhook = parse_webhook(index, value, base)?;
        if let Some(first) = webhooks.iter().position(|w| w.id == webhook.id) {
            return Err(format!(
                "webhooks[{index}]: duplicate id \"{}\" (also used by webhooks[{first}])",
                webhook.id
            ));
        }
        webhooks.push(webhook);
    }
    Ok(webhooks)
}

/// Checks one element of the `webhooks` array.
fn parse_webhook(index: usize, value: &Value, base: &Path) -> Result<Webhook, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "webhooks[{index}]: expected an object, found {}",
            kind(value)
        ));
    };
    // Name the webhook by its id once we know it, by position until then.
    let label = match map.get("id") {
        Some(Value::String(id)) if !id.is_empty() => format!("webhook \"{id}\""),
        _ => format!("webhooks[{index}]"),
    };
    let field = Fields { map, label: &label };

    if let Some(key) = map.keys().find(|k| !WEBHOOK_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "{label}: unknown field \"{key}\" (known fields: {})",
            WEBHOOK_KEYS.join(", ")
        ));
    }
    let repositories = match (map.contains_key("repositories"), map.contains_key("repos")) {
        (true, true) => {
            return Err(format!(
                "{label}: give \"repositories\" or \"repos\", not both"
            ))
        }
        (false, true) => field.names("repos")?,
        _ => field.names("repositories")?,
    };

    Ok(Webhook {
        id: field.string("id")?,
        url: field.url("url")?,
        secret: field.string("secret")?,
        enabled: field.boolean("enabled", true)?,
        events: field.events("events")?,
        repositories,
        timeout: field.seconds("timeout", DEFAULT_TIMEOUT)?,
        max_commits: field.count("max_commits", payload::DEFAULT_MAX_COMMITS)?,
        branches: match map.contains_key("branches") {
            true => Some(field.names("branches")?),
            false => None,
        },
        ca_file: match map.contains_key("ca_file") {
            true => Some(field.ca_file("ca_file", base)?),
            false => None,
        },
    })
}

/// Returns whether `text` matches `pattern`, where `*` stands for any run of
/// characters (`/` included: `release/*` matches `release/1.0/fix`) and `?`
/// for one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    // Greedy match with one backtrack point: the last `*` seen.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        Settings::parse(Path::new("c.json"), text.as_bytes()).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"{"webhooks": [{"id": "rb", "url": "https://rb.example.com/repos/1/rbgateway/hooks/close-submitted/",
        "secret": "s3cret", "enabled": true, "events": ["post-commit"], "repositories": ["repo1"]}],
        "other_tool": 1}"#;

    #[test]
    fn accepts_a_full_webhook_and_foreign_top_level_keys() {
        let settings = parse(GOOD).unwrap();
        let hook = &settings.webhooks[0];
        assert_eq!(hook.id, "rb");
        assert_eq!(hook.events, vec![Event::Push]);
        assert_eq!(hook.timeout, DEFAULT_TIMEOUT);
        assert_eq!(hook.max_commits, payload::DEFAULT_MAX_COMMITS);
        assert_eq!(settings.budget, DEFAULT_BUDGET);
        assert_eq!(settings.spool_dir, None);
        assert!(hook.wants(Event::Push, "repo1"));
        assert!(!hook.wants(Event::Push, "repo2"));
    }

    #[test]
    fn accepts_rb_gateway_repos_key() {
        let text = GOOD.replace("\"repositories\"", "\"repos\"");
        assert_eq!(
            parse(&text).unwrap().webhooks[0].repositories,
            vec!["repo1"]
        );
    }

    #[test]
    fn names_file_webhook_and_field() {
        let cases = [
            (
                "\"enabled\": true",
                "\"enabled\": \"yes\"",
                "c.json: webhook \"rb\": field \"enabled\": expected true or false, found a string",
            ),
            (
                "\"events\"",
                "\"evnets\"",
                "c.json: webhook \"rb\": unknown field \"evnets\"",
            ),
            (
                "[\"post-commit\"]",
                "[\"commit\"]",
                "c.json: webhook \"rb\": field \"events\": unknown event \"commit\"",
            ),
            (
                "[\"repo1\"]",
                "[]",
                "c.json: webhook \"rb\": field \"repositories\": must not be empty",
            ),
            (
                "https://rb",
                "ftp://rb",
                "c.json: webhook \"rb\": field \"url\": \"ftp://rb",
            ),
            (
                "\"secret\": \"s3cret\", ",
                "",
                "c.json: webhook \"rb\": missing field \"secret\"",
            ),
            (
                "\"id\": \"rb\"",
                "\"id\": 7",
                "c.json: webhooks[0]: field \"id\": expected a string, found a number",
            ),
        ];
        for (from, to, expected) in cases {
            let err = parse(&GOOD.replace(from, to)).unwrap_err();
            assert!(
                err.starts_with(expected),
                "{err}\n  does not start with\n{expected}"
            );
        }
    }

    #[test]
    fn reads_spool_folder_and_budget() {
        let text = GOOD.replace(
            "\"other_tool\": 1",
            "\"spool_dir\": \"spool\", \"budget\": 5",
        );
        let settings = Settings::parse(Path::new("/etc/rbg/c.json"), text.as_bytes()).unwrap();
        assert_eq!(
            settings.spool_dir.as_deref(),
            Some(Path::new("/etc/rbg/spool"))
        );
        assert_eq!(settings.budget, Duration::from_secs(5));
        let bad = GOOD.replace("\"other_tool\": 1", "\"budget\": \"soon\"");
        assert_eq!(
            parse(&bad).unwrap_err(),
            "c.json: settings: field \"budget\": expected a number of seconds, found a string"
        );
    }

    #[test]
    fn matches_branch_patterns() {
        for (pattern, text, expected) in [
            ("main", "main", true),
            ("main", "maint", false),
            ("release/*", "release/1.0", true),
            ("release/*", "release/1.0/fix", true),
            ("release/*", "release", false),
            ("*", "anything/at/all", true),
            ("v?.x", "v1.x", true),
            ("v?.x", "v10.x", false),
            ("*-stable", "2.0-stable", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} ~ {text}");
        }
        let text = GOOD.replace(
            "\"enabled\": true",
            "\"enabled\": true, \"branches\": [\"main\", \"release/*\"]",
        );
        let hook = &parse(&text).unwrap().webhooks[0];
        assert!(hook.wants_branch("release/2.0") && hook.wants_branch("main"));
        assert!(!hook.wants_branch("feature/x"));
        assert!(parse(GOOD).unwrap().webhooks[0].wants_branch("feature/x"));
        let empty = GOOD.replace("\"enabled\": true", "\"enabled\": true, \"branches\": []");
        assert!(parse(&empty)
            .unwrap_err()
            .contains("field \"branches\": must not be empty"));
    }

    #[test]
    fn refuses_urls_the_client_cannot_use() {
        let cases = [
            ("http://user:pw@rb/", "user names and passwords"),
            ("http://[::1]:8080/", "IPv6 address literals"),
            ("http://rb:99999/", "port is not a number from 1 to 65535"),
            ("http://rb:/", "port is not a number"),
            ("http://:80/", "has no host"),
        ];
        for (url, why) in cases {
            let text = GOOD.replace(
                "https://rb.example.com/repos/1/rbgateway/hooks/close-submitted/",
                url,
            );
            let err = parse(&text).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
        let ok = GOOD.replace("https://rb.example.com/", "http://127.0.0.1:8080/");
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn rejects_duplicate_ids() {
        let hook = r#"{"id": "a", "url": "http://x/", "secret": "s", "events": ["push"], "repositories": ["r"]}"#;
        let err = parse(&format!(r#"{{"webhooks": [{hook}, {hook}]}}"#)).unwrap_err();
        assert_eq!(
            err,
            "c.json: webhooks[1]: duplicate id \"a\" (also used by webhooks[0])"
        );
    }

    #[test]
    fn reports_json_syntax_with_position() {
        let err = parse("{\"webhooks\": [\n  {\"id\": }\n]}").unwrap_err();
        assert!(
            err.starts_with("c.json: invalid JSON at line 2, column 10: "),
            "{err}"
        );
        assert_eq!(
            parse("7").unwrap_err(),
            "c.json: expected a JSON object or a list of webhooks, found a number"
        );
        assert_eq!(
            parse("{}").unwrap_err(),
            "c.json: missing field \"webhooks\" (or rb-gateway's \"webhookStorePath\")"
        );
    }

    const HOOK: &str = r#"{"id": "rb", "url": "http://rb/", "secret": "s", "enabled": true,
        "events": ["push"], "repos": ["repo1"]}"#;

    #[test]
    fn reads_a_bare_list_of_webhooks() {
        let settings = parse(&format!("[{HOOK}]")).unwrap();
        assert_eq!(settings.webhooks[0].repositories, vec!["repo1"]);
        assert_eq!(settings.webhooks_path, Path::new("c.json"));
        assert!(parse("[]").unwrap().webhooks.is_empty());
        assert_eq!(
            parse("[1]").unwrap_err(),
            "c.json: webhooks[0]: expected an object, found a number"
        );
    }

    #[test]
    fn reads_rb_gateway_config_and_its_webhooks_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        let text = r#"{"port": 8888, "webhookStorePath": "hooks/webhooks.json",
            "repositories": [{"name": "Project", "path": "srv/p.git", "scm": "git"}]}"#;
        fs::create_dir(dir.path().join("hooks")).unwrap();
        let hooks = dir.path().join("hooks/webhooks.json");
        fs::write(&hooks, format!("[{HOOK}]")).unwrap();

        let settings = Settings::parse(&config, text.as_bytes()).unwrap();
        assert_eq!(settings.webhooks_path, hooks);
        assert_eq!(settings.webhooks[0].id, "rb");
        let repo = &settings.repositories[0];
        assert_eq!(repo.path, dir.path().join("srv/p.git"));
        assert_eq!(repo.scm.as_deref(), Some("git"));

        fs::create_dir_all(dir.path().join("srv/p.git")).unwrap();
        let found = settings.gateway_repository(&[dir.path().join("srv/./p.git")]);
        assert_eq!(found.map(|r| r.name.as_str()), Some("Project"));
        assert!(settings
            .gateway_repository(&[dir.path().join("srv")])
            .is_none());

        fs::write(&hooks, "[{\"id\": \"rb\"}]").unwrap();
        let err = Settings::parse(&config, text.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: webhook \"rb\": missing field \"repositories\"",
                hooks.display()
            )
        );
        let bad = r#"{"repositories": [{"name": "p"}]}"#;
        assert_eq!(
            Settings::parse(&config, bad.as_bytes())
                .unwrap_err()
                .to_string(),
            format!(
                "{}: repositories[0]: missing field \"path\"",
                config.display()
            )
        );
    }
}

/// Property tests: whatever a settings file holds, reading it never panics,
/// and a refusal is one line naming a file (this one, or the webhooks file
/// an rb-gateway config names).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use super::*;

    /// Builds JSON values shaped like settings files: objects whose keys are
    /// mostly the ones we read, holding values of every type.
    fn json_value() -> impl Strategy<Value = Value> {
        // The keys a webhook may have, and those of the top level and of
        // rb-gateway's files, plus one nobody reads.
        let others = [
            "webhooks",
            "budget",
            "spool_dir",
            "proxy",
            "webhookStorePath",
            "name",
            "path",
            "push",
            "x",
        ];
        let keys = proptest::sample::select(
            WEBHOOK_KEYS
                .iter()
                .chain(&others)
                .copied()
                .collect::<Vec<_>>(),
        );
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            "(push|post-commit|http://h/|https://[a-z:@\\[\\]0-9]{0,12}/?|[ -~]{0,12})"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((keys.clone(), inner), 0..8).prop_map(|pairs| {
                    let map: Map<String, Value> =
                        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                    Value::Object(map)
                }),
            ]
        })
    }

    fn one_line_naming_a_file(text: &str) -> Result<(), TestCaseError> {
        prop_assert!(!text.contains('\n'), "{}", text);
        // The file first: this one, or one its `webhookStorePath` names.
        let file = text.split(": ").next().unwrap_or_default();
        prop_assert!(!file.is_empty() && file != text, "{}", text);
        Ok(())
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Err(error) = Settings::parse(Path::new("s.json"), &bytes) {
                one_line_naming_a_file(&crate::error::chain(&error))?;
            }
        }

        #[test]
        fn any_json_is_read_without_panicking(value in json_value()) {
            let bytes = serde_json::to_vec(&value).expect("a value serializes");
            match Settings::parse(Path::new("s.json"), &bytes) {
                Ok(settings) => prop_assert!(settings.webhooks.iter().all(|w| !w.id.is_empty())),
                Err(error) => one_line_naming_a_file(&crate::error::chain(&error))?,
            }
        }
    }
}
