//! Real pushes through the installed VCS hook: the built binary symlinked as
//! a bare repository's `hooks/post-receive`, `git push` from a clone, and a
//! receiver on 127.0.0.1 that records what arrived (issue #2, "Tests (real
//! git, real HTTP)").
//!
//! The hook gets no arguments, so every test finds the settings file the
//! way a real installation does: through the repository's git config
//! `rbgateway.config` or `RBG_NOTIFY_CONFIG` in the pusher's environment.
//! What a push should report is always asked of `git rev-list` in the bare
//! repository, never written down by hand. Direct runs of the binary live in
//! `cli.rs`, which shares the helpers at the top of this file.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{
    assert_success, binary, dead_url, path_str, remote_lines, run_with_timeout, stderr, webhook,
    Behaviour, GitEnv, Receiver, Reply, Request, COMMAND_TIMEOUT, HOOK_PATH,
};

/// The secret of the webhooks these tests configure.
pub(crate) const SECRET: &str = "s3cret";

/// Returns a bare repository with the binary installed as its post-receive
/// hook and a settings file listing `webhooks`, named by the repository's
/// git config `rbgateway.config`.
pub(crate) fn hooked(webhooks: Vec<Value>) -> GitEnv {
    hooked_with(json!({ "webhooks": webhooks }))
}

/// Returns a bare repository with the binary installed as its post-receive
/// hook and `settings` as its settings file, named as `hooked` names it.
pub(crate) fn hooked_with(settings: Value) -> GitEnv {
    let env = GitEnv::new();
    env.install_hook(&binary());
    let config = env.write_config(&settings);
    env.set_config("rbgateway.config", path_str(&config));
    env
}

/// Returns the `X-RBG-Delivery` id of every request `receiver` got.
pub(crate) fn delivery_ids(receiver: &Receiver) -> Vec<String> {
    let id = |r: &Request| {
        r.header("X-RBG-Delivery")
            .expect("a delivery id")
            .to_string()
    };
    receiver.requests().iter().map(id).collect()
}

/// Returns the `rb` webhook for `repo1`, pointing at `receiver`.
pub(crate) fn rb(receiver: &Receiver) -> Value {
    webhook("rb", &receiver.url(), SECRET)
}

/// Pushes `args` from the clone, failing the test if `git push` fails.
pub(crate) fn push(env: &GitEnv, args: &[&str]) -> Output {
    let output = env.push(args, &[]);
    assert_success(&output);
    output
}

/// Returns the branch tips of the bare repository, as they stand now.
pub(crate) fn branch_tips(env: &GitEnv) -> Vec<String> {
    let tips = env.git_in(
        env.bare(),
        &["for-each-ref", "--format=%(objectname)", "refs/heads/"],
    );
    tips.lines().map(str::to_string).collect()
}

/// Returns what `git rev-list --topo-order --reverse NEW --not TIPS` lists
/// in the bare repository: the commits a push of `new` should report when
/// `tips` were the branch tips before it.
pub(crate) fn expected(env: &GitEnv, new: &[&str], tips: &[String]) -> Vec<String> {
    let mut args = vec!["--topo-order", "--reverse"];
    args.extend(new);
    args.push("--not");
    args.extend(tips.iter().map(String::as_str));
    env.rev_list(&args)
}

/// Checks one delivery as Review Board would (WIRE.md) and returns its
/// decoded body: a signed JSON POST of a push of `repository`.
pub(crate) fn checked(request: &Request, repository: &str) -> Value {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, HOOK_PATH);
    assert!(request.verify_signature(SECRET), "bad signature");
    assert_eq!(request.header("X-RBG-Event"), Some("push"));
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    let agent = format!("rbg-notify/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(request.header("User-Agent"), Some(agent.as_str()));

    let body = request.json();
    assert_eq!(body["event"], "push");
    assert_eq!(body["repository"], repository);
    let commits = body["commits"].as_array().expect("commits is an array");
    for commit in commits {
        assert!(commit["target"].is_object(), "no target: {commit}");
        assert!(commit["message"].is_string(), "no message: {commit}");
    }
    body
}

/// Returns every commit `receiver` got for `repo1`, in arrival order, each
/// delivery checked.
pub(crate) fn commits(receiver: &Receiver) -> Vec<Value> {
    let mut all = Vec::new();
    for request in receiver.requests() {
        let body = checked(&request, "repo1");
        all.extend(body["commits"].as_array().cloned().unwrap_or_default());
    }
    all
}

/// Returns the ids of `commits`.
pub(crate) fn ids(commits: &[Value]) -> Vec<String> {
    let id = |c: &Value| c["id"].as_str().expect("string id").to_string();
    commits.iter().map(id).collect()
}

