//! Real Mercurial pushes through the changegroup hook (issue #3, "Tests
//! (real hg)"): a server repository with the built binary in its hgrc, a
//! clone that commits and `hg push`es over a local ssh stand-in, and a
//! receiver on 127.0.0.1 that records what arrived. Direct runs of the
//! binary cover `--range` and a changegroup without `HG_NODE_LAST`.
//!
//! What a push should report is always asked of `hg log` in the server
//! repository, never written down by hand.

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

use crate::git_push::{assert_delivered, kept, spool_dir, spooled_files};
use crate::util::{
    assert_success, dead_url, give_away, isolate, run_with_timeout, running_as_root, stderr,
    stdout, webhook, HgEnv, Receiver, Request, COMMAND_TIMEOUT, HOOK_PATH, OTHER_USER,
};

/// The secret of the webhooks these tests configure.
const SECRET: &str = "hg-s3cret";

const WAIT: Duration = Duration::from_secs(5);

/// Returns a server with the hook installed and a settings file listing
/// `webhooks`, named by the server's `[rbgateway] config`.
fn hooked(webhooks: Vec<Value>) -> HgEnv {
    let env = HgEnv::new();
    env.install_hook();
    configured(&env, webhooks);
    env
}

/// Writes a settings file listing `webhooks` and names it in the server's
/// hgrc.
fn configured(env: &HgEnv, webhooks: Vec<Value>) {
    let settings = env.write_config(&json!({ "webhooks": webhooks }));
    env.set_settings(&settings);
}

/// Returns the `rb` webhook for `repo1`, pointing at `receiver`.
fn rb(receiver: &Receiver) -> Value {
    webhook("rb", &receiver.url(), SECRET)
}

/// Pushes with `args`, failing the test if `hg push` fails.
fn push(env: &HgEnv, args: &[&str]) -> Output {
    let output = env.push(args, &[]);
    assert_success(&output);
    output
}

/// Returns the changesets the server added since it held `before`: the
/// changegroup of a push, in revision order.
fn added_since(env: &HgEnv, before: usize) -> Vec<String> {
    env.server_nodes(&format!("{before}:tip"))
}

/// Checks one delivery as Review Board would (WIRE.md) and returns its
/// commits.
fn checked(request: &Request, repository: &str) -> Vec<Value> {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, HOOK_PATH);
    assert!(request.verify_signature(SECRET), "bad signature");
    assert_eq!(request.header("X-RBG-Event"), Some("push"));
    let body = request.json();
    assert_eq!(body["event"], "push");
    assert_eq!(body["repository"], repository);
    let commits = body["commits"].as_array().expect("commits is an array");
    for commit in commits {
        assert!(commit["target"].is_object(), "no target: {commit}");
        let tags = commit["target"]["tags"].as_array();
        assert!(
            !tags.into_iter().flatten().any(|t| t == "tip"),
            "tip listed as a tag: {commit}"
        );
    }
    commits.clone()
}

/// Waits for `n` deliveries and returns all their commits, in arrival order.
fn received(receiver: &Receiver, n: usize) -> Vec<Value> {
    let requests = receiver.wait_for(n, WAIT);
    assert_eq!(requests.len(), n, "deliveries");
    requests.iter().flat_map(|r| checked(r, "repo1")).collect()
}

/// Returns the ids of `commits`.
fn ids(commits: &[Value]) -> Vec<String> {
    let id = |c: &Value| c["id"].as_str().expect("string id").to_string();
    commits.iter().map(id).collect()
}

/// Returns the commit with id `node`.
fn find<'a>(commits: &'a [Value], node: &str) -> &'a Value {
    commits
        .iter()
        .find(|c| c["id"] == node)
        .unwrap_or_else(|| panic!("{node} not delivered: {commits:?}"))
}

/// Returns what the changegroup hook printed during an `hg push`: the
/// `remote: ` lines, which hg writes to stdout, without that prefix.
fn hg_remote_lines(output: &Output) -> Vec<String> {
    let text = stdout(output);
    let lines = text.lines().filter_map(|l| l.strip_prefix("remote: "));
    lines.map(str::to_string).collect()
}

