//! Which commits a push added, and where each landed.
//!
//! For each pushed branch the new commits are those reachable from its new
//! tip and from no branch as it stood before the push: branches named in the
//! push at their old id, all others at their current id. That is
//! `git rev-list --topo-order --reverse NEW --not <pre-push branch tips>`.
//! Branches are walked first, in input order, then tags; each walk also
//! hides the tips walked before it, so a commit reached from several refs is
//! reported once, under the first. A tag adds its name to a commit reported
//! by a branch, or reports the commits no branch has, under the tag alone.

use std::collections::HashMap;

use git2::{Oid, Repository, Sort};

use crate::error::Error;
use crate::git;
use crate::payload::Target;
use crate::refs::{Range, RefUpdate};
use crate::wire;

/// Holds a commit found by a walk and where it landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Gives the commit id.
    pub id: Oid,
    /// Says where it landed.
    pub target: Target,
}

/// Holds what a push added, in order, and what could not be walked.
#[derive(Debug, Default)]
pub struct Walked {
    /// Lists the new commits, parents before children within a ref.
    pub commits: Vec<Found>,
    /// Counts the new commits under each ref update, in input order.
    pub per_ref: Vec<(String, usize)>,
    /// Lists the ref updates that could not be walked.
    pub errors: Vec<Error>,
    /// Lists oddities worth a warning, such as an old tip no longer stored.
    pub warnings: Vec<String>,
}

/// Finds the commits a push added from its ref updates, the push having
/// just happened.
pub fn pushed(repo: &Repository, updates: &[RefUpdate]) -> Result<Walked, Error> {
    let tips = pre_push_tips(repo, updates)?;
    Ok(pushed_with_tips(repo, updates, &tips, None))
}

/// Finds the commits a push added from its ref updates and the branch tips
/// (full ref names and ids) as they stood before it, recorded then, as later
/// pushes move them.
///
/// With `only`, just the branches it accepts count, both as pushed refs and
/// as what was there before: work pushed earlier to another branch and now
/// merged into an accepted one is new to it. Tags then only name commits
/// reported by those branches.
pub fn pushed_with_tips(
    repo: &Repository,
    updates: &[RefUpdate],
    tips: &[(String, Oid)],
    only: Option<&dyn Fn(&str) -> bool>,
) -> Walked {
    let wanted = |name: &str| {
        let branch = name.strip_prefix(wire::BRANCH_PREFIX).unwrap_or(name);
        only.is_none_or(|accept| accept(branch))
    };
    let tips: Vec<Oid> = tips
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|(_, id)| *id)
        .collect();
    let mut walked = Walked::default();
    let branches = updates
        .iter()
        .filter(|u| u.branch().is_some() && wanted(&u.name));
    let tags = updates.iter().filter(|u| u.tag().is_some());
    let mut refs = Vec::new();
    let mut labels = Vec::new();
    for update in branches.chain(tags).filter(|u| !u.is_deleted()) {
        match tip_of(repo, update) {
            Ok(tip) if only.is_some() && update.tag().is_some() => labels.push((update, tip)),
            Ok(tip) => refs.push((update, tip)),
            Err(e) => walked.errors.push(e),
        }
    }

    // One walk finds every new commit; each is then given to the first ref
    // that reaches it. One walk per ref, each hiding every branch, would
    // cost refs x branches, which a mirror push of thousands makes slow.
    let heads: Vec<Oid> = refs.iter().filter_map(|(_, tip)| *tip).collect();
    let order = match walk_many(repo, &heads, &tips, &mut walked.warnings) {
        Ok(order) => order,
        Err(e) => {
            walked.errors.push(Error::git("walking the pushed refs")(e));
            return walked;
        }
    };
    let owners = claim(repo, &refs, &order);
    let mut lists: Vec<Vec<Oid>> = vec![Vec::new(); refs.len()];
    for id in order {
        if let Some(&owner) = owners.get(&id) {
            lists[owner].push(id);
        }
    }

    let mut index: HashMap<Oid, usize> = HashMap::new();
    for ((update, tip), ids) in refs.iter().zip(lists) {
        record(&mut walked, &mut index, update, *tip, ids);
    }
    for (update, tip) in labels {
        record(&mut walked, &mut index, update, tip, Vec::new());
    }
    walked
}

