//! Ref updates: the `<old-id> <new-id> <refname>` lines git gives a
//! post-receive hook on standard input (githooks(5)), and the OLD..NEW
//! ranges given to `--range`.
//!
//! Parsing only checks the shape of each line; whether the objects exist is
//! for `walk.rs` to find out. A bad line is reported and skipped, so the good
//! lines of the same push are still delivered.

use std::io::BufRead;

use crate::error::Error;
use crate::wire;

/// Describes one ref changed by a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    /// Gives the id before the push, all zeros when the ref was created.
    pub old: String,
    /// Gives the id after the push, all zeros when the ref was deleted.
    pub new: String,
    /// Gives the full ref name, such as `refs/heads/main`.
    pub name: String,
}

impl RefUpdate {
    /// Returns whether the push created the ref.
    pub fn is_created(&self) -> bool {
        wire::is_null_id(&self.old)
    }

    /// Returns whether the push deleted the ref.
    pub fn is_deleted(&self) -> bool {
        wire::is_null_id(&self.new)
    }

    /// Returns the branch name when the ref is a branch.
    pub fn branch(&self) -> Option<&str> {
        self.name.strip_prefix(wire::BRANCH_PREFIX)
    }

    /// Returns the tag name when the ref is a tag.
    pub fn tag(&self) -> Option<&str> {
        self.name.strip_prefix(wire::TAG_PREFIX)
    }
}

/// Parses post-receive input, returning the good ref updates in input order
/// and an error for each bad line. Blank lines are skipped.
pub fn parse_ref_updates(input: impl BufRead) -> (Vec<RefUpdate>, Vec<Error>) {
    let mut updates = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in input.split(b'\n').enumerate() {
        let line_number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                errors.push(Error::Stdin(e));
                break;
            }
        };
        match parse_line(&line) {
            Ok(Some(update)) => updates.push(update),
            Ok(None) => {}
            Err(message) => errors.push(Error::Input {
                line: line_number,
                message,
            }),
        }
    }
    (updates, errors)
}

/// Parses one line; `Ok(None)` means a blank line.
fn parse_line(line: &[u8]) -> Result<Option<RefUpdate>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Git allows ref names that are not UTF-8; such a name is still a push
    // to report, under its name with U+FFFD for the bytes that do not
    // decode. Object ids are hex, so bad bytes there fail the id check.
    let line = String::from_utf8_lossy(line);
    let line = line.as_ref();
    if line.trim().is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [old, new, name] = fields[..] else {
        return Err(format!(
            "expected \"<old-id> <new-id> <refname>\", found {} field{} in {}",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" },
            quote(line)
        ));
    };
    check_id(old)?;
    check_id(new)?;
    if old.len() != new.len() {
        return Err(format!(
            "old id {} and new id {} differ in length",
            quote(old),
            quote(new)
        ));
    }
    if !name.starts_with("refs/") {
        return Err(format!(
            "ref name {} does not start with \"refs/\"",
            quote(name)
        ));
    }
    Ok(Some(RefUpdate {
        old: old.to_ascii_lowercase(),
        new: new.to_ascii_lowercase(),
        name: name.to_string(),
    }))
}

/// Checks that a field is a full SHA-1 object id.
fn check_id(id: &str) -> Result<(), String> {
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{} is not a hexadecimal object id", quote(id)));
    }
    match id.len() {
        40 => Ok(()),
        // libgit2 is built here without SHA-256 support, so such an id could
        // only be misread; refuse it plainly instead.
        64 => Err(format!(
            "{} is a SHA-256 object id; SHA-256 repositories are not supported",
            quote(id)
        )),
        n => Err(format!("{} has {n} hex digits, expected 40", quote(id))),
    }
}

/// Quotes user input for a message, shortening it so one bad line cannot
/// flood the pusher's terminal.
fn quote(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("\"{}…\"", text[..end].escape_debug()),
        None => format!("\"{}\"", text.escape_debug()),
    }
}

/// Describes a `--range` argument, `OLD..NEW` with OLD optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// Gives the revision the range starts after, if any.
    pub old: Option<String>,
    /// Gives the revision the range ends at.
    pub new: String,
}