/// Checks that the pusher saw exactly one "delivered" line for `commits`.
fn assert_pusher_saw_delivery(output: &Output, commits: &str) {
    let lines = hg_remote_lines(output);
    let head = format!("rbg-notify: webhook \"rb\": delivered {commits} (HTTP 200, ");
    let ours: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("rbg-notify:"))
        .collect();
    assert_eq!(ours.len(), 1, "{lines:?}");
    assert!(ours[0].starts_with(&head), "{lines:?}");
}

#[test]
fn first_push_delivers_its_changesets() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    let node = env.commit("Initial import\n\nReviewed at https://rb.example.com/r/1/");

    let output = push(&env, &[]);

    let commits = received(&receiver, 1);
    assert_eq!(
        commits,
        vec![json!({
            "id": node,
            "message": "Initial import\n\nReviewed at https://rb.example.com/r/1/",
            "target": {"branch": "default"},
            "author": {"name": "A U Thor", "email": "author@example.com"},
            "timestamp": "2023-11-14T22:14:20Z",
        })]
    );
    assert_pusher_saw_delivery(&output, "1 commit");
}

#[test]
fn several_changesets_arrive_in_revision_order() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("One");
    push(&env, &[]);
    let before = env.server_len();
    for message in ["Two", "Three", "Four"] {
        env.commit(message);
    }

    let output = push(&env, &[]);

    let commits = received(&receiver, 2);
    assert_eq!(ids(&commits[1..]), added_since(&env, before));
    let messages: Vec<&str> = commits
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["One", "Two", "Three", "Four"]);
    assert_pusher_saw_delivery(&output, "3 commits");
}

#[test]
fn named_branch_is_the_target() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    let base = env.commit("Base");
    env.hg(&["branch", "--quiet", "stable"]);
    let first = env.commit("Start stable");
    let second = env.commit("Fix on stable");

    push(&env, &["--new-branch"]);

    let commits = received(&receiver, 1);
    assert_eq!(ids(&commits), [base.clone(), first.clone(), second.clone()]);
    assert_eq!(
        find(&commits, &base)["target"],
        json!({"branch": "default"})
    );
    assert_eq!(
        find(&commits, &first)["target"],
        json!({"branch": "stable"})
    );
    assert_eq!(
        find(&commits, &second)["target"],
        json!({"branch": "stable"})
    );
}

#[test]
fn bookmark_pushed_with_b_is_listed() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("Base");
    push(&env, &[]);
    env.hg(&["bookmark", "feature-x"]);
    let first = env.commit("Feature, part 1");
    let second = env.commit("Feature, part 2");

    let output = push(&env, &["-B", "feature-x"]);

    // Bookmarks travel in the same bundle2 transaction as the changesets,
    // and the changegroup hook runs once it is closed: the hook sees them.
    let commits = received(&receiver, 2);
    let pushed = &commits[1..];
    assert_eq!(ids(pushed), [first.clone(), second.clone()]);
    assert_eq!(find(pushed, &first)["target"], json!({"branch": "default"}));
    assert_eq!(
        find(pushed, &second)["target"],
        json!({"branch": "default", "bookmarks": ["feature-x"]})
    );
    assert_pusher_saw_delivery(&output, "2 commits");
}

#[test]
fn tag_names_the_tagged_changeset() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("Base");
    let release = env.commit("Release 1.0");
    env.tag("v1.0");
    let tagging = env.node(".");

    push(&env, &[]);

    let commits = received(&receiver, 1);
    assert_eq!(ids(&commits), added_since(&env, 0));
    assert_eq!(
        find(&commits, &release)["target"],
        json!({"branch": "default", "tags": ["v1.0"]})
    );
    // The changeset `hg tag` made is the tip; `tip` is not a tag.
    assert_eq!(
        find(&commits, &tagging)["target"],
        json!({"branch": "default"})
    );
}

#[test]
fn two_heads_in_one_push_are_both_sent() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    let base = env.commit("Base");
    push(&env, &[]);
    let before = env.server_len();
    let left = env.commit("Left head");
    env.hg(&["update", "--quiet", &base]);
    let right = env.commit("Right head");

    push(&env, &["-f"]);

    let commits = received(&receiver, 2);
    let pushed = ids(&commits[1..]);
    assert_eq!(pushed, added_since(&env, before));
    assert_eq!(pushed, [left, right]);
}

