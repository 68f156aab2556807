//! Deliveries: one signed POST of one payload to one webhook, bounded in
//! time and memory, and its outcome.
//!
//! Only a 2xx answer counts as delivered. rb-gateway's own sender merely
//! warns on other answers; we report them as failures because a push whose
//! notification was refused leaves review requests open, and the
//! administrator has to hear of it. Redirects are not followed: Review Board
//! answers a URL without its trailing slash with a 301, and a client that
//! follows it turns the POST into a GET that loses the body.

use std::collections::HashMap;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::settings::Webhook;
use crate::sign::sign;
use crate::wire;

/// Bounds how much of an answer's body is read, to quote it in a message;
/// a receiver sending an endless body cannot make us hold more.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Bounds the quoted part of an answer's body in a message.
const MAX_QUOTED_CHARS: usize = 160;

/// Is the reason phrase minreq invents when the answer has no status line
/// (minreq's `response.rs`, `parse_status_line`).
const MINREQ_NO_STATUS_LINE: &str = "Server did not provide a status line";

/// Starts rustls's text for a certificate it refuses (rustls 0.21,
/// `Error::InvalidCertificate`), which minreq passes on as an I/O error.
const RUSTLS_REFUSED_CERTIFICATE: &str = "invalid peer certificate: ";

/// Explains a delivery the HTTP client gave up on by panicking.
const CLIENT_FAILED: &str = "the HTTP client failed";

/// Gives the port of a proxy URL that names none, as curl does.
const DEFAULT_PROXY_PORT: u16 = 1080;

/// Explains an answer without a status line.
const NO_ANSWER: &str = "the receiver closed the connection without an HTTP answer";

/// Describes how one delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Got a 2xx answer.
    Delivered {
        /// Gives the HTTP status.
        status: u16,
    },
    /// Got no 2xx answer.
    Failed(Failure),
}

/// Says why a delivery failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Got an answer other than 2xx or a redirect.
    Status {
        /// Gives the HTTP status.
        status: u16,
        /// Gives the reason phrase.
        reason: String,
        /// Gives the start of the answer's body, if it has one.
        body: String,
    },
    /// Got a redirect, which is not followed.
    Redirect {
        /// Gives the HTTP status.
        status: u16,
        /// Gives the `Location` header, if any.
        location: Option<String>,
        /// Says whether the configured URL lacks its trailing slash.
        missing_slash: bool,
    },
    /// Did not get an answer in time.
    Timeout(Duration),
    /// Could not connect, send or read.
    Transport(String),
    /// Cannot be attempted as configured (a proxy that is not a proxy URL);
    /// trying again without a fix cannot help.
    Setup(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status {
                status,
                reason,
                body,
            } => {
                write!(f, "HTTP {status} {reason}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Failure::Redirect {
                status,
                location,
                missing_slash,
            } => {
                write!(f, "HTTP {status} redirect")?;
                if let Some(location) = location {
                    write!(f, " to {location}")?;
                }
                f.write_str(" (redirects are not followed")?;
                if *missing_slash {
                    f.write_str("; Review Board hook URLs end with \"/\"")?;
                }
                f.write_str(")")
            }
            Failure::Timeout(limit) => write!(f, "no answer within {} s", limit.as_secs()),
            Failure::Transport(text) | Failure::Setup(text) => f.write_str(text),
        }
    }
}

/// Holds the result of one delivery.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Tells how it ended.
    pub outcome: Outcome,
    /// Gives the time it took.
    pub elapsed: Duration,
}

/// Signs `body` with the webhook's secret and POSTs it as `event`, under
/// the delivery's `id`, through `proxy` if given, giving up after
/// `timeout`.
pub fn deliver(
    webhook: &Webhook,
    event: &str,
    body: &[u8],
    id: &str,
    timeout: Duration,
    proxy: Option<&str>,
) -> Attempt {
    let started = Instant::now();
    let mut request = minreq::post(webhook.url.as_str())
        .with_header("Content-Type", wire::CONTENT_TYPE_JSON)
        .with_header("User-Agent", wire::USER_AGENT)
        .with_header(wire::HEADER_EVENT, event)
        .with_header(wire::HEADER_DELIVERY, id)
        .with_header(
            wire::HEADER_SIGNATURE,
            sign(webhook.secret.as_bytes(), body),
        )
        .with_body(body.to_vec())
        // minreq turns this into one deadline for connecting, sending and
        // reading the answer, so a receiver that trickles bytes is cut off.
        .with_timeout(timeout.as_secs().max(1))
        .with_follow_redirects(false);

    if let Some(proxy) = proxy {
        match minreq::Proxy::new(with_port(proxy)) {
            Ok(proxy) => request = request.with_proxy(proxy),
            Err(_) => {
                let failure = Failure::Setup(format!("proxy \"{proxy}\" is not http://HOST:PORT"));
                return Attempt {
                    outcome: Outcome::Failed(failure),
                    elapsed: started.elapsed(),
                };
            }
        }
    }

    // The HTTP client unwraps a few writes of its own (its proxy handshake
    // among them); a panic there must cost this delivery, which waits in
    // the spool, not the run.
    let sent = panic::catch_unwind(AssertUnwindSafe(|| request.send_lazy()));
    let outcome = match sent {
        Ok(Ok(answer)) => judge(webhook, answer),
        Ok(Err(error)) => Outcome::Failed(through(proxy, transport_failure(error, timeout))),
        Err(_) => Outcome::Failed(Failure::Transport(CLIENT_FAILED.to_string())),
    };
    Attempt {
        outcome,
        elapsed: started.elapsed(),
    }
}