/// Returns the targets of `commits`.
fn targets(commits: &[Value]) -> Vec<Value> {
    commits.iter().map(|c| c["target"].clone()).collect()
}

/// Checks a "delivered" line; its time in ms is the only part that varies.
pub(crate) fn assert_delivered(line: &str, webhook: &str, commits: &str) {
    let head = format!("rbg-notify: webhook \"{webhook}\": delivered {commits} (HTTP 200, ");
    let ms = line
        .strip_prefix(&head)
        .and_then(|rest| rest.strip_suffix(" ms)"))
        .unwrap_or_else(|| panic!("not a delivered line for {webhook}: {line:?}"));
    assert!(
        !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()),
        "{line:?}"
    );
}

/// Returns the default spool folder of the repository at `folder` (the
/// bare repository, or a `.hg` folder), as the binary names it.
pub(crate) fn spool_dir(folder: &Path) -> PathBuf {
    let folder = folder.canonicalize().expect("the repository exists");
    folder.join("rbg-notify").join("spool")
}

/// Returns the line for deliveries of `commits` to `webhook` that stayed
/// in `spool` for `reason`.
pub(crate) fn kept(webhook: &str, commits: &str, reason: &str, spool: &Path) -> String {
    format!(
        "rbg-notify: error: webhook \"{webhook}\": {commits} not delivered: {reason}; kept in {} \
         for the next push or `rbg-notify --retry`",
        spool.display()
    )
}

/// Returns the line for a webhook whose delivery the receiver refused, so
/// it waits on hold for `--retry`.
pub(crate) fn held(webhook: &str, commits: &str, reason: &str, spool: &Path) -> String {
    format!(
        "rbg-notify: error: webhook \"{webhook}\": {commits} not delivered: {reason}; kept in {} \
         on hold: fix the cause, then run `rbg-notify --retry`",
        spool.display()
    )
}

/// Asserts the pusher saw two retries of one commit's delivery to `rb`,
/// then that it was kept in the spool, all for `reason`.
pub(crate) fn assert_retried_then_kept(env: &GitEnv, output: &Output, reason: &str) {
    assert_eq!(
        remote_lines(output),
        [
            trying_again("rb", reason),
            trying_again("rb", reason),
            kept("rb", "1 commit", reason, &spool_dir(env.bare())),
        ]
    );
}

/// Returns the line for a failed attempt at `webhook` about to be retried.
pub(crate) fn trying_again(webhook: &str, reason: &str) -> String {
    format!("rbg-notify: webhook \"{webhook}\": {reason}; trying again")
}

/// Returns the names of the files in `spool` other than its lock, sorted.
pub(crate) fn spooled_files(spool: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(spool) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| {
            e.expect("spool entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "lock")
        .collect();
    names.sort();
    names
}

/// Checks that the hook printed exactly one line, a delivery of `commits`
/// to webhook `rb`.
pub(crate) fn assert_only_delivered(output: &Output, commits: &str) {
    let lines = remote_lines(output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_delivered(&lines[0], "rb", commits);
}

/// Writes a fast-import stream of commits on `refs/heads/main`, one per
/// message, each with its own date so each gets its own id. Unlike `git
/// commit`, fast-import stores message bytes as given, even when they are
/// not UTF-8.
fn fast_import_stream(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut stream = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let mark = i + 1;
        let head = format!(
            "commit refs/heads/main\nmark :{mark}\n\
             committer C O Mitter <committer@example.com> {} +0000\n\
             data {}\n",
            1_700_000_000 + mark,
            message.len()
        );
        stream.extend_from_slice(head.as_bytes());
        stream.extend_from_slice(message);
        if mark > 1 {
            stream.extend_from_slice(format!("from :{}\n", mark - 1).as_bytes());
        }
        stream.push(b'\n');
    }
    stream
}

/// Makes one commit per message on the clone's `main`, which must not exist
/// yet, with `git fast-import`.
pub(crate) fn import_commits(env: &GitEnv, messages: &[Vec<u8>]) {
    let mut cmd = env.git_command(env.work());
    cmd.args(["fast-import", "--quiet"]);
    let stream = fast_import_stream(messages);
    assert_success(&run_with_timeout(&mut cmd, &stream, COMMAND_TIMEOUT));
}

/// Makes `n` commits on the clone's `main`, which must not exist yet.
pub(crate) fn import_history(env: &GitEnv, n: usize) {
    let messages: Vec<Vec<u8>> = (1..=n)
        .map(|i| format!("commit {i}\n").into_bytes())
        .collect();
    import_commits(env, &messages);
}

#[test]
fn first_push_sends_the_whole_history() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    let first = env.commit("first");
    env.commit("second");
    env.commit("Fix the parser\n\nReview request #12");

    let output = push(&env, &["origin", "main"]);

    let got = commits(&receiver);
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(ids(&got), expected(&env, &["main"], &[]));
    assert_eq!(ids(&got).len(), 3);
    assert_eq!(targets(&got), vec![json!({"branch": "main"}); 3]);
    assert_eq!(got[0]["id"], first.as_str());
    assert_eq!(got[0]["message"], "first\n");
    assert_eq!(got[2]["message"], "Fix the parser\n\nReview request #12\n");
    assert_eq!(
        got[0]["author"],
        json!({"name": "A U Thor", "email": "author@example.com"})
    );
    assert_eq!(got[0]["timestamp"], "2023-11-14T22:14:20Z");
    assert_only_delivered(&output, "3 commits");
}

#[test]
fn fast_forward_sends_only_the_new_commits() {
    let receiver = Receiver::ok();
    let env = GitEnv::new();
    env.install_hook(&binary());
    let config = env.write_config(&json!({ "webhooks": [rb(&receiver)] }));
    let via_env = [("RBG_NOTIFY_CONFIG", path_str(&config))];
    env.commit("one");
    assert_success(&env.push(&["origin", "main"], &via_env));
    env.commit("two");
    env.commit("three");
    let before = branch_tips(&env);

    let output = env.push(&["origin", "main"], &via_env);
    assert_success(&output);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    let body = checked(&requests[1], "repo1");
    let got = body["commits"].as_array().unwrap();
    assert_eq!(ids(got), expected(&env, &["main"], &before));
    assert_eq!(ids(got).len(), 2);
    assert_only_delivered(&output, "2 commits");
}

#[test]
fn force_push_sends_the_rewritten_commits() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    let first = env.commit("one");
    env.commit("two");
    env.commit("three");
    push(&env, &["origin", "main"]);
    env.reset_hard(&first);
    env.commit("two, rewritten");
    env.commit("three, rewritten");
    let before = branch_tips(&env);

    let output = push(&env, &["--force", "origin", "main"]);

    let got = commits(&receiver)[3..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["main"], &before));
    assert_eq!(ids(&got).len(), 2);
    assert_eq!(got[0]["message"], "two, rewritten\n");
    assert_only_delivered(&output, "2 commits");
}