/// An hgrc that would change `hg log`, `hg root` and `hg config` output if
/// rbg-notify let it: defaults, aliases, templates, verbosity and colour.
const ODD_HGRC: &str = r#"
[defaults]
log = -l 1 -r 0
config = --debug
[alias]
log = log -l 1 --template "{rev}\n"
root = log -r 0 -T "{rev}\n"
config = version
[templates]
json = "hijacked {rev}\n"
[templatealias]
node = rev
desc = "x"
[ui]
logtemplate = "LT {rev}\n"
verbose = true
debug = true
color = always
[extensions]
color =
pager =
[pager]
pager = cat
attend-log = true
"#;

#[test]
fn odd_log_defaults_and_aliases_change_nothing() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.append_hgrc(env.work(), ODD_HGRC);
    env.append_hgrc(env.server(), ODD_HGRC);
    env.commit("One");
    env.commit("Two");
    let output = push(&env, &[]);
    assert_pusher_saw_delivery(&output, "2 commits");

    // Mercurial 5.7+ runs hooks with HGPLAIN set (`hg help config.hooks`,
    // `run-with-plain`), but HGPLAINEXCEPT in the pusher's environment
    // reaches the hook and asks for aliases and defaults back.
    let before = env.server_len();
    env.commit("Three");
    let except = ("HGPLAINEXCEPT", "alias,defaults,revsetalias,templatealias");
    let output = env.push(&[], &[except]);
    assert_success(&output);
    assert_pusher_saw_delivery(&output, "1 commit");

    let commits = received(&receiver, 2);
    assert_eq!(ids(&commits), added_since(&env, 0));
    assert_eq!(ids(&commits[2..]), added_since(&env, before));
    assert_eq!(commits[1]["message"], "Two");
    assert_eq!(commits[1]["target"], json!({"branch": "default"}));

    // An administrator's shell sets no HGPLAIN at all.
    let replay = env.run_binary(&["--range", "1:2"], &[], env.server());
    assert_success(&replay);
    let requests = receiver.wait_for(3, WAIT);
    assert_eq!(requests.len(), 3, "deliveries");
    assert_eq!(ids(&checked(&requests[2], "repo1")), ids(&commits[1..]));
}

#[test]
fn non_ascii_message_arrives_intact_under_a_c_locale() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    // Committed as UTF-8; the push and its hook run with LC_ALL=C and no
    // HGENCODING, where plain `hg log` would print "Fix caf? ?".
    let node = env.commit_with(
        "Fix café ✓\n\nÜbersetzung: 日本語",
        &[("HGENCODING", "utf-8")],
    );

    push(&env, &[]);

    let commits = received(&receiver, 1);
    assert_eq!(commits[0]["id"], node);
    assert_eq!(commits[0]["message"], "Fix café ✓\n\nÜbersetzung: 日本語");
}

#[test]
fn changegroup_without_node_last_runs_to_tip() {
    let receiver = Receiver::ok();
    let env = HgEnv::new();
    configured(&env, vec![rb(&receiver)]);
    env.commit("Base");
    push(&env, &[]);
    let first = env.commit("First of three");
    env.commit("Second of three");
    env.commit("Third of three");
    push(&env, &[]);

    // As Mercurial before 4.4 runs the hook: HG_NODE only.
    let vars = [("HG_HOOKTYPE", "changegroup"), ("HG_NODE", first.as_str())];
    let output = env.run_binary(&[], &vars, env.server());
    assert_success(&output);

    let commits = received(&receiver, 1);
    assert_eq!(ids(&commits), env.server_nodes(&format!("{first}:tip")));
    assert_eq!(commits.len(), 3);
    assert_eq!(stdout(&output), "");
}

#[test]
fn range_replays_with_dry_run_and_with_delivery() {
    let receiver = Receiver::ok();
    let env = HgEnv::new();
    configured(&env, vec![rb(&receiver)]);
    for message in ["One", "Two", "Three"] {
        env.commit(message);
    }
    push(&env, &[]);
    let all = env.server_nodes("all()");

    let dry = env.run_binary(
        &["--range", "2:1", "--dry-run", "--ref", "release"],
        &[],
        env.server(),
    );
    assert_success(&dry);
    let payload: Value = serde_json::from_str(stdout(&dry).trim_end()).expect("one JSON line");
    let dry_commits = payload["commits"].as_array().unwrap();
    assert_eq!(ids(dry_commits), all[1..]);
    assert_eq!(dry_commits[0]["target"], json!({"branch": "release"}));
    assert!(receiver.requests().is_empty(), "a dry run sent something");

    // Run from a subfolder: the root is found the way hg finds it.
    let docs = env.server().join("docs");
    fs::create_dir(&docs).expect("create a subfolder");
    let sent = env.run_binary(&["--range", "0:tip"], &[], &docs);
    assert_success(&sent);
    assert_eq!(ids(&received(&receiver, 1)), all);
}