/// Returns the commit a ref update points at, peeling annotated tags;
/// `None` when it points at a tree or blob, which adds no commits.
fn tip_of(repo: &Repository, update: &RefUpdate) -> Result<Option<Oid>, Error> {
    let context = |what: &str| format!("{}: {what} {}", update.name, update.new);
    let new = Oid::from_str(&update.new).map_err(Error::git(context("reading new id")))?;
    let object = repo
        .find_object(new, None)
        .map_err(Error::git(context("new id not found:")))?;
    Ok(object.peel_to_commit().ok().map(|c| c.id()))
}

/// Gives each new commit (`order`) to the first ref, in `refs` order, that
/// reaches it through new commits only.
fn claim(
    repo: &Repository,
    refs: &[(&RefUpdate, Option<Oid>)],
    order: &[Oid],
) -> HashMap<Oid, usize> {
    const FREE: usize = usize::MAX;
    let mut owners: HashMap<Oid, usize> = order.iter().map(|&id| (id, FREE)).collect();
    let claimers: Vec<(usize, Oid)> = refs
        .iter()
        .enumerate()
        .filter_map(|(i, (_, tip))| tip.filter(|t| owners.contains_key(t)).map(|t| (i, t)))
        .collect();
    let Some((&(last, _), earlier)) = claimers.split_last() else {
        return HashMap::new();
    };
    for &(owner, tip) in earlier {
        let mut stack = vec![tip];
        while let Some(id) = stack.pop() {
            match owners.get_mut(&id) {
                Some(slot) if *slot == FREE => *slot = owner,
                _ => continue,
            }
            if let Ok(commit) = repo.find_commit(id) {
                stack.extend(commit.parent_ids());
            }
        }
    }
    // Every new commit is reachable from some pushed ref, so what is left
    // belongs to the last one; a push of one branch skips the search.
    for slot in owners.values_mut().filter(|slot| **slot == FREE) {
        *slot = last;
    }
    owners
}

/// Returns the branch tips as they stood before the push, by full ref name:
/// the current ones, with the branches the push named at their old ids.
pub fn pre_push_tips(
    repo: &Repository,
    updates: &[RefUpdate],
) -> Result<Vec<(String, Oid)>, Error> {
    let mut tips: HashMap<String, Oid> = git::refs(repo, &[wire::BRANCH_PREFIX])?
        .into_iter()
        .collect();
    for update in updates.iter().filter(|u| u.branch().is_some()) {
        if update.is_created() {
            tips.remove(&update.name);
        } else if let Ok(old) = Oid::from_str(&update.old) {
            tips.insert(update.name.clone(), old);
        }
    }
    let mut tips: Vec<(String, Oid)> = tips.into_iter().collect();
    tips.sort();
    Ok(tips)
}

/// Lists the commits reachable from `tip` and from none of `hidden`,
/// parents before children.
fn walk(
    repo: &Repository,
    tip: Oid,
    hidden: &[Oid],
    warnings: &mut Vec<String>,
) -> Result<Vec<Oid>, git2::Error> {
    walk_many(repo, &[tip], hidden, warnings)
}

/// Lists the commits reachable from any of `tips` and from none of
/// `hidden`, parents before children.
fn walk_many(
    repo: &Repository,
    tips: &[Oid],
    hidden: &[Oid],
    warnings: &mut Vec<String>,
) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    for &tip in tips {
        walk.push(tip)?;
    }
    for &id in hidden {
        // An old tip that is no longer stored (pruned after a force push)
        // cannot hide anything; the walk goes on and may report more.
        if let Err(e) = walk.hide(id) {
            let warning = format!(
                "old tip {id} cannot be read ({}); more commits may be reported",
                e.message()
            );
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
    }
    walk.collect()
}