#[test]
fn branch_deletion_sends_nothing() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    env.branch("topic");
    env.commit("two");
    push(&env, &["origin", "main", "topic"]);
    assert_eq!(receiver.requests().len(), 1);

    let output = push(&env, &["origin", ":topic"]);

    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(remote_lines(&output), Vec::<String>::new());
    assert_eq!(branch_tips(&env), [env.rev_parse("main")]);
}

#[test]
fn new_branch_from_an_older_commit_sends_only_its_own_commits() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    env.commit("two");
    env.commit("three");
    push(&env, &["origin", "main"]);
    env.git(&["checkout", "--quiet", "-b", "feature", "HEAD~2"]);
    env.commit("feature one");
    env.commit("feature two");
    let before = branch_tips(&env);

    let output = push(&env, &["origin", "feature"]);

    let got = commits(&receiver)[3..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["feature"], &before));
    assert_eq!(ids(&got).len(), 2);
    assert_eq!(targets(&got), vec![json!({"branch": "feature"}); 2]);
    assert_only_delivered(&output, "2 commits");
}

#[test]
fn branch_created_on_an_existing_commit_sends_nothing() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    env.commit("two");
    push(&env, &["origin", "main"]);

    let output = push(&env, &["origin", "HEAD~1:refs/heads/copy"]);

    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(remote_lines(&output), Vec::<String>::new());
}

/// Pushes two new branches, `outer` containing `inner`, in the given order,
/// and checks every new commit arrives once, under the first branch that
/// reaches it in the hook's input.
fn push_nested_branches(order: [&str; 2], expected_targets: [&str; 3]) {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("base");
    push(&env, &["origin", "main"]);
    env.git(&["checkout", "--quiet", "-b", "inner"]);
    env.commit("inner one");
    env.commit("inner two");
    env.git(&["checkout", "--quiet", "-b", "outer"]);
    env.commit("outer one");
    let before = branch_tips(&env);

    let output = push(&env, &["origin", order[0], order[1]]);

    let got = commits(&receiver)[1..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["outer", "inner"], &before));
    assert_eq!(ids(&got).len(), 3);
    let branches: Vec<Value> = expected_targets
        .iter()
        .map(|b| json!({ "branch": b }))
        .collect();
    assert_eq!(targets(&got), branches);
    assert_only_delivered(&output, "3 commits");
}

#[test]
fn two_new_nested_branches_lose_nothing_and_repeat_nothing() {
    // git gives new refs to the hook in the order they were pushed.
    push_nested_branches(["outer", "inner"], ["outer", "outer", "outer"]);
    push_nested_branches(["inner", "outer"], ["inner", "inner", "outer"]);
}