#[test]
fn range_uses_hg_inside_a_git_work_tree() {
    let receiver = Receiver::ok();
    let env = HgEnv::new();
    configured(&env, vec![rb(&receiver)]);
    env.commit("One");
    push(&env, &[]);
    // A git repository around the hg one must not capture `--range`.
    let srv = env.server().parent().expect("the server has a parent");
    let mut git = Command::new("git");
    isolate(&mut git, env.root(), "");
    git.args(["init", "--quiet"]).current_dir(srv);
    assert_success(&run_with_timeout(&mut git, b"", COMMAND_TIMEOUT));

    let output = env.run_binary(&["--range", "0:tip", "-n"], &[], env.server());
    assert_success(&output);
    assert!(stdout(&output).contains(&env.server_nodes("0")[0]));
}

#[test]
fn repository_name_comes_from_the_hgrc() {
    let receiver = Receiver::ok();
    let env = HgEnv::new();
    let mut hook = webhook("rb", &receiver.url(), SECRET);
    hook["repositories"] = json!(["Product X"]);
    configured(&env, vec![hook]);
    env.append_hgrc(env.server(), "[rbgateway]\nrepository = Product X\n");
    env.commit("One");
    push(&env, &[]);

    let output = env.run_binary(&["--range", "0"], &[], env.server());
    assert_success(&output);
    let requests = receiver.wait_for(1, WAIT);
    assert_eq!(requests.len(), 1);
    assert_eq!(checked(&requests[0], "Product X").len(), 1);
}

#[test]
fn failed_delivery_only_warns_the_pusher() {
    let env = hooked(vec![webhook("rb", &dead_url(), SECRET)]);
    env.commit("One");

    let output = push(&env, &[]);

    let lines = hg_remote_lines(&output);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("rbg-notify: error: webhook \"rb\": 1 commit not delivered: ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("changegroup.rbgateway hook exited with status 1")),
        "{lines:?}"
    );
    assert_eq!(env.server_len(), 1, "the push is kept");
}

#[test]
fn missing_hg_is_named() {
    let env = HgEnv::new();
    let vars = [
        ("HG_HOOKTYPE", "changegroup"),
        ("HG_NODE", "9bbae5c795721a391a6c9002b8569c5e5bd286a9"),
        ("PATH", "/nonexistent"),
    ];
    let output = env.run_binary(&[], &vars, env.server());
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "rbg-notify: error: `hg root`: hg not found; install Mercurial or put hg on PATH\n"
    );
}

#[test]
fn failing_hg_log_is_named() {
    let env = HgEnv::new();
    let output = env.run_binary(&["--range", "nosuch:tip", "-n"], &[], env.server());
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "rbg-notify: error: `hg log --hidden -T json --rev=sort((nosuch:tip), rev)`: \
         exit status 255: abort: unknown revision 'nosuch'\n"
    );
}

/// Returns the server's spool folder, inside its `.hg`.
fn server_spool(env: &HgEnv) -> std::path::PathBuf {
    spool_dir(&env.server().join(".hg"))
}

/// Returns a server with the hook installed whose `rb` webhook points where
/// nothing listens. The budget stays the default: the hg commands of a run
/// count against it, and a short one could end before the first attempt.
fn hooked_down() -> HgEnv {
    hooked(vec![webhook("rb", &dead_url(), SECRET)])
}