impl Range {
    /// Parses `OLD..NEW` or `..NEW`; an all-zero OLD means no start.
    pub fn parse(text: &str) -> Result<Range, String> {
        let Some((old, new)) = text.split_once("..") else {
            return Err(format!("range {} is not OLD..NEW", quote(text)));
        };
        if new.is_empty() || new.starts_with('.') {
            return Err(format!("range {} has no NEW revision", quote(text)));
        }
        let old = (!old.is_empty() && !wire::is_null_id(old)).then(|| old.to_string());
        Ok(Range {
            old,
            new: new.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    fn parse(text: &str) -> (Vec<RefUpdate>, Vec<String>) {
        let (updates, errors) = parse_ref_updates(text.as_bytes());
        (updates, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_lines_in_order_and_classifies_them() {
        let (updates, errors) = parse(&format!("{Z} {A} refs/heads/new\n{A} {Z} refs/tags/v1\n\n"));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(updates[0].is_created() && !updates[0].is_deleted());
        assert_eq!(updates[0].branch(), Some("new"));
        assert!(updates[1].is_deleted());
        assert_eq!(updates[1].tag(), Some("v1"));
    }

    #[test]
    fn keeps_good_lines_around_bad_ones() {
        let input = format!("{A} {B}\n{A} {B} refs/heads/ok\nxyz {B} refs/heads/x\n{A} {B} main\n");
        let (updates, errors) = parse(&input);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].name, "refs/heads/ok");
        assert_eq!(
            errors,
            vec![
                format!("stdin line 1: expected \"<old-id> <new-id> <refname>\", found 2 fields in \"{A} {B}\""),
                "stdin line 3: \"xyz\" is not a hexadecimal object id".to_string(),
                "stdin line 4: ref name \"main\" does not start with \"refs/\"".to_string(),
            ]
        );
    }

    #[test]
    fn keeps_ref_names_that_are_not_utf8() {
        let mut input = format!("{Z} {A} refs/heads/lat").into_bytes();
        input.extend_from_slice(b"\xe9n\n");
        let (updates, errors) = parse_ref_updates(&input[..]);
        assert!(errors.is_empty());
        assert_eq!(updates[0].branch(), Some("lat\u{fffd}n"));
    }

    #[test]
    fn refuses_sha256_ids_plainly() {
        let long = "a".repeat(64);
        let (updates, errors) = parse(&format!("{} {long} refs/heads/main\n", "0".repeat(64)));
        assert!(updates.is_empty());
        assert!(
            errors[0].contains("SHA-256 repositories are not supported"),
            "{errors:?}"
        );
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(
            Range::parse("..HEAD").unwrap(),
            Range {
                old: None,
                new: "HEAD".into()
            }
        );
        assert_eq!(Range::parse(&format!("{Z}..{A}")).unwrap().old, None);
        assert_eq!(Range::parse("v1..main").unwrap().old.as_deref(), Some("v1"));
        assert!(Range::parse("main").is_err());
        assert!(Range::parse("a...b").is_err());
        assert!(Range::parse("a..").is_err());
    }
}

/// Property tests: whatever bytes arrive on stdin, parsing never panics,
/// every line is either a ref update or one error naming its line, and
/// well-formed lines come back exactly.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn id() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(b"0123456789abcdef".to_vec()), 40)
            .prop_map(|bytes| String::from_utf8(bytes).expect("hex is ASCII"))
    }

    proptest! {
        #[test]
        fn any_input_is_parsed_without_panicking(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            let (updates, errors) = parse_ref_updates(&input[..]);
            let lines = input.split(|&b| b == b'\n').count();
            prop_assert!(updates.len() + errors.len() <= lines);
            for error in &errors {
                let text = error.to_string();
                prop_assert!(text.starts_with("stdin line "), "{}", text);
                prop_assert!(!text.contains('\n'), "{}", text);
            }
        }

        #[test]
        fn well_formed_lines_come_back_exactly(
            lines in proptest::collection::vec((id(), id(), "[a-z]{1,8}(/[a-z0-9._-]{1,8}){0,2}"), 1..20)
        ) {
            let input: String = lines
                .iter()
                .map(|(old, new, name)| format!("{old} {new} refs/heads/{name}\n"))
                .collect();
            let (updates, errors) = parse_ref_updates(input.as_bytes());
            prop_assert!(errors.is_empty());
            prop_assert_eq!(updates.len(), lines.len());
            for (update, (old, new, name)) in updates.iter().zip(&lines) {
                prop_assert_eq!(&update.old, old);
                prop_assert_eq!(&update.new, new);
                prop_assert_eq!(update.branch(), Some(name.as_str()));
            }
        }
    }
}