#[test]
fn merge_of_a_pushed_branch_sends_only_the_merge() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("base");
    env.branch("topic");
    env.commit("on main");
    env.checkout("topic");
    env.commit("on topic");
    env.checkout("main");
    push(&env, &["origin", "main", "topic"]);
    let merge = env.merge("topic");
    let before = branch_tips(&env);

    let output = push(&env, &["origin", "main"]);

    let got = commits(&receiver)[3..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["main"], &before));
    assert_eq!(ids(&got), [merge]);
    assert_eq!(got[0]["message"], "Merge topic\n");
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn tags_pushed_with_new_commits_name_them() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("base");
    push(&env, &["origin", "main"]);
    let light = env.commit("lightly tagged");
    env.tag("light");
    env.commit("untagged");
    let release = env.commit("released");
    env.annotated_tag("v1", "release 1");
    let before = branch_tips(&env);

    let output = push(&env, &["origin", "main", "light", "v1"]);

    let got = commits(&receiver)[1..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["main"], &before));
    assert_eq!(ids(&got).len(), 3);
    assert_eq!(got[0]["id"], light.as_str());
    assert_eq!(got[2]["id"], release.as_str());
    assert_eq!(
        targets(&got),
        [
            json!({"branch": "main", "tags": ["light"]}),
            json!({"branch": "main"}),
            json!({"branch": "main", "tags": ["v1"]}),
        ]
    );
    assert_only_delivered(&output, "3 commits");
}

#[test]
fn tags_on_old_commits_resend_nothing() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    env.commit("two");
    push(&env, &["origin", "main"]);
    env.git(&["tag", "-a", "-m", "release 0", "v0", "HEAD~1"]);
    env.git(&["tag", "light", "HEAD"]);

    let output = push(&env, &["origin", "v0", "light"]);

    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(remote_lines(&output), Vec::<String>::new());
}

#[test]
fn tag_alone_on_new_commits_sends_them_under_the_tag() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("base");
    push(&env, &["origin", "main"]);
    env.git(&["checkout", "--quiet", "--detach"]);
    env.commit("nightly one");
    env.commit("nightly two");
    env.annotated_tag("nightly", "nightly build");
    let before = branch_tips(&env);

    let output = push(&env, &["origin", "nightly"]);

    let got = commits(&receiver)[1..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["nightly^{commit}"], &before));
    assert_eq!(targets(&got), vec![json!({"tags": ["nightly"]}); 2]);
    assert_only_delivered(&output, "2 commits");
}

#[test]
fn multiple_refs_in_one_push_each_send_their_own_commits() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    env.branch("gone");
    push(&env, &["origin", "main", "gone"]);
    env.commit("main two");
    env.commit("main three");
    env.git(&["checkout", "--quiet", "-b", "feature", "HEAD~2"]);
    env.commit("feature one");
    env.git(&["tag", "-a", "-m", "old", "v0", "main~2"]);
    let before = branch_tips(&env);

    let output = push(&env, &["origin", "main", "feature", ":gone", "v0"]);

    let got = commits(&receiver)[1..].to_vec();
    assert_eq!(receiver.requests().len(), 2);
    let main = expected(&env, &["main"], &before);
    let feature = expected(&env, &["feature"], &before);
    assert_eq!((main.len(), feature.len()), (2, 1));
    // git lists refs the repository had before new ones (main, then
    // feature), but only the grouping is the hook's business.
    let mut either = [main.clone(), feature.clone()].concat();
    if ids(&got) != either {
        either = [feature.clone(), main.clone()].concat();
    }
    assert_eq!(ids(&got), either);
    for commit in &got {
        let id = commit["id"].as_str().unwrap().to_string();
        let branch = if main.contains(&id) {
            "main"
        } else {
            "feature"
        };
        assert_eq!(commit["target"], json!({ "branch": branch }));
    }
    assert_only_delivered(&output, "3 commits");
}

#[test]
fn renamed_branch_sends_only_the_commits_added_on_top() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("base");
    env.git(&["checkout", "--quiet", "-b", "old"]);
    env.commit("on old");
    push(&env, &["origin", "main", "old"]);
    env.git(&["branch", "--quiet", "-m", "old", "new"]);
    env.commit("on new");
    let before = branch_tips(&env);

    // The deleted branch still hides what it had before the push.
    let output = push(&env, &["origin", ":old", "new"]);

    let got = commits(&receiver)[2..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["new"], &before));
    assert_eq!(ids(&got), [env.rev_parse("new")]);
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn commits_on_two_pushed_branches_are_sent_once() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("base");
    push(&env, &["origin", "main", "main:release"]);
    env.commit("two");
    env.commit("three");
    let before = branch_tips(&env);

    let output = push(&env, &["origin", "main", "main:release"]);

    let got = commits(&receiver)[1..].to_vec();
    assert_eq!(ids(&got), expected(&env, &["main", "release"], &before));
    assert_eq!(ids(&got).len(), 2);
    let first = got[0]["target"].clone();
    assert!(
        first == json!({"branch": "main"}) || first == json!({"branch": "release"}),
        "{first}"
    );
    assert_eq!(targets(&got), vec![first; 2]);
    assert_only_delivered(&output, "2 commits");
}

