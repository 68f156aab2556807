//! The push payload: the JSON body Review Board's close-submitted webhook
//! reads (shared/WIRE.md), cut into batches that each stay a complete, valid
//! payload.
//!
//! Review Board refuses bodies over 2.5 MiB and fails a whole payload when
//! one commit in it is malformed, so every commit here always has an `id`, a
//! `message` and a `target`, and batches are bounded by count and by bytes.
//! Finding the commits is left to `walk.rs` and `hg.rs`; signing and sending
//! to `sign.rs` and `deliver.rs`.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::error::Error;
use crate::wire;

/// Gives the most commits one payload holds unless configured otherwise.
pub const DEFAULT_MAX_COMMITS: usize = 1000;

/// Gives the largest body built: comfortably under the 2.5 MiB Django
/// refuses before Review Board even checks the signature (shared/WIRE.md).
pub const DEFAULT_MAX_BYTES: usize = 2 * 1024 * 1024;

/// Bounds a commit message in a payload. A larger one is cut in the middle:
/// a single commit must still fit the receiver's 2.5 MiB limit, and the
/// lines Review Board looks for ("Reviewed at ...") sit at either end.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Describes one commit as the receiver sees it.
#[derive(Clone, Debug, Serialize)]
pub struct Commit {
    /// Gives the full commit id in hex.
    pub id: String,
    /// Gives the full commit message, decoded to UTF-8.
    pub message: String,
    /// Says where the commit landed.
    pub target: Target,
    /// Names who wrote the commit, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    /// Gives when the commit was written, as RFC 3339, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// Says where a commit landed. Review Board labels a commit with its first
/// tag, else its first bookmark, else its branch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Names the branch, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Lists the Mercurial bookmarks at the commit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bookmarks: Vec<String>,
    /// Lists the tags at the commit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Names the author of a commit.
#[derive(Clone, Debug, Serialize)]
pub struct Author {
    /// Gives the author's name.
    pub name: String,
    /// Gives the author's email address.
    pub email: String,
}

/// Holds one finished body, ready to be signed and sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// Gives the exact bytes to sign and send.
    pub body: Vec<u8>,
    /// Counts the commits in the body.
    pub commits: usize,
}

/// Bounds the size of one payload.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Gives the most commits in one payload.
    pub max_commits: usize,
    /// Gives the most bytes in one body, unless a single commit is larger.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_commits: DEFAULT_MAX_COMMITS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Builds the payloads for `commits`, in order, each within `limits`.
///
/// A commit larger than `max_bytes` on its own still gets a payload of its
/// own: dropping it would lose the notification, and the receiver's answer
/// says plainly if it is too large.
pub fn build(repository: &str, commits: &[Commit], limits: Limits) -> Result<Vec<Payload>, Error> {
    let mut head = format!("{{\"event\":\"{}\",\"repository\":", wire::EVENT_PUSH).into_bytes();
    serde_json::to_writer(&mut head, repository).map_err(Error::Payload)?;
    head.extend_from_slice(b",\"commits\":[");
    const TAIL: &[u8] = b"]}";

    let mut payloads = Vec::new();
    let mut body = head.clone();
    let mut count = 0;
    let mut item = Vec::new();
    for commit in commits {
        item.clear();
        serde_json::to_writer(&mut item, commit).map_err(Error::Payload)?;
        let full = count == limits.max_commits.max(1)
            || (count > 0 && body.len() + 1 + item.len() + TAIL.len() > limits.max_bytes);
        if full {
            body.extend_from_slice(TAIL);
            payloads.push(Payload {
                body,
                commits: count,
            });
            body = head.clone();
            count = 0;
        }
        if count > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&item);
        count += 1;
    }
    if count > 0 {
        body.extend_from_slice(TAIL);
        payloads.push(Payload {
            body,
            commits: count,
        });
    }
    Ok(payloads)
}

/// Cuts the middle out of a message longer than `MAX_MESSAGE_BYTES`,
/// keeping its first three quarters and its last quarter, and saying so.
pub fn clip_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let head = boundary(&message, MAX_MESSAGE_BYTES / 4 * 3);
    let tail = boundary(&message, message.len() - MAX_MESSAGE_BYTES / 4);
    let cut = tail - head;
    format!(
        "{}\n[... {cut} bytes cut by rbg-notify ...]\n{}",
        &message[..head],
        &message[tail..]
    )
}

/// Returns the nearest character boundary at or before `at`.
fn boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Splits a body's commits into two complete payloads of about half each,
/// for a receiver that answered 413; `None` when it holds fewer than two.
pub fn split(body: &[u8]) -> Option<[Payload; 2]> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let commits = value.get_mut("commits")?.as_array_mut()?;
    if commits.len() < 2 {
        return None;
    }
    let second = commits.split_off(commits.len() / 2);
    let (first_count, second_count) = (commits.len(), second.len());
    let first = serde_json::to_vec(&value).ok()?;
    value["commits"] = serde_json::Value::Array(second);
    let second = serde_json::to_vec(&value).ok()?;
    Some([
        Payload {
            body: first,
            commits: first_count,
        },
        Payload {
            body: second,
            commits: second_count,
        },
    ])
}

