//! `--check`: explains, without sending anything, what a push to this
//! repository would do: which settings file is read and why, which
//! repository name is sent and why, and which webhooks hear of it and why
//! the others do not. It also warns about secrets that are easy to read or
//! to guess.
//!
//! The report goes to stdout, one fact per line, for an administrator at a
//! terminal. Loading the settings and naming the repository are left to
//! `settings.rs` and `naming.rs`; this file only explains their results.

use std::io::Write;
use std::path::Path;

use crate::config::{self, Config, Env};
use crate::error::Error;
use crate::naming::{self, NameSource, Named};
use crate::proxy::Proxies;
use crate::repo::{Loaded, Repo};
use crate::settings::{Event, Settings, Webhook};
use crate::Report;

/// Gives the shortest secret not warned about. Review Board's secrets are
/// 36-character UUIDs; RFC 2104 asks for keys at least as long as the hash
/// output, 20 bytes for SHA-1.
pub const MIN_SECRET_BYTES: usize = 20;

/// Prints the report on `stdout`. Reports a webhook that matches as
/// success, none as a failure (exit status 1); a settings file that cannot
/// be found or read is an error.
pub fn check(
    repo: &Repo,
    config: &Config,
    env: &Env,
    loaded: Option<Loaded>,
    stdout: &mut dyn Write,
) -> Result<Report, Error> {
    let mut lines = Vec::new();
    let kind = match repo {
        Repo::Git(_) => "git",
        Repo::Hg(..) => "Mercurial",
    };
    let folder = naming::folders(repo).into_iter().next().unwrap_or_default();
    lines.push(format!("repository: {} ({kind})", folder.display()));

    let Loaded {
        path,
        source,
        settings,
    } = loaded.ok_or_else(|| config::settings_not_found(repo.settings_key(), env))?;
    lines.push(format!("settings file: {} (from {source})", path.display()));
    if settings.webhooks_path != settings.path {
        lines.push(format!(
            "webhooks file: {} (from the settings file's webhookStorePath)",
            settings.webhooks_path.display()
        ));
    }

    let named = naming::resolve(repo, config, Some(&settings))?;
    lines.push(format!(
        "repository name: \"{}\" ({})",
        named.name, named.source
    ));
    lines.extend(gateway_note(repo, &settings, &named));

    let mut matching = 0;
    let proxies = Proxies::new(&settings, env);
    for webhook in &settings.webhooks {
        let verdict = verdict(webhook, &named.name);
        let mut line = format!("webhook \"{}\": {verdict}", webhook.id);
        if verdict == "matches" {
            matching += 1;
            line.push_str(&details(webhook, &proxies, settings.ca_file.as_deref()));
        }
        lines.push(line);
    }
    lines.extend(warnings(&settings));
    lines.push(summary(matching, settings.webhooks.len(), &named.name));

    let mut text = lines.join("\n");
    text.push('\n');
    // The report is the whole point: failing to write it is an error,
    // unless the reader went away on purpose (`| head`).
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Error::Stdout(e));
        }
    }
    let mut report = Report::default();
    if matching == 0 {
        report.failed = 1;
    }
    Ok(report)
}

/// Says whether a webhook hears of pushes to `name`, and if not why.
fn verdict(webhook: &Webhook, name: &str) -> String {
    if !webhook.enabled {
        return "does not match: it is disabled (\"enabled\": false)".to_string();
    }
    if !webhook.events.contains(&Event::Push) {
        return "does not match: it does not want push events".to_string();
    }
    if !webhook.repositories.iter().any(|r| r == name) {
        let listed: Vec<String> = webhook
            .repositories
            .iter()
            .map(|r| format!("\"{r}\""))
            .collect();
        return format!(
            "does not match: repository \"{name}\" is not in its repositories ({})",
            listed.join(", ")
        );
    }
    "matches".to_string()
}

/// Describes what narrows or routes a matching webhook's deliveries: its
/// branch filter, its proxy, and its CA file (else the top-level one,
/// `ca_file`).
fn details(webhook: &Webhook, proxies: &Proxies, ca_file: Option<&Path>) -> String {
    let mut text = String::new();
    if let Some(patterns) = &webhook.branches {
        text.push_str(&format!(", branches {}", patterns.join(" ")));
    }
    if let Some(proxy) = proxies.for_url(&webhook.url) {
        text.push_str(&format!(", through proxy {proxy}"));
    }
    if let Some(file) = webhook.ca_file.as_deref().or(ca_file) {
        text.push_str(&format!(", CA file {}", file.display()));
    }
    text
}