#[test]
fn push_while_the_receiver_is_down_is_sent_by_retry() {
    let env = hooked_down();
    env.commit("One");
    env.commit("Two");

    let output = push(&env, &[]);

    let spool = server_spool(&env);
    let lines = hg_remote_lines(&output);
    let kept = kept("rb", "2 commits", "connection refused", &spool);
    assert!(lines.contains(&kept), "{lines:?}");
    assert_eq!(spooled_files(&spool).len(), 1);

    let receiver = Receiver::ok();
    env.write_config(&json!({ "webhooks": [rb(&receiver)] }));
    let retry = env.run_binary(&["--retry"], &[], env.server());

    assert_success(&retry);
    assert_eq!(ids(&received(&receiver, 1)), added_since(&env, 0));
    let said: Vec<String> = stderr(&retry).lines().map(str::to_string).collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert_delivered(&said[0], "rb", "2 commits");
    assert_eq!(
        said[1],
        format!(
            "rbg-notify: spool {}: 1 delivery sent, 0 deliveries waiting",
            spool.display()
        )
    );
    assert_eq!(spooled_files(&spool), Vec::<String>::new());
}

#[test]
fn next_push_sends_what_waits_before_its_own() {
    let env = hooked_down();
    env.commit("While down");
    push(&env, &[]);
    let receiver = Receiver::ok();
    env.write_config(&json!({ "webhooks": [rb(&receiver)] }));
    env.commit("Once up");

    let output = push(&env, &[]);

    let requests = receiver.wait_for(2, WAIT);
    assert_eq!(requests.len(), 2);
    let commits: Vec<Value> = requests.iter().flat_map(|r| checked(r, "repo1")).collect();
    assert_eq!(ids(&commits), added_since(&env, 0));
    let delivery = |r: &Request| r.header("X-RBG-Delivery").map(str::to_string);
    assert!(delivery(&requests[0]) < delivery(&requests[1]));
    assert_pusher_saw_delivery(&output, "2 commits in 2 payloads");
    assert_eq!(spooled_files(&server_spool(&env)), Vec::<String>::new());
}

/// Found by a first-time administrator: in a Mercurial repository the
/// settings file's source was named with git's key.
#[test]
fn settings_source_is_named_as_the_hgrc_names_it() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("one");
    push(&env, &[]);

    let output = env.run_binary(&["--check"], &[], env.server());
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(report.contains("(from [rbgateway] config)"), "{report}");

    let bare = HgEnv::new();
    bare.commit("one");
    let output = bare.run_binary(&["--range", "0:0"], &[], bare.work());
    let said = crate::util::stderr(&output);
    assert!(
        said.contains("looked at --config, RBG_NOTIFY_CONFIG, [rbgateway] config, "),
        "{said}"
    );
}

/// Found with the ledger (issue #7): a push whose hook never ran, as when
/// the hook process is killed at once, is still sent by the next run.
#[test]
fn push_whose_hook_never_ran_is_sent_by_retry_and_once_only() {
    let receiver = Receiver::ok();
    let env = hooked(vec![rb(&receiver)]);
    env.commit("with its hook");
    push(&env, &[]);
    assert_eq!(received(&receiver, 1).len(), 1);

    // An empty value turns the hook off for the next push.
    env.append_hgrc(env.server(), "[hooks]\nchangegroup.rbgateway =\n");
    env.commit("lost one");
    env.commit("lost two");
    push(&env, &[]);
    env.install_hook();
    assert_eq!(receiver.requests().len(), 1);

    let retry = env.run_binary(&["--retry"], &[], env.server());
    assert_success(&retry);
    let got = ids(&received(&receiver, 2));
    assert_eq!(got, added_since(&env, 0));

    // The next push sends its own changeset only.
    env.commit("after");
    push(&env, &[]);
    assert_eq!(ids(&received(&receiver, 3)), added_since(&env, 0));
    assert_eq!(spooled_files(&server_spool(&env)), Vec::<String>::new());
}

/// Found by a trial: `--retry` run by root in a repository the hg user
/// owns left root's spool and ledger there, which the hooks could then not
/// write.
#[test]
fn root_is_told_to_run_as_the_owner_and_writes_nothing() {
    if !running_as_root() {
        return; // Only root can give a repository to another user.
    }
    let env = hooked(vec![webhook("rb", &dead_url(), SECRET)]);
    give_away(env.server());

    let output = env.run_binary(&["--retry"], &[], env.server());

    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    let ours: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("rbg-notify:"))
        .collect();
    assert_eq!(ours.len(), 1, "{said}");
    assert!(
        ours[0].contains(&format!(
            "belongs to user {OTHER_USER}; run rbg-notify as that user"
        )),
        "{said}"
    );
    assert!(!env.server().join(".hg/rbg-notify").exists());
}