/// Turns an answer into an outcome, reading a bounded part of its body.
fn judge(webhook: &Webhook, answer: minreq::ResponseLazy) -> Outcome {
    // minreq turns a connection closed before any status line (or a line
    // that is not one) into a made-up 503 with this reason; the receiver
    // never said 503, so say what happened instead. Nor is a status
    // beyond what 16 bits hold an HTTP answer.
    let made_up = answer.status_code == 503 && answer.reason_phrase == MINREQ_NO_STATUS_LINE;
    let status = match u16::try_from(answer.status_code) {
        Ok(status) if !made_up => status,
        _ => return Outcome::Failed(Failure::Transport(NO_ANSWER.to_string())),
    };
    if (200..300).contains(&status) {
        return Outcome::Delivered { status };
    }
    if (300..400).contains(&status) {
        let location = header(&answer.headers, "location");
        return Outcome::Failed(Failure::Redirect {
            status,
            location,
            missing_slash: !webhook.url.ends_with('/'),
        });
    }
    let reason = answer.reason_phrase.clone();
    let mut bytes = Vec::new();
    // A receiver that answers an error may still stall or trickle its body;
    // what arrived before that is quoted, the rest is not needed.
    let _ = Read::take(answer, MAX_ANSWER_BYTES).read_to_end(&mut bytes);
    Outcome::Failed(Failure::Status {
        status,
        reason,
        body: quote_body(&bytes),
    })
}

/// Returns a header's value by case-insensitive name.
fn header(headers: &HashMap<String, String>, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.clone())
}

/// Returns the first line of a body as printable text, shortened. An HTML
/// error page is not worth quoting, so it gives nothing.
fn quote_body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.starts_with('<') {
        return String::new();
    }
    let clean: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTED_CHARS)
        .collect();
    clean
}

/// Describes a failure to connect, send or read.
fn transport_failure(error: minreq::Error, limit: Duration) -> Failure {
    match error {
        // minreq calls every answer but 200 to CONNECT "malformed" proxy
        // information; it is the proxy refusing the tunnel (squid, by
        // default, to any port but 443).
        minreq::Error::BadProxy | minreq::Error::ProxyConnect => {
            Failure::Transport("the proxy refused to open a tunnel (CONNECT) to the webhook".into())
        }
        minreq::Error::InvalidProxyCreds => {
            Failure::Transport("the proxy refused its credentials (HTTP 401/407)".into())
        }
        minreq::Error::IoError(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            Failure::Timeout(limit)
        }
        minreq::Error::IoError(e) => {
            let text = crate::error::io_text(&e);
            Failure::Transport(refused_certificate(&text).unwrap_or(text))
        }
        // minreq's only `Other` says the thread it connects on panicked.
        minreq::Error::Other(_) => Failure::Transport(CLIENT_FAILED.to_string()),
        other => Failure::Transport(other.to_string()),
    }
}

/// Explains rustls refusing the receiver's certificate, with the fix when
/// no trusted CA issued it; `None` for any other failure.
fn refused_certificate(text: &str) -> Option<String> {
    let why = text.strip_prefix(RUSTLS_REFUSED_CERTIFICATE)?;
    let hint = match why {
        "UnknownIssuer" => "; if a private CA issued it, set \"ca_file\" to that CA's PEM file",
        _ => "",
    };
    Some(format!(
        "the receiver's certificate is not trusted ({why}){hint}"
    ))
}

/// Adds curl's default proxy port, 1080, to a proxy URL without a port;
/// minreq 2 would use 8080.
fn with_port(proxy: &str) -> String {
    let authority = proxy.strip_prefix("http://").unwrap_or(proxy);
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    match host.contains(':') {
        true => proxy.to_string(),
        false => format!("http://{authority}:{DEFAULT_PROXY_PORT}"),
    }
}

/// Names the proxy in a failure to connect, send or read through it, so
/// the administrator looks at the proxy rather than the receiver.
fn through(proxy: Option<&str>, failure: Failure) -> Failure {
    match (proxy, failure) {
        (Some(proxy), Failure::Transport(text)) => {
            Failure::Transport(format!("through proxy {proxy}: {text}"))
        }
        (_, failure) => failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_failures_in_one_line() {
        let redirect = Failure::Redirect {
            status: 301,
            location: Some("http://rb/r/1/hooks/".into()),
            missing_slash: true,
        };
        assert_eq!(
            redirect.to_string(),
            "HTTP 301 redirect to http://rb/r/1/hooks/ (redirects are not followed; \
             Review Board hook URLs end with \"/\")"
        );
        let status = Failure::Status {
            status: 400,
            reason: "Bad Request".into(),
            body: quote_body(b"Bad signature.\n"),
        };
        assert_eq!(status.to_string(), "HTTP 400 Bad Request: Bad signature.");
        assert_eq!(quote_body(b"<!DOCTYPE html>\n<html>"), "");
        assert_eq!(quote_body(b"\x1b[31mred\x07"), "[31mred");
    }

    #[test]
    fn gives_a_proxy_without_a_port_curls_default() {
        assert_eq!(with_port("http://squid/"), "http://squid:1080");
        assert_eq!(with_port("squid"), "http://squid:1080");
        assert_eq!(with_port("http://squid:3128"), "http://squid:3128");
    }
}
