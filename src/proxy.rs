//! Which HTTP proxy a delivery goes through, as curl decides it: the
//! settings file's `proxy`, else `https_proxy` for https URLs and
//! `http_proxy` for http ones (lowercase only, as curl reads it, since
//! `HTTP_PROXY` can be set by a CGI request), else `all_proxy`; never for a
//! host that `no_proxy` lists.
//!
//! Connecting through the proxy is left to the HTTP client, which opens a
//! CONNECT tunnel for http and https alike.

use crate::config::Env;
use crate::settings::Settings;

/// Names the proxy variables, which `main.rs` also clears from the process
/// so the HTTP client cannot apply them behind our back.
pub const VARIABLES: &[&str] = &[
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Holds the proxy choices of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    configured: Option<String>,
    https: Option<String>,
    http: Option<String>,
    no_proxy: Vec<String>,
}

impl Proxies {
    /// Reads the choices from the settings file and the environment.
    pub fn new(settings: &Settings, env: &Env) -> Proxies {
        // `http://proxy:3128/` is how many write it; the client wants no
        // path, so the slash goes.
        let tidy = |url: &str| url.trim_end_matches('/').to_string();
        let var = |names: &[&str]| names.iter().find_map(|n| env.text(n)).map(tidy);
        let all = var(&["all_proxy", "ALL_PROXY"]);
        Proxies {
            configured: settings.proxy.as_deref().map(tidy),
            https: var(&["https_proxy", "HTTPS_PROXY"]).or_else(|| all.clone()),
            http: var(&["http_proxy"]).or(all),
            no_proxy: var(&["no_proxy", "NO_PROXY"])
                .unwrap_or_default()
                .split(',')
                .map(|h| h.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Returns the proxy for a webhook URL, if it goes through one.
    pub fn for_url(&self, url: &str) -> Option<&str> {
        let (https, rest) = match url.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("http://").unwrap_or(url)),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        if self.bypassed(&host.to_ascii_lowercase()) {
            return None;
        }
        let from_env = if https { &self.https } else { &self.http };
        self.configured.as_deref().or(from_env.as_deref())
    }

    /// Returns whether `no_proxy` lists the host or a domain it is in.
    fn bypassed(&self, host: &str) -> bool {
        // An address matches only itself; a name also matches the names of
        // a domain it ends, as `.internal` or `internal` takes `rb.internal`.
        let address = host.parse::<std::net::IpAddr>().is_ok();
        self.no_proxy.iter().any(|entry| {
            if address {
                return entry == "*" || entry == host;
            }
            entry == "*"
                || host == entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|h| h.ends_with('.'))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn proxies(settings_proxy: Option<&str>, vars: &[(&str, &str)]) -> Proxies {
        let mut settings = Settings::parse(Path::new("s.json"), br#"{"webhooks": []}"#).unwrap();
        settings.proxy = settings_proxy.map(str::to_string);
        Proxies::new(&settings, &Env::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn picks_the_proxy_as_curl_does() {
        let env = [
            ("https_proxy", "http://s:3128"),
            ("http_proxy", "http://p:3128"),
        ];
        let p = proxies(None, &env);
        assert_eq!(
            p.for_url("https://rb.example.com/r/"),
            Some("http://s:3128")
        );
        assert_eq!(p.for_url("http://rb.example.com/r/"), Some("http://p:3128"));
        let upper_http = proxies(None, &[("HTTP_PROXY", "http://cgi:1")]);
        assert_eq!(upper_http.for_url("http://rb/"), None);
        let all = proxies(None, &[("ALL_PROXY", "http://a:1")]);
        assert_eq!(all.for_url("https://rb/"), Some("http://a:1"));
        let configured = proxies(Some("http://c:8080"), &env);
        assert_eq!(configured.for_url("http://rb/"), Some("http://c:8080"));
    }

    #[test]
    fn settings_name_an_http_proxy() {
        let read = |proxy: &str| {
            let text = format!(r#"{{"webhooks": [], "proxy": "{proxy}"}}"#);
            Settings::parse(Path::new("s.json"), text.as_bytes()).map(|s| s.proxy)
        };
        assert_eq!(
            read("http://squid:3128").unwrap().as_deref(),
            Some("http://squid:3128")
        );
        assert_eq!(read("squid:3128").unwrap().as_deref(), Some("squid:3128"));
        let err = read("socks5://h:1080").unwrap_err().to_string();
        assert!(
            err.starts_with("s.json: settings: field \"proxy\": \"socks5://h:1080\""),
            "{err}"
        );
    }

    #[test]
    fn no_proxy_lists_hosts_and_domains() {
        let env = [
            ("https_proxy", "http://s:3128"),
            ("no_proxy", "localhost, .internal,10.0.0.7"),
        ];
        let p = proxies(Some("http://c:8080"), &env);
        assert_eq!(p.for_url("https://localhost:8443/"), None);
        assert_eq!(p.for_url("https://rb.internal/r/"), None);
        assert_eq!(p.for_url("https://internal/"), None);
        assert_eq!(p.for_url("http://10.0.0.7/"), None);
        assert_eq!(p.for_url("https://notinternal/"), Some("http://c:8080"));
        let slash = proxies(Some("http://c:8080/"), &[]);
        assert_eq!(slash.for_url("https://rb/"), Some("http://c:8080"));
        let suffix = proxies(
            None,
            &[("https_proxy", "http://s:1/"), ("no_proxy", ".0.0.1")],
        );
        assert_eq!(suffix.for_url("https://127.0.0.1/"), Some("http://s:1"));
        let everything = proxies(None, &[("https_proxy", "http://s:1"), ("NO_PROXY", "*")]);
        assert_eq!(everything.for_url("https://rb/"), None);
    }
}