#[test]
fn notes_and_other_refs_are_ignored() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    push(&env, &["origin", "main"]);
    env.git(&["notes", "add", "-m", "a note", "HEAD"]);
    env.git(&["update-ref", "refs/backup/main", "HEAD"]);

    let output = push(&env, &["origin", "refs/notes/commits", "refs/backup/main"]);

    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(remote_lines(&output), Vec::<String>::new());
}

#[test]
fn webhooks_for_other_repositories_or_disabled_get_nothing() {
    let (off, other, wanted) = (Receiver::ok(), Receiver::ok(), Receiver::ok());
    let mut disabled = webhook("off", &off.url(), SECRET);
    disabled["enabled"] = json!(false);
    let mut elsewhere = webhook("other", &other.url(), SECRET);
    elsewhere["repositories"] = json!(["repo2"]);
    // rb-gateway's own spelling of the list, and the older event name.
    let legacy = json!({
        "id": "rb", "url": wanted.url(), "secret": SECRET,
        "events": ["post-commit"], "repos": ["repo1", "repo3"],
    });
    let env = hooked(vec![disabled, elsewhere, legacy]);
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    assert_eq!(off.requests().len(), 0);
    assert_eq!(other.requests().len(), 0);
    assert_eq!(ids(&commits(&wanted)), expected(&env, &["main"], &[]));
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn no_wanted_webhook_sends_nothing_and_says_so() {
    let (off, other) = (Receiver::ok(), Receiver::ok());
    let mut disabled = webhook("off", &off.url(), SECRET);
    disabled["enabled"] = json!(false);
    let mut elsewhere = webhook("other", &other.url(), SECRET);
    elsewhere["repositories"] = json!(["repo2"]);
    let env = hooked(vec![disabled, elsewhere]);
    env.commit("one");
    env.commit("two");

    let output = push(&env, &["origin", "main"]);

    assert_eq!(off.requests().len() + other.requests().len(), 0);
    assert_eq!(
        remote_lines(&output),
        [
            "rbg-notify: 2 new commits found, but no enabled webhook wants pushes to \
          repository \"repo1\""
        ]
    );
}

#[test]
fn repository_name_comes_from_git_config() {
    let receiver = Receiver::ok();
    let mut hook = rb(&receiver);
    hook["repositories"] = json!(["Main Repo"]);
    let env = hooked(vec![hook]);
    env.set_config("rbgateway.repository", "Main Repo");
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let body = checked(&requests[0], "Main Repo");
    assert_eq!(
        ids(body["commits"].as_array().unwrap()),
        expected(&env, &["main"], &[])
    );
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn relative_settings_path_is_found_next_to_the_repository() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    let config = env.root().join("rbg-notify.json");
    std::fs::copy(&config, env.bare().join("rbg.json")).unwrap();
    std::fs::remove_file(&config).unwrap();
    env.set_config("rbgateway.config", "rbg.json");
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    assert_eq!(ids(&commits(&receiver)), expected(&env, &["main"], &[]));
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn receiver_error_is_reported_and_the_push_stands() {
    let receiver = Receiver::start(Reply::with_body(500, "boom\nmore"));
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    env.commit("two");

    // post-receive runs after the refs moved: git reports the push as done
    // and does not mention the hook's exit status.
    let output = push(&env, &["origin", "main"]);

    // A 5xx is tried three times, always as the same delivery.
    let want = expected(&env, &["main"], &[]);
    assert_eq!(ids(&commits(&receiver)), [&want[..], &want, &want].concat());
    let sent = delivery_ids(&receiver);
    assert_eq!(sent, vec![sent[0].clone(); 3]);
    let reason = "HTTP 500 Internal Server Error: boom";
    let spool = spool_dir(env.bare());
    assert_eq!(
        remote_lines(&output),
        [
            trying_again("rb", reason),
            trying_again("rb", reason),
            kept("rb", "2 commits", reason, &spool),
        ]
    );
    assert_eq!(spooled_files(&spool), [format!("{}.delivery", sent[0])]);
    assert_eq!(branch_tips(&env), [env.rev_parse("main")]);
    let local = stderr(&output);
    let local: Vec<&str> = local
        .lines()
        .filter(|l| !l.starts_with("remote:"))
        .collect();
    assert!(!local.iter().any(|l| l.contains("error")), "{local:?}");
}

#[test]
fn nothing_listening_is_reported() {
    let env = hooked(vec![webhook("rb", &dead_url(), SECRET)]);
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    let spool = spool_dir(env.bare());
    assert_eq!(
        remote_lines(&output),
        [
            trying_again("rb", "connection refused"),
            trying_again("rb", "connection refused"),
            kept("rb", "1 commit", "connection refused", &spool),
        ]
    );
    assert_eq!(spooled_files(&spool).len(), 1);
}

#[test]
fn silent_receiver_cannot_hold_the_push() {
    let receiver = Receiver::start(Reply::Hang);
    let mut hook = rb(&receiver);
    hook["timeout"] = json!(1);
    // Room for two attempts of 1 s and the pause between them, not three.
    let env = hooked_with(json!({ "webhooks": [hook], "budget": 3 }));
    env.commit("one");

    let started = Instant::now();
    let output = push(&env, &["origin", "main"]);
    let elapsed = started.elapsed();

    assert!(elapsed < Duration::from_secs(10), "push took {elapsed:?}");
    assert_eq!(receiver.requests().len(), 2);
    let reason = "no answer within 1 s";
    assert_eq!(
        remote_lines(&output),
        [
            trying_again("rb", reason),
            kept("rb", "1 commit", reason, &spool_dir(env.bare())),
        ]
    );
}

#[test]
fn trickling_receiver_cannot_hold_the_push() {
    let receiver = Receiver::start(Reply::Slow {
        status: 200,
        body: b"ok".to_vec(),
        delay: Duration::from_millis(200),
    });
    let mut hook = rb(&receiver);
    hook["timeout"] = json!(1);
    let env = hooked(vec![hook]);
    env.commit("one");

    let started = Instant::now();
    let output = push(&env, &["origin", "main"]);
    let elapsed = started.elapsed();

    // Three attempts of 1 s and pauses of 250 ms and 1 s.
    assert!(elapsed < Duration::from_secs(10), "push took {elapsed:?}");
    assert_eq!(receiver.requests().len(), 3);
    let reason = "no answer within 1 s";
    assert_retried_then_kept(&env, &output, reason);
}

#[test]
fn endless_answer_body_is_not_waited_for() {
    let receiver = Receiver::start(Reply::Endless);
    let mut hook = rb(&receiver);
    hook["timeout"] = json!(2);
    let env = hooked(vec![hook]);
    env.commit("one");

    let started = Instant::now();
    let output = push(&env, &["origin", "main"]);
    let elapsed = started.elapsed();

    assert!(elapsed < Duration::from_secs(10), "push took {elapsed:?}");
    assert_eq!(ids(&commits(&receiver)), expected(&env, &["main"], &[]));
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn receiver_hanging_up_is_reported() {
    let receiver = Receiver::start(Reply::Close);
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    assert_eq!(receiver.requests().len(), 3);
    let reason = "the receiver closed the connection without an HTTP answer";
    assert_retried_then_kept(&env, &output, reason);
}

#[test]
fn redirect_for_a_missing_slash_is_a_failure_with_a_hint() {
    let receiver = Receiver::start(Reply::AppendSlash);
    let hook = webhook("rb", &receiver.url_without_slash(), SECRET);
    let env = hooked(vec![hook]);
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "the redirect was followed");
    assert_eq!(requests[0].path, HOOK_PATH.trim_end_matches('/'));
    let reason = format!(
        "HTTP 301 redirect to {HOOK_PATH} (redirects are not followed; Review Board hook \
         URLs end with \"/\")"
    );
    assert_eq!(
        remote_lines(&output),
        [held("rb", "1 commit", &reason, &spool_dir(env.bare()))]
    );
}

#[test]
fn one_failing_webhook_does_not_stop_the_next() {
    let failing = Receiver::start(Reply::status(503));
    let working = Receiver::ok();
    let env = hooked(vec![webhook("down", &failing.url(), SECRET), rb(&working)]);
    env.commit("one");
    env.commit("two");

    let output = push(&env, &["origin", "main"]);

    let want = expected(&env, &["main"], &[]);
    assert_eq!(ids(&commits(&failing)), [&want[..], &want, &want].concat());
    assert_eq!(ids(&commits(&working)), want);
    let (down, up) = (delivery_ids(&failing), delivery_ids(&working));
    assert_eq!(down, vec![down[0].clone(); 3]);
    assert_ne!(down[0], up[0]);
    let lines = remote_lines(&output);
    let reason = "HTTP 503 Service Unavailable";
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[..3],
        [
            trying_again("down", reason),
            trying_again("down", reason),
            kept("down", "2 commits", reason, &spool_dir(env.bare())),
        ]
    );
    assert_delivered(&lines[3], "rb", "2 commits");
}

#[test]
fn invalid_settings_are_reported_by_file() {
    let receiver = Receiver::ok();
    let mut hook = rb(&receiver);
    hook["enabled"] = json!("yes");
    let env = hooked(vec![hook]);
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    assert_eq!(receiver.requests().len(), 0);
    let config = env.root().join("rbg-notify.json");
    let spool = spool_dir(env.bare());
    assert_eq!(
        remote_lines(&output),
        [format!(
            "rbg-notify: error: push kept in {} and not sent: {}: webhook \"rb\": field \
             \"enabled\": expected true or false, found a string; run `rbg-notify --retry` \
             once fixed",
            spool.display(),
            config.display()
        )]
    );
    let files = spooled_files(&spool);
    assert!(files.len() == 1 && files[0].ends_with(".push"), "{files:?}");
}

#[test]
fn latin1_message_with_an_encoding_header_arrives_decoded() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit_bytes(b"caf\xe9\n", Some("ISO-8859-1"));

    let output = push(&env, &["origin", "main"]);

    let got = commits(&receiver);
    assert_eq!(ids(&got), expected(&env, &["main"], &[]));
    assert_eq!(got[0]["message"], "café\n");
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn undecodable_message_arrives_with_replacement_characters() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    // `git commit` would rewrite these bytes as Latin-1 (commit.c,
    // verify_utf8), so they are imported as they are.
    import_commits(&env, &[b"caf\xe9 \xff\n".to_vec()]);

    let output = push(&env, &["origin", "main"]);

    let got = commits(&receiver);
    assert_eq!(ids(&got), expected(&env, &["main"], &[]));
    assert_eq!(got[0]["message"], "caf\u{fffd} \u{fffd}\n");
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn long_first_push_arrives_in_order_in_bounded_payloads() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    import_history(&env, 1500);

    let output = push(&env, &["origin", "main"]);

    let requests = receiver.requests();
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| checked(r, "repo1")["commits"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1000, 500]);
    let want = expected(&env, &["main"], &[]);
    assert_eq!(want.len(), 1500);
    assert_eq!(ids(&commits(&receiver)), want);
    assert_only_delivered(&output, "1500 commits in 2 payloads");
}