/// Adds a walked ref's commits to the result, and a tag's name to the
/// commit it points at when that commit is new in this push.
fn record(
    walked: &mut Walked,
    index: &mut HashMap<Oid, usize>,
    update: &RefUpdate,
    tip: Option<Oid>,
    ids: Vec<Oid>,
) {
    let target = match (update.branch(), update.tag()) {
        (Some(branch), _) => Target {
            branch: Some(branch.to_string()),
            ..Target::default()
        },
        (_, Some(tag)) => Target {
            tags: vec![tag.to_string()],
            ..Target::default()
        },
        _ => Target::default(),
    };
    walked.per_ref.push((update.name.clone(), ids.len()));
    for id in ids {
        index.insert(id, walked.commits.len());
        walked.commits.push(Found {
            id,
            target: target.clone(),
        });
    }
    let at = tip.and_then(|tip| index.get(&tip).copied());
    if let (Some(tag), Some(at)) = (update.tag(), at) {
        let tags = &mut walked.commits[at].target.tags;
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
}

/// Finds the commits of a range given by hand: exactly what
/// `git rev-list OLD..NEW` lists, on the branch `refname`, else on the
/// branch whose tip is NEW.
pub fn range(repo: &Repository, range: &Range, refname: Option<&str>) -> Result<Vec<Found>, Error> {
    let resolve = |rev: &str| -> Result<Oid, Error> {
        let object = repo
            .revparse_single(rev)
            .map_err(Error::git(format!("--range: resolving \"{rev}\"")))?;
        let commit = object
            .peel_to_commit()
            .map_err(Error::git(format!("--range: \"{rev}\" is not a commit")))?;
        Ok(commit.id())
    };
    let new = resolve(&range.new)?;
    let hidden = match &range.old {
        Some(old) => vec![resolve(old)?],
        None => Vec::new(),
    };
    let ids = walk(repo, new, &hidden, &mut Vec::new())
        .map_err(Error::git(format!("walking {}", range.new)))?;

    let branch = match refname {
        Some(name) => Some(branch_name(name)?),
        None => branch_at(repo, new)?,
    };
    let target = Target {
        branch,
        ..Target::default()
    };
    Ok(ids
        .into_iter()
        .map(|id| Found {
            id,
            target: target.clone(),
        })
        .collect())
}

/// Returns the branch `--ref` names, as `refs/heads/NAME` or `NAME`.
fn branch_name(refname: &str) -> Result<String, Error> {
    let branch = refname.strip_prefix(wire::BRANCH_PREFIX).unwrap_or(refname);
    let full = format!("{}{branch}", wire::BRANCH_PREFIX);
    if branch.starts_with("refs/") || !git2::Reference::is_valid_name(&full) {
        return Err(Error::Usage(format!(
            "--ref \"{refname}\" is not a branch: give refs/heads/NAME or NAME"
        )));
    }
    Ok(branch.to_string())
}

/// Returns the first branch, by name, whose tip is `id`.
fn branch_at(repo: &Repository, id: Oid) -> Result<Option<String>, Error> {
    let refs = repo
        .references()
        .map_err(Error::git("listing the repository's refs"))?;
    let mut names: Vec<String> = refs
        .filter_map(Result::ok)
        .filter(|r| r.target() == Some(id))
        .filter_map(|r| {
            r.name()
                .ok()?
                .strip_prefix(wire::BRANCH_PREFIX)
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names.into_iter().next())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use git2::{Signature, Time};
    use tempfile::TempDir;

    use super::*;

    const ZERO: &str = "0000000000000000000000000000000000000000";

    /// A bare repository whose refs a test moves by hand, then asks what a
    /// push making those moves added.
    struct Fixture {
        _dir: TempDir,
        repo: Repository,
        clock: Cell<i64>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = TempDir::new().unwrap();
            let repo = Repository::init_bare(dir.path()).unwrap();
            Fixture {
                _dir: dir,
                repo,
                clock: Cell::new(1_700_000_000),
            }
        }

        /// Creates a commit with an empty tree on top of `parents`, moving
        /// no ref; each commit gets its own time, so its own id.
        fn commit(&self, message: &str, parents: &[Oid]) -> Oid {
            self.clock.set(self.clock.get() + 60);
            let who =
                Signature::new("A", "a@example.com", &Time::new(self.clock.get(), 0)).unwrap();
            let tree = self.repo.treebuilder(None).unwrap().write().unwrap();
            let tree = self.repo.find_tree(tree).unwrap();
            let parents: Vec<_> = parents
                .iter()
                .map(|p| self.repo.find_commit(*p).unwrap())
                .collect();
            let parents: Vec<_> = parents.iter().collect();
            self.repo
                .commit(None, &who, &who, message, &tree, &parents)
                .unwrap()
        }

        /// Creates a chain of commits on top of `base`, returning them in order.
        fn chain(&self, prefix: &str, base: Option<Oid>, n: usize) -> Vec<Oid> {
            let mut ids = Vec::new();
            let mut parent = base;
            for i in 0..n {
                let id = self.commit(&format!("{prefix}{i}"), parent.as_slice());
                ids.push(id);
                parent = Some(id);
            }
            ids
        }

        fn annotated_tag(&self, name: &str, at: Oid) -> Oid {
            let who =
                Signature::new("A", "a@example.com", &Time::new(self.clock.get(), 0)).unwrap();
            let object = self.repo.find_object(at, None).unwrap();
            self.repo
                .tag(name, &object, &who, "release", false)
                .unwrap()
        }

        fn current(&self, name: &str) -> Option<Oid> {
            self.repo.find_reference(name).ok().and_then(|r| r.target())
        }

        /// Moves refs as a push would (None deletes), then walks the push.
        fn push(&self, moves: &[(&str, Option<Oid>)]) -> Walked {
            let mut updates = Vec::new();
            for (name, new) in moves {
                let old = self.current(name);
                match new {
                    Some(id) => {
                        self.repo.reference(name, *id, true, "push").unwrap();
                    }
                    None => self.repo.find_reference(name).unwrap().delete().unwrap(),
                }
                let text = |id: Option<Oid>| id.map_or(ZERO.to_string(), |id| id.to_string());
                updates.push(RefUpdate {
                    old: text(old),
                    new: text(*new),
                    name: name.to_string(),
                });
            }
            pushed(&self.repo, &updates).unwrap()
        }
    }

    fn ids(walked: &Walked) -> Vec<Oid> {
        walked.commits.iter().map(|f| f.id).collect()
    }

    fn branches(walked: &Walked) -> Vec<Option<&str>> {
        walked
            .commits
            .iter()
            .map(|f| f.target.branch.as_deref())
            .collect()
    }

    #[test]
    fn first_push_reports_the_whole_history_in_order() {
        let f = Fixture::new();
        let main = f.chain("m", None, 3);
        let walked = f.push(&[("refs/heads/main", Some(main[2]))]);
        assert_eq!(ids(&walked), main);
        assert_eq!(branches(&walked), vec![Some("main"); 3]);
        assert_eq!(walked.per_ref, vec![("refs/heads/main".to_string(), 3)]);
    }

    #[test]
    fn fast_forward_reports_only_new_commits() {
        let f = Fixture::new();
        let main = f.chain("m", None, 4);
        f.push(&[("refs/heads/main", Some(main[1]))]);
        assert_eq!(
            ids(&f.push(&[("refs/heads/main", Some(main[3]))])),
            main[2..]
        );
    }

    #[test]
    fn force_push_reports_the_rewritten_commits() {
        let f = Fixture::new();
        let main = f.chain("m", None, 3);
        f.push(&[("refs/heads/main", Some(main[2]))]);
        let rewritten = f.chain("x", Some(main[0]), 2);
        assert_eq!(
            ids(&f.push(&[("refs/heads/main", Some(rewritten[1]))])),
            rewritten
        );
    }

    #[test]
    fn deletion_reports_nothing() {
        let f = Fixture::new();
        let main = f.chain("m", None, 2);
        f.push(&[
            ("refs/heads/main", Some(main[1])),
            ("refs/heads/old", Some(main[0])),
        ]);
        let walked = f.push(&[("refs/heads/old", None)]);
        assert!(walked.commits.is_empty() && walked.errors.is_empty());
    }

    #[test]
    fn new_branch_reports_only_what_no_branch_had() {
        let f = Fixture::new();
        let main = f.chain("m", None, 3);
        f.push(&[("refs/heads/main", Some(main[2]))]);
        let feature = f.chain("f", Some(main[0]), 2);
        let walked = f.push(&[("refs/heads/feature", Some(feature[1]))]);
        assert_eq!(ids(&walked), feature);
        assert_eq!(branches(&walked), vec![Some("feature"); 2]);

        let on_old_commit = f.push(&[("refs/heads/copy", Some(main[1]))]);
        assert!(on_old_commit.commits.is_empty());
    }

    #[test]
    fn nested_new_branches_in_one_push_lose_nothing() {
        let f = Fixture::new();
        let main = f.chain("m", None, 1);
        f.push(&[("refs/heads/main", Some(main[0]))]);
        let a = f.chain("a", Some(main[0]), 2);
        let b = f.chain("b", Some(a[1]), 1);
        let walked = f.push(&[("refs/heads/b", Some(b[0])), ("refs/heads/a", Some(a[1]))]);
        assert_eq!(ids(&walked), vec![a[0], a[1], b[0]]);
        assert_eq!(branches(&walked), vec![Some("b"); 3]);
        assert_eq!(walked.per_ref[1], ("refs/heads/a".to_string(), 0));
    }

    #[test]
    fn merge_of_a_pushed_branch_reports_the_merge_only() {
        let f = Fixture::new();
        let main = f.chain("m", None, 2);
        let feature = f.chain("f", Some(main[0]), 2);
        f.push(&[
            ("refs/heads/main", Some(main[1])),
            ("refs/heads/feature", Some(feature[1])),
        ]);
        let merge = f.commit("merge", &[main[1], feature[1]]);
        assert_eq!(
            ids(&f.push(&[("refs/heads/main", Some(merge))])),
            vec![merge]
        );
    }

    #[test]
    fn tags_name_new_commits_and_add_no_old_ones() {
        let f = Fixture::new();
        let main = f.chain("m", None, 3);
        f.push(&[("refs/heads/main", Some(main[1]))]);
        let tag = f.annotated_tag("v1", main[2]);
        let walked = f.push(&[
            ("refs/tags/v1", Some(tag)),
            ("refs/heads/main", Some(main[2])),
        ]);
        assert_eq!(ids(&walked), vec![main[2]]);
        assert_eq!(walked.commits[0].target.tags, vec!["v1"]);
        assert_eq!(walked.commits[0].target.branch.as_deref(), Some("main"));

        let old = f.annotated_tag("v0", main[0]);
        assert!(f.push(&[("refs/tags/v0", Some(old))]).commits.is_empty());
    }

    #[test]
    fn tag_alone_reports_commits_no_branch_has() {
        let f = Fixture::new();
        let main = f.chain("m", None, 1);
        f.push(&[("refs/heads/main", Some(main[0]))]);
        let loose = f.chain("t", Some(main[0]), 2);
        let walked = f.push(&[("refs/tags/nightly", Some(loose[1]))]);
        assert_eq!(ids(&walked), loose);
        assert!(walked
            .commits
            .iter()
            .all(|c| c.target.tags == ["nightly"] && c.target.branch.is_none()));
    }

    #[test]
    fn commit_on_two_refs_is_reported_once_under_the_first() {
        let f = Fixture::new();
        let main = f.chain("m", None, 1);
        f.push(&[("refs/heads/main", Some(main[0]))]);
        let shared = f.chain("s", Some(main[0]), 1);
        let walked = f.push(&[
            ("refs/heads/x", Some(shared[0])),
            ("refs/heads/y", Some(shared[0])),
        ]);
        assert_eq!(ids(&walked), shared);
        assert_eq!(branches(&walked), vec![Some("x")]);
    }

    #[test]
    fn unknown_object_is_an_error_for_that_ref_only() {
        let f = Fixture::new();
        let main = f.chain("m", None, 1);
        let updates = [
            RefUpdate {
                old: ZERO.into(),
                new: "1234567890123456789012345678901234567890".into(),
                name: "refs/heads/ghost".into(),
            },
            RefUpdate {
                old: ZERO.into(),
                new: main[0].to_string(),
                name: "refs/heads/main".into(),
            },
        ];
        let walked = pushed(&f.repo, &updates).unwrap();
        assert_eq!(ids(&walked), main);
        let error = walked.errors[0].to_string();
        assert!(
            error.starts_with("refs/heads/ghost: new id not found: 1234567890"),
            "{error}"
        );
    }

    #[test]
    fn ref_must_name_a_branch() {
        assert_eq!(
            branch_name("refs/heads/release/2.0").unwrap(),
            "release/2.0"
        );
        assert_eq!(branch_name("main").unwrap(), "main");
        for bad in ["refs/tags/v1.0", "bad ref", "a..b", ""] {
            let err = branch_name(bad).unwrap_err().to_string();
            assert!(
                err.ends_with("is not a branch: give refs/heads/NAME or NAME"),
                "{err}"
            );
        }
    }

    #[test]
    fn range_follows_rev_list_and_names_the_branch_at_new() {
        let f = Fixture::new();
        let main = f.chain("m", None, 4);
        f.repo
            .reference("refs/heads/main", main[3], true, "")
            .unwrap();
        let range = Range::parse(&format!("{}..{}", main[1], main[3])).unwrap();
        let found = super::range(&f.repo, &range, None).unwrap();
        assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), main[2..]);
        assert_eq!(found[0].target.branch.as_deref(), Some("main"));
        let found = super::range(
            &f.repo,
            &Range::parse("..main").unwrap(),
            Some("refs/heads/rel"),
        )
        .unwrap();
        assert_eq!(found.len(), 4);
        assert_eq!(found[3].target.branch.as_deref(), Some("rel"));
    }
}
