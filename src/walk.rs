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

/// Finds the commits a push added from its ref updates.
pub fn pushed(repo: &Repository, updates: &[RefUpdate]) -> Result<Walked, Error> {
    let mut walked = Walked::default();
    let mut hidden = pre_push_tips(repo, updates)?;
    let mut index: HashMap<Oid, usize> = HashMap::new();

    let branches = updates.iter().filter(|u| u.branch().is_some());
    let tags = updates.iter().filter(|u| u.tag().is_some());
    for update in branches.chain(tags) {
        if update.is_deleted() {
            continue;
        }
        match walk_update(repo, update, &hidden, &mut walked.warnings) {
            Ok(Some((tip, ids))) => {
                record(&mut walked, &mut index, update, tip, ids);
                hidden.push(tip);
            }
            Ok(None) => walked.per_ref.push((update.name.clone(), 0)),
            Err(e) => walked.errors.push(e),
        }
    }
    Ok(walked)
}

/// Returns the branch tips as they stood before the push.
fn pre_push_tips(repo: &Repository, updates: &[RefUpdate]) -> Result<Vec<Oid>, Error> {
    let mut tips: HashMap<String, Oid> = HashMap::new();
    let refs = repo
        .references()
        .map_err(Error::git("listing the repository's refs"))?;
    for reference in refs {
        let reference = reference.map_err(Error::git("listing the repository's refs"))?;
        if let (Ok(name), Some(id)) = (reference.name(), reference.target()) {
            if name.starts_with(wire::BRANCH_PREFIX) {
                tips.insert(name.to_string(), id);
            }
        }
    }
    for update in updates.iter().filter(|u| u.branch().is_some()) {
        if update.is_created() {
            tips.remove(&update.name);
        } else if let Ok(old) = Oid::from_str(&update.old) {
            tips.insert(update.name.clone(), old);
        }
    }
    Ok(tips.into_values().collect())
}

/// Walks one ref update, returning the commit it points at and the commits
/// not hidden, parents first; `None` when it points at no commit.
fn walk_update(
    repo: &Repository,
    update: &RefUpdate,
    hidden: &[Oid],
    warnings: &mut Vec<String>,
) -> Result<Option<(Oid, Vec<Oid>)>, Error> {
    let context = |what: &str| format!("{}: {what} {}", update.name, update.new);
    let new = Oid::from_str(&update.new).map_err(Error::git(context("reading new id")))?;
    let object = repo
        .find_object(new, None)
        .map_err(Error::git(context("new id not found:")))?;
    // Annotated tags are peeled; a tag of a tree or blob adds no commits.
    let Ok(commit) = object.peel_to_commit() else {
        return Ok(None);
    };
    let ids =
        walk(repo, commit.id(), hidden, warnings).map_err(Error::git(context("walking from")))?;
    Ok(Some((commit.id(), ids)))
}

/// Lists the commits reachable from `tip` and from none of `hidden`,
/// parents before children.
fn walk(
    repo: &Repository,
    tip: Oid,
    hidden: &[Oid],
    warnings: &mut Vec<String>,
) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    walk.push(tip)?;
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
    tip: Oid,
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
    if let (Some(tag), Some(&at)) = (update.tag(), index.get(&tip)) {
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
        Some(name) => Some(
            name.strip_prefix(wire::BRANCH_PREFIX)
                .unwrap_or(name)
                .to_string(),
        ),
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