#[test]
fn failed_later_payload_reports_only_what_was_not_delivered() {
    let receiver = Receiver::start(Behaviour::script([Reply::status(200)], Reply::status(500)));
    let env = hooked(vec![rb(&receiver)]);
    import_history(&env, 1001);

    let output = push(&env, &["origin", "main"]);

    let want = expected(&env, &["main"], &[]);
    let last = want[1000..].to_vec();
    assert_eq!(ids(&commits(&receiver)), [&want[..], &last, &last].concat());
    let sent = delivery_ids(&receiver);
    assert_eq!(sent.len(), 4);
    assert_ne!(sent[0], sent[1]);
    assert_eq!(
        sent[1..],
        [sent[1].clone(), sent[1].clone(), sent[1].clone()]
    );
    let reason = "HTTP 500 Internal Server Error";
    assert_eq!(
        remote_lines(&output),
        [
            trying_again("rb", reason),
            trying_again("rb", reason),
            format!(
                "rbg-notify: error: webhook \"rb\": delivered 1000 commits, but 1 commit not \
                 delivered: {reason}; kept in {} for the next push or `rbg-notify --retry`",
                spool_dir(env.bare()).display()
            ),
        ]
    );
    assert_eq!(
        spooled_files(&spool_dir(env.bare())),
        [format!("{}.delivery", sent[1])]
    );
}

