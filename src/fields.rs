//! Typed reading of the fields of a JSON object from the settings file,
//! with every error naming the object and the field, as in
//! `webhook "rb": field "url": ...`.
//!
//! Which fields exist, and what they mean, is `settings.rs`'s business.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::io_text;
use crate::settings::Event;
use crate::{tls, wire};

/// Reads typed fields out of one webhook object, naming the webhook and the
/// field in every error.
pub(crate) struct Fields<'a> {
    /// Holds the object read.
    pub(crate) map: &'a Map<String, Value>,
    /// Names the object in errors.
    pub(crate) label: &'a str,
}

impl Fields<'_> {
    pub(crate) fn error(&self, key: &str, message: impl std::fmt::Display) -> String {
        format!("{}: field \"{key}\": {message}", self.label)
    }

    pub(crate) fn required(&self, key: &str) -> Result<&Value, String> {
        self.map
            .get(key)
            .ok_or_else(|| format!("{}: missing field \"{key}\"", self.label))
    }

    pub(crate) fn string(&self, key: &str) -> Result<String, String> {
        match self.required(key)? {
            Value::String(s) if s.is_empty() => Err(self.error(key, "must not be empty")),
            Value::String(s) => Ok(s.clone()),
            other => Err(self.error(key, format!("expected a string, found {}", kind(other)))),
        }
    }

    pub(crate) fn url(&self, key: &str) -> Result<String, String> {
        let url = self.string(key)?;
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                self.error(key, format!("\"{url}\" is not an http:// or https:// URL"))
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(self.error(key, format!("\"{url}\" has no host")));
        }
        if url.chars().any(char::is_whitespace) {
            return Err(self.error(key, format!("\"{url}\" contains white space")));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        url_authority(authority).map_err(|why| self.error(key, format!("\"{url}\": {why}")))?;
        Ok(url)
    }

    pub(crate) fn proxy(&self, key: &str) -> Result<String, String> {
        let proxy = self.string(key)?;
        let authority = proxy.strip_prefix("http://").unwrap_or(&proxy);
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains("://") || authority.contains('/') || authority.is_empty() {
            let why = "expected http://HOST:PORT (an HTTP proxy that tunnels with CONNECT)";
            return Err(self.error(key, format!("\"{proxy}\": {why}")));
        }
        Ok(proxy)
    }

    /// Reads the path of a PEM file of CA certificates, relative to `base`,
    /// and checks that it can be read and holds a certificate, so a wrong
    /// path is found when the settings are read, not at the first delivery.
    pub(crate) fn ca_file(&self, key: &str, base: &Path) -> Result<PathBuf, String> {
        let path = base.join(self.string(key)?);
        let shown = path.display();
        let bytes = fs::read(&path)
            .map_err(|e| self.error(key, format!("cannot read {shown}: {}", io_text(&e))))?;
        if !tls::holds_certificate(&bytes) {
            let why = format!(
                "{shown} holds no PEM certificate (a \"{}\" line)",
                tls::PEM_CERTIFICATE
            );
            return Err(self.error(key, why));
        }
        Ok(path)
    }

    pub(crate) fn boolean(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(
                key,
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    pub(crate) fn list(&self, key: &str) -> Result<Vec<&str>, String> {
        let Value::Array(items) = self.required(key)? else {
            let found = kind(&self.map[key]);
            return Err(self.error(key, format!("expected an array of strings, found {found}")));
        };
        if items.is_empty() {
            return Err(self.error(key, "must not be empty"));
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() => Ok(s.as_str()),
                Value::String(_) => Err(self.error(key, "contains an empty string")),
                other => Err(self.error(key, format!("expected strings, found {}", kind(other)))),
            })
            .collect()
    }

    pub(crate) fn names(&self, key: &str) -> Result<Vec<String>, String> {
        Ok(self.list(key)?.into_iter().map(str::to_string).collect())
    }

    pub(crate) fn events(&self, key: &str) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        for name in self.list(key)? {
            let event = match name {
                wire::EVENT_PUSH | wire::EVENT_PUSH_LEGACY => Event::Push,
                other => {
                    return Err(self.error(
                        key,
                        format!("unknown event \"{other}\" (expected \"push\" or \"post-commit\")"),
                    ))
                }
            };
            if !events.contains(&event) {
                events.push(event);
            }
        }
        Ok(events)
    }

    pub(crate) fn count(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(count @ 1..=100_000) => Ok(count as usize),
                _ => Err(self.error(
                    key,
                    format!("expected a whole number from 1 to 100000, found {n}"),
                )),
            },
            Some(other) => {
                Err(self.error(key, format!("expected a number, found {}", kind(other))))
            }
        }
    }

    pub(crate) fn seconds(&self, key: &str, default: Duration) -> Result<Duration, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(secs @ 1..=3600) => Ok(Duration::from_secs(secs)),
                _ => Err(self.error(
                    key,
                    format!("expected whole seconds from 1 to 3600, found {n}"),
                )),
            },
            Some(other) => Err(self.error(
                key,
                format!("expected a number of seconds, found {}", kind(other)),
            )),
        }
    }
}

/// Checks the `host[:port]` part of a webhook URL for what the HTTP client
/// cannot use, so it is refused when the settings are read rather than at
/// every delivery.
fn url_authority(authority: &str) -> Result<(), &'static str> {
    if authority.contains('@') {
        return Err("user names and passwords in the URL are not supported");
    }
    if authority.starts_with('[') {
        return Err("IPv6 address literals are not supported; use a host name");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err("it has no host");
    }
    match port.map(str::parse::<u16>) {
        Some(Ok(0) | Err(_)) => Err("its port is not a number from 1 to 65535"),
        _ => Ok(()),
    }
}

/// Describes a JSON syntax error by position, without serde's own suffix.
pub(crate) fn json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text);
    format!(
        "invalid JSON at line {}, column {}: {message}",
        error.line(),
        error.column()
    )
}

/// Names the JSON type of a value for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