/// Formats a commit time as RFC 3339 in the committer's own offset, or
/// `None` when the time cannot be represented.
pub fn timestamp(seconds: i64, offset_seconds: i32) -> Option<String> {
    let offset = UtcOffset::from_whole_seconds(offset_seconds).ok()?;
    let time = OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .to_offset(offset);
    time.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn commit(id: &str, message: &str) -> Commit {
        Commit {
            id: id.to_string(),
            message: message.to_string(),
            target: Target {
                branch: Some("main".into()),
                ..Target::default()
            },
            author: None,
            timestamp: None,
        }
    }

    #[test]
    fn builds_the_wire_shape() {
        let payloads = build(
            "repo \"1\"",
            &[commit("a1", "Fix\n\nReviewed at x")],
            Limits::default(),
        )
        .unwrap();
        assert_eq!(payloads.len(), 1);
        let body: Value = serde_json::from_slice(&payloads[0].body).unwrap();
        assert_eq!(
            body,
            json!({"event": "push", "repository": "repo \"1\"",
                   "commits": [{"id": "a1", "message": "Fix\n\nReviewed at x", "target": {"branch": "main"}}]})
        );
    }

    #[test]
    fn splits_by_count_and_by_bytes_keeping_order() {
        let commits: Vec<Commit> = (0..7)
            .map(|i| commit(&format!("c{i}"), &"x".repeat(100)))
            .collect();
        let by_count = build(
            "r",
            &commits,
            Limits {
                max_commits: 3,
                max_bytes: 1 << 20,
            },
        )
        .unwrap();
        assert_eq!(
            by_count.iter().map(|p| p.commits).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );

        let by_bytes = build(
            "r",
            &commits,
            Limits {
                max_commits: 100,
                max_bytes: 400,
            },
        )
        .unwrap();
        let mut ids = Vec::new();
        for payload in &by_bytes {
            assert!(payload.body.len() <= 400, "{} bytes", payload.body.len());
            let body: Value = serde_json::from_slice(&payload.body).unwrap();
            let commits = body["commits"].as_array().unwrap();
            assert_eq!(commits.len(), payload.commits);
            ids.extend(
                commits
                    .iter()
                    .map(|c| c["id"].as_str().unwrap().to_string()),
            );
        }
        assert!(by_bytes.len() > 1);
        assert_eq!(ids, (0..7).map(|i| format!("c{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn sends_an_oversized_commit_alone() {
        let commits = [
            commit("small", "a"),
            commit("huge", &"y".repeat(1000)),
            commit("next", "b"),
        ];
        let payloads = build(
            "r",
            &commits,
            Limits {
                max_commits: 10,
                max_bytes: 300,
            },
        )
        .unwrap();
        assert_eq!(
            payloads.iter().map(|p| p.commits).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
    }

    #[test]
    fn splits_a_refused_payload_into_two_valid_halves() {
        let commits: Vec<Commit> = (0..5).map(|i| commit(&format!("c{i}"), "m")).collect();
        let body = &build("r", &commits, Limits::default()).unwrap()[0].body;
        let [a, b] = split(body).unwrap();
        assert_eq!((a.commits, b.commits), (2, 3));
        let mut ids = Vec::new();
        for half in [&a, &b] {
            let value: Value = serde_json::from_slice(&half.body).unwrap();
            assert_eq!(value["event"], "push");
            assert_eq!(value["repository"], "r");
            let list = value["commits"].as_array().unwrap();
            ids.extend(list.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        }
        assert_eq!(ids, ["c0", "c1", "c2", "c3", "c4"]);
        let single = &build("r", &commits[..1], Limits::default()).unwrap()[0].body;
        assert!(split(single).is_none());
    }

    #[test]
    fn clips_only_huge_messages_keeping_both_ends() {
        assert_eq!(clip_message("short".to_string()), "short");
        let huge = format!(
            "Fix it\n{}\nReviewed at https://rb/r/7/\n",
            "é".repeat(MAX_MESSAGE_BYTES)
        );
        let clipped = clip_message(huge.clone());
        assert!(clipped.len() < MAX_MESSAGE_BYTES + 100);
        assert!(clipped.starts_with("Fix it\n"));
        assert!(clipped.ends_with("Reviewed at https://rb/r/7/\n"));
        assert!(clipped.contains(" bytes cut by rbg-notify ...]"));
    }

    #[test]
    fn builds_nothing_for_no_commits() {
        assert!(build("r", &[], Limits::default()).unwrap().is_empty());
    }

    #[test]
    fn formats_timestamps_in_their_own_offset() {
        assert_eq!(timestamp(0, 0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            timestamp(1_700_000_000, 3600).as_deref(),
            Some("2023-11-14T23:13:20+01:00")
        );
        assert_eq!(timestamp(0, 99 * 3600), None);
    }
}