#[test]
fn branch_filter_hears_of_its_branches_and_of_work_merged_into_them() {
    let all = Receiver::ok();
    let main_only = Receiver::ok();
    let mut filtered = webhook("main-only", &main_only.url(), SECRET);
    filtered["branches"] = json!(["main", "release/*"]);
    let env = hooked(vec![rb(&all), filtered]);
    env.commit("base");
    env.branch("topic");
    env.checkout("topic");
    let topic = [env.commit("topic one"), env.commit("topic two")];
    env.checkout("main");
    let on_main = env.commit("on main");

    // One push touching two branches: each webhook hears of its own.
    push(&env, &["origin", "main", "topic"]);
    assert_eq!(commits(&all).len(), 4);
    let heard = commits(&main_only);
    assert_eq!(ids(&heard), expected(&env, &["main"], &[]));
    assert!(heard.iter().all(|c| c["target"]["branch"] == "main"));
    assert!(!ids(&heard).contains(&topic[0]));

    // The topic's work lands on main with the merge: new to main-only, old
    // news to the webhook that heard of every branch.
    let merge = env.merge("topic");
    push(&env, &["origin", "main"]);
    assert_eq!(ids(&commits(&all)[4..]), std::slice::from_ref(&merge));
    let landed = ids(&commits(&main_only)[heard.len()..]);
    assert_eq!(landed, [topic[0].clone(), topic[1].clone(), merge]);
    assert!(!landed.contains(&on_main));

    // A release branch matches the pattern; another branch does not.
    env.branch("release/2.0");
    env.checkout("release/2.0");
    let fix = env.commit("release fix");
    env.branch("wip");
    let before = main_only.requests().len();
    push(&env, &["origin", "release/2.0", "wip"]);
    let requests = main_only.requests();
    assert_eq!(requests.len(), before + 1);
    let body = checked(&requests[before], "repo1");
    assert_eq!(ids(body["commits"].as_array().unwrap()), [fix]);
    assert_eq!(body["commits"][0]["target"]["branch"], "release/2.0");
}