/// Explains a name that did not come from rb-gateway's `repositories` list
/// when the settings file has one, since that is the usual surprise.
fn gateway_note(repo: &Repo, settings: &Settings, named: &Named) -> Option<String> {
    if settings.repositories.is_empty() || matches!(named.source, NameSource::Gateway { .. }) {
        return None;
    }
    let folders: Vec<String> = naming::folders(repo)
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    Some(format!(
        "note: no entry of the repositories list in {} has the path {}",
        settings.path.display(),
        folders.join(" or ")
    ))
}

/// Returns the warnings about the files holding secrets and the secrets.
fn warnings(settings: &Settings) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut files = vec![settings.path.as_path()];
    if settings.webhooks_path != settings.path {
        files.push(&settings.webhooks_path);
    }
    for file in files {
        if readable_by_others(file) {
            warnings.push(format!(
                "warning: {} is readable by group or others, and it holds webhook secrets; \
                 `chmod 600` it (it must stay readable by the user pushes run as)",
                file.display()
            ));
        }
    }
    for webhook in &settings.webhooks {
        let bytes = webhook.secret.len();
        if bytes < MIN_SECRET_BYTES {
            warnings.push(format!(
                "warning: webhook \"{}\": its secret is only {bytes} bytes, easy to guess; \
                 use at least {MIN_SECRET_BYTES} (Review Board's is the repository's hooks UUID)",
                webhook.id
            ));
        }
    }
    warnings
}

/// Returns whether group or others may read the file.
fn readable_by_others(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

/// Sums the report up in one line.
fn summary(matching: usize, total: usize, name: &str) -> String {
    match matching {
        0 => format!(
            "no webhook hears of pushes to \"{name}\" ({total} in the settings file); \
             add \"{name}\" to a webhook's repositories, or set the repository name \
             (--repository, rbgateway.repository)"
        ),
        _ => format!("webhooks that hear of pushes to \"{name}\": {matching} of {total}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(enabled: bool) -> Webhook {
        let text = format!(
            r#"[{{"id": "rb", "url": "http://rb/", "secret": "s", "enabled": {enabled},
                 "events": ["push"], "repos": ["a", "b"]}}]"#
        );
        let settings = Settings::parse(Path::new("c.json"), text.as_bytes()).unwrap();
        settings.webhooks[0].clone()
    }

    #[test]
    fn shows_the_branch_filter_proxy_and_ca_file_of_a_match() {
        let mut hook = webhook(true);
        let mut settings = Settings::parse(Path::new("c.json"), b"[]").unwrap();
        assert_eq!(
            details(&hook, &Proxies::new(&settings, &Env::default()), None),
            ""
        );
        hook.branches = Some(vec!["main".into(), "release/*".into()]);
        settings.proxy = Some("http://squid:3128/".into());
        assert_eq!(
            details(&hook, &Proxies::new(&settings, &Env::default()), None),
            ", branches main release/*, through proxy http://squid:3128"
        );
        let top = Path::new("/etc/rbg/ca.pem");
        let proxies = Proxies::new(&settings, &Env::default());
        assert!(details(&hook, &proxies, Some(top)).ends_with(", CA file /etc/rbg/ca.pem"));
        hook.ca_file = Some("/etc/rbg/own.pem".into());
        assert!(details(&hook, &proxies, Some(top)).ends_with(", CA file /etc/rbg/own.pem"));
    }

    #[test]
    fn explains_each_verdict() {
        assert_eq!(verdict(&webhook(true), "a"), "matches");
        assert_eq!(
            verdict(&webhook(false), "a"),
            "does not match: it is disabled (\"enabled\": false)"
        );
        assert_eq!(
            verdict(&webhook(true), "c"),
            "does not match: repository \"c\" is not in its repositories (\"a\", \"b\")"
        );
    }

    #[test]
    fn warns_about_short_secrets() {
        let settings = Settings::parse(
            Path::new("/nonexistent/c.json"),
            br#"[{"id": "rb", "url": "http://rb/", "secret": "short", "events": ["push"], "repos": ["a"]}]"#,
        )
        .unwrap();
        assert_eq!(
            warnings(&settings),
            vec![
                "warning: webhook \"rb\": its secret is only 5 bytes, easy to guess; use at \
                 least 20 (Review Board's is the repository's hooks UUID)"
            ]
        );
    }
}