/// Found by a first-time administrator: a push to a branch whose name is not
/// UTF-8 was refused as a bad stdin line, and nothing was delivered.
#[test]
fn branch_name_that_is_not_utf8_is_still_delivered() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("base");
    push(&env, &["origin", "main"]);
    let id = env.commit("on a latin-1 branch");
    let name = "refs/heads/lat\u{e9}n";
    // git takes the name as bytes; write the Latin-1 byte for é.
    let mut update = std::process::Command::new("git");
    crate::util::isolate(&mut update, env.root(), "");
    update.current_dir(env.work());
    update.arg("update-ref");
    update.arg(std::ffi::OsStr::from_bytes(b"refs/heads/lat\xe9n"));
    update.arg(&id);
    assert_success(&run_with_timeout(&mut update, b"", COMMAND_TIMEOUT));
    let mut refspec = b"refs/heads/lat\xe9n".to_vec();
    refspec.extend_from_slice(b":refs/heads/lat\xe9n");
    let mut pushing = std::process::Command::new("git");
    crate::util::isolate(&mut pushing, env.root(), "");
    pushing
        .current_dir(env.work())
        .args(["push", "--quiet", "origin"]);
    pushing.arg(std::ffi::OsStr::from_bytes(&refspec));
    let output = run_with_timeout(&mut pushing, b"", COMMAND_TIMEOUT);
    assert_success(&output);

    let got = commits(&receiver)[1..].to_vec();
    assert_eq!(ids(&got), [id]);
    let branch = name.replace('\u{e9}', "\u{fffd}");
    assert_eq!(
        got[0]["target"]["branch"],
        branch.trim_start_matches("refs/heads/")
    );
    assert_only_delivered(&output, "1 commit");
}

#[test]
fn deliveries_go_through_the_configured_or_environment_proxy() {
    let receiver = Receiver::ok();
    let proxy = crate::util::ConnectProxy::start();
    // Written with a trailing slash, as proxies often are.
    let with_slash = format!("{}/", proxy.url());
    let env = hooked_with(json!({ "webhooks": [rb(&receiver)], "proxy": with_slash }));
    env.commit("via the settings file's proxy");
    push(&env, &["origin", "main"]);
    assert_eq!(proxy.targets(), [receiver.addr().to_string()]);
    assert_eq!(commits(&receiver).len(), 1);
    assert!(receiver.requests()[0].verify_signature(SECRET));

    // The environment's http_proxy, as curl reads it, unless no_proxy
    // names the host.
    let env = hooked(vec![rb(&receiver)]);
    env.commit("via http_proxy");
    let proxy_url = proxy.url();
    let output = env.push(&["origin", "main"], &[("http_proxy", proxy_url.as_str())]);
    assert_success(&output);
    assert_eq!(proxy.targets().len(), 2);
    assert_eq!(commits(&receiver).len(), 2);

    env.commit("around the proxy");
    let bypass = [
        ("http_proxy", proxy_url.as_str()),
        ("no_proxy", "localhost,127.0.0.1"),
    ];
    assert_success(&env.push(&["origin", "main"], &bypass));
    assert_eq!(proxy.targets().len(), 2, "no_proxy was not honoured");
    assert_eq!(commits(&receiver).len(), 3);
}

#[test]
fn dead_proxy_is_named_in_the_failure() {
    let receiver = Receiver::ok();
    let dead = dead_url();
    let proxy = dead.trim_end_matches(HOOK_PATH).to_string();
    let settings = json!({ "webhooks": [rb(&receiver)], "proxy": proxy, "budget": 2 });
    let env = hooked_with(settings);
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    assert_eq!(receiver.requests().len(), 0);
    let reason = format!("through proxy {proxy}: connection refused");
    let seen = remote_lines(&output);
    assert_eq!(
        seen.last().unwrap(),
        &kept("rb", "1 commit", &reason, &spool_dir(env.bare()))
    );
}
