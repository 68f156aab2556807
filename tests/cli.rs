//! Direct runs of the built binary in a bare repository: `--range` replays,
//! `--dry-run`, post-receive input written by hand, bad settings, and the
//! exit status of each (issue #2; STYLE.md section 4 for the codes).
//!
//! The repositories are filled by plain pushes without a VCS hook; the runs
//! then read them as an administrator would. Pushes through the installed
//! hook live in `git_push.rs`, whose helpers these tests share.

use std::fs;
use std::process::Output;

use serde_json::{json, Value};

use crate::git_push::{
    assert_delivered, checked, commits, delivery_ids, ids, kept, rb, spool_dir, spooled_files,
    trying_again, SECRET,
};
use crate::util::{path_str, stderr, stdout, webhook, GitEnv, Receiver, Reply, ZERO_ID};

/// Returns a bare repository whose `main` holds `n` commits, pushed without
/// a VCS hook, and their ids, oldest first.
fn repository(n: usize) -> (GitEnv, Vec<String>) {
    let env = GitEnv::new();
    let ids: Vec<String> = (1..=n)
        .map(|i| env.commit(&format!("commit {i}")))
        .collect();
    crate::git_push::push(&env, &["--quiet", "origin", "main"]);
    (env, ids)
}

/// Writes a settings file listing `webhooks` and returns its path as text.
fn settings(env: &GitEnv, webhooks: Vec<Value>) -> String {
    let path = env.write_config(&json!({ "webhooks": webhooks }));
    path_str(&path).to_string()
}

/// Runs the binary in the bare repository with `args` and `stdin`.
fn run(env: &GitEnv, args: &[&str], stdin: &[u8]) -> Output {
    env.run_binary(args, stdin, &[], env.bare())
}

/// Returns the exit code, failing the test if a signal ended the run.
fn code(output: &Output) -> i32 {
    output.status.code().expect("the binary exits normally")
}

/// Returns stderr's lines.
fn errors(output: &Output) -> Vec<String> {
    stderr(output).lines().map(str::to_string).collect()
}

/// Returns `git rev-list --topo-order --reverse <args>` in the bare
/// repository: the order payloads list commits in.
fn rev_list(env: &GitEnv, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--topo-order", "--reverse"];
    all.extend(args);
    env.rev_list(&all)
}

/// Checks a run that delivered `commits` to `rb` alone and exited 0.
fn assert_delivered_only(output: &Output, commits: &str) {
    assert_eq!(code(output), 0, "{}", stderr(output));
    assert_eq!(stdout(output), "");
    let lines = errors(output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_delivered(&lines[0], "rb", commits);
}

#[test]
fn range_replays_exactly_what_rev_list_lists() {
    let receiver = Receiver::ok();
    let (env, all) = repository(5);
    let config = settings(&env, vec![rb(&receiver)]);
    let range = format!("{}..{}", all[0], all[3]);

    let output = run(&env, &["--config", &config, "--range", &range], b"");

    let got = commits(&receiver);
    assert_eq!(ids(&got), rev_list(&env, &[&range]));
    assert_eq!(ids(&got), all[1..4]);
    // No branch ends at NEW and none was named.
    assert!(got.iter().all(|c| c["target"] == json!({})), "{got:?}");
    assert_delivered_only(&output, "3 commits");
}

#[test]
fn range_reports_the_branch_given_by_ref() {
    let receiver = Receiver::ok();
    let (env, all) = repository(3);
    let config = settings(&env, vec![rb(&receiver)]);
    let range = format!("{}..{}", all[0], all[2]);

    let output = run(
        &env,
        &[
            "-c",
            &config,
            "--range",
            &range,
            "--ref",
            "refs/heads/release",
        ],
        b"",
    );

    let got = commits(&receiver);
    assert_eq!(ids(&got), rev_list(&env, &[&range]));
    assert!(got
        .iter()
        .all(|c| c["target"] == json!({"branch": "release"})));
    assert_delivered_only(&output, "2 commits");
}

#[test]
fn range_defaults_to_the_branch_whose_tip_is_new() {
    let receiver = Receiver::ok();
    let (env, all) = repository(4);
    let config = settings(&env, vec![rb(&receiver)]);
    let range = format!("{}..main", all[1]);

    let output = run(&env, &["-c", &config, "--range", &range], b"");

    let got = commits(&receiver);
    assert_eq!(ids(&got), rev_list(&env, &[&range]));
    assert_eq!(ids(&got), all[2..]);
    assert!(got.iter().all(|c| c["target"] == json!({"branch": "main"})));
    assert_delivered_only(&output, "2 commits");
}

#[test]
fn range_without_old_replays_everything_reachable() {
    let receiver = Receiver::ok();
    let (env, all) = repository(3);
    let config = settings(&env, vec![rb(&receiver)]);

    let open = run(&env, &["-c", &config, "--range", "..main"], b"");
    let zeros = format!("{ZERO_ID}..{}", all[2]);
    let null = run(&env, &["-c", &config, "--range", &zeros], b"");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let body = checked(request, "repo1");
        let got = body["commits"].as_array().unwrap();
        assert_eq!(ids(got), rev_list(&env, &["main"]));
        assert_eq!(ids(got), all);
    }
    assert_delivered_only(&open, "3 commits");
    assert_delivered_only(&null, "3 commits");
}

#[test]
fn range_with_an_unknown_revision_is_an_error() {
    let receiver = Receiver::ok();
    let (env, _) = repository(1);
    let config = settings(&env, vec![rb(&receiver)]);

    let output = run(&env, &["-c", &config, "--range", "nope..main"], b"");

    assert_eq!(code(&output), 2);
    assert_eq!(receiver.requests().len(), 0);
    assert_eq!(
        errors(&output),
        ["rbg-notify: error: --range: resolving \"nope\": revspec 'nope' not found"]
    );
}

#[test]
fn dry_run_prints_each_body_per_webhook_and_sends_nothing() {
    let receiver = Receiver::ok();
    let (env, all) = repository(3);
    let config = settings(
        &env,
        vec![rb(&receiver), webhook("mirror", &receiver.url(), "other")],
    );

    let output = run(
        &env,
        &["-c", &config, "--range", "..main", "--dry-run"],
        b"",
    );

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(receiver.requests().len(), 0);
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    assert_eq!(lines[0], lines[1]);
    assert!(printed.ends_with('\n'));
    let body: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(body["event"], "push");
    assert_eq!(body["repository"], "repo1");
    assert_eq!(ids(body["commits"].as_array().unwrap()), all);
    let bytes = lines[0].len();
    assert_eq!(
        errors(&output),
        [
            format!("rbg-notify: webhook \"rb\": dry run, would send 3 commits ({bytes} bytes)"),
            format!(
                "rbg-notify: webhook \"mirror\": dry run, would send 3 commits ({bytes} bytes)"
            ),
        ]
    );

    // What a dry run prints is byte for byte what is signed and sent.
    let sent = run(&env, &["-c", &config, "--range", "..main"], b"");
    assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, lines[0].as_bytes());
    assert!(requests[0].verify_signature(SECRET));
    assert!(requests[1].verify_signature("other"));
}

#[test]
fn dry_run_without_any_settings_file_still_prints_the_payload() {
    let (env, all) = repository(2);

    let output = run(&env, &["--range", "..main", "-n"], b"");

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let printed = stdout(&output);
    let body: Value = serde_json::from_str(printed.trim_end_matches('\n')).unwrap();
    assert_eq!(ids(body["commits"].as_array().unwrap()), all);
    assert_eq!(printed.lines().count(), 1);
    assert_eq!(
        errors(&output),
        [format!(
            "rbg-notify: dry run without a settings file: payload of 2 commits ({} bytes)",
            printed.len() - 1
        )]
    );
}

#[test]
fn dry_run_of_post_receive_input_prints_the_push() {
    let receiver = Receiver::ok();
    let (env, all) = repository(2);
    let config = settings(&env, vec![rb(&receiver)]);
    let input = format!("{ZERO_ID} {} refs/heads/main\n", all[1]);

    let output = run(
        &env,
        &["--post-receive", "--dry-run", "-c", &config],
        input.as_bytes(),
    );

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(receiver.requests().len(), 0);
    let printed = stdout(&output);
    let body: Value = serde_json::from_str(printed.trim_end_matches('\n')).unwrap();
    assert_eq!(ids(body["commits"].as_array().unwrap()), all);
    assert_eq!(body["commits"][0]["target"], json!({"branch": "main"}));
}

#[test]
fn malformed_stdin_lines_are_reported_and_good_ones_delivered() {
    let receiver = Receiver::ok();
    let (env, all) = repository(2);
    let config = settings(&env, vec![rb(&receiver)]);
    let sha256 = "0".repeat(64);
    let ghost = "1234567890123456789012345678901234567890";
    let input = format!(
        "garbage\n\
         {ZERO_ID} {tip} refs/heads/main\n\
         {ZERO_ID} {tip} main\n\
         \n\
         {sha256} {long} refs/heads/x\n\
         zzz {tip} refs/heads/y\n\
         {ZERO_ID} {ghost} refs/heads/ghost\n",
        tip = all[1],
        long = "a".repeat(64),
    );

    let output = env.run_binary(
        &["--post-receive"],
        input.as_bytes(),
        &[("RBG_NOTIFY_CONFIG", &config)],
        env.bare(),
    );

    assert_eq!(code(&output), 2);
    assert_eq!(ids(&commits(&receiver)), all);
    let lines = errors(&output);
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(
        lines[..4],
        [
            "rbg-notify: error: stdin line 1: expected \"<old-id> <new-id> <refname>\", \
             found 1 field in \"garbage\""
                .to_string(),
            "rbg-notify: error: stdin line 3: ref name \"main\" does not start with \"refs/\""
                .to_string(),
            format!(
                "rbg-notify: error: stdin line 5: \"{sha256}\" is a SHA-256 object id; \
                 SHA-256 repositories are not supported"
            ),
            "rbg-notify: error: stdin line 6: \"zzz\" is not a hexadecimal object id".to_string(),
        ]
    );
    let unknown = format!("rbg-notify: error: refs/heads/ghost: new id not found: {ghost}: ");
    assert!(lines[4].starts_with(&unknown), "{}", lines[4]);
    assert_delivered(&lines[5], "rb", "2 commits");
}

/// Runs `--range ..main` in `env` with `text` as the settings file (`URL`
/// standing for the receiver's) and checks the run stops with exit 2 and
/// the one line `message`, after the file's name.
fn assert_settings_error(env: &GitEnv, text: &str, message: &str) {
    let receiver = Receiver::ok();
    let path = env.root().join("rbg-notify.json");
    fs::write(&path, text.replace("URL", &receiver.url())).unwrap();

    let output = env.run_binary(
        &["--range", "..main"],
        b"",
        &[("RBG_NOTIFY_CONFIG", path_str(&path))],
        env.bare(),
    );

    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert_eq!(receiver.requests().len(), 0);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        errors(&output),
        [format!("rbg-notify: error: {}: {message}", path.display())]
    );
}

#[test]
fn invalid_settings_stop_the_run_naming_file_and_place() {
    let (env, _) = repository(1);
    let good =
        r#""id": "rb", "url": "URL", "secret": "s", "events": ["push"], "repositories": ["repo1"]"#;
    let cases = [
        (
            "{\"webhooks\": [\n  {\"id\": \"rb\",}\n]}".to_string(),
            "invalid JSON at line 2, column 15: trailing comma",
        ),
        (
            "{\"webhooks\": [".to_string(),
            "invalid JSON at line 1, column 14: EOF while parsing a list",
        ),
        (
            format!("{{\"webhooks\": [{{{good}, \"enabeld\": false}}]}}"),
            "webhook \"rb\": unknown field \"enabeld\" (known fields: id, url, secret, \
             enabled, events, repositories, repos, timeout, max_commits, branches, ca_file)",
        ),
        (
            format!("{{\"webhooks\": [{{{good}, \"timeout\": \"10\"}}]}}"),
            "webhook \"rb\": field \"timeout\": expected a number of seconds, found a string",
        ),
        (
            format!(
                "{{\"webhooks\": [{{{}}}]}}",
                good.replace("\"push\"", "\"pull\"")
            ),
            "webhook \"rb\": field \"events\": unknown event \"pull\" (expected \"push\" \
             or \"post-commit\")",
        ),
        (
            "{\"webhooks\": {}}".to_string(),
            "field \"webhooks\": expected an array, found an object",
        ),
    ];
    for (text, message) in cases {
        assert_settings_error(&env, &text, message);
    }
}

#[test]
fn missing_settings_file_named_by_the_environment_is_an_error() {
    let (env, _) = repository(1);
    let path = env.root().join("absent.json");

    let output = env.run_binary(
        &["--range", "..main"],
        b"",
        &[("RBG_NOTIFY_CONFIG", path_str(&path))],
        env.bare(),
    );

    assert_eq!(code(&output), 2);
    assert_eq!(
        errors(&output),
        [format!(
            "rbg-notify: error: {}: no such file or directory",
            path.display()
        )]
    );
}

#[test]
fn no_settings_anywhere_names_the_places_looked_at() {
    let (env, all) = repository(1);
    // The harness points the default settings file into the test's own
    // folder, so the machine's /etc/rbg-notify/config.json cannot count.
    let default = env.root().join("no-default-settings.json");
    let input = format!("{ZERO_ID} {} refs/heads/main\n", all[0]);

    let output = run(&env, &["--post-receive"], input.as_bytes());

    // The push waits in the spool inside the repository for a settings file.
    assert_eq!(code(&output), 2);
    assert_eq!(stdout(&output), "");
    let spool = spool_dir(env.bare());
    assert_eq!(
        errors(&output),
        [format!(
            "rbg-notify: error: push kept in {} and not sent: no configuration file found \
             (looked at --config, RBG_NOTIFY_CONFIG, rbgateway.config, {}); give --config \
             PATH, set RBG_NOTIFY_CONFIG, or set the repository's rbgateway.config; run \
             `rbg-notify --retry` once fixed",
            spool.display(),
            default.display()
        )]
    );
    let files = spooled_files(&spool);
    assert!(files.len() == 1 && files[0].ends_with(".push"), "{files:?}");
}

#[test]
fn exit_status_is_1_when_a_delivery_fails() {
    let receiver = Receiver::start(Reply::status(500));
    let (env, _) = repository(2);
    let config = settings(&env, vec![rb(&receiver)]);

    let output = run(&env, &["-c", &config, "--range", "..main"], b"");

    assert_eq!(code(&output), 1);
    let sent = delivery_ids(&receiver);
    assert_eq!(sent, vec![sent[0].clone(); 3]);
    let reason = "HTTP 500 Internal Server Error";
    assert_eq!(
        errors(&output),
        [
            trying_again("rb", reason),
            trying_again("rb", reason),
            kept("rb", "2 commits", reason, &spool_dir(env.bare())),
        ]
    );
}

#[test]
fn exit_status_2_outranks_a_failed_delivery() {
    let receiver = Receiver::start(Reply::status(500));
    let (env, all) = repository(1);
    let config = settings(&env, vec![rb(&receiver)]);
    let input = format!("{ZERO_ID} {} refs/heads/main\nbad\n", all[0]);

    let output = run(&env, &["--post-receive", "-c", &config], input.as_bytes());

    assert_eq!(code(&output), 2);
    assert_eq!(receiver.requests().len(), 3);
    let reason = "HTTP 500 Internal Server Error";
    assert_eq!(
        errors(&output),
        [
            "rbg-notify: error: stdin line 2: expected \"<old-id> <new-id> <refname>\", \
             found 1 field in \"bad\""
                .to_string(),
            trying_again("rb", reason),
            trying_again("rb", reason),
            kept("rb", "1 commit", reason, &spool_dir(env.bare())),
        ]
    );
}

#[test]
fn quiet_run_prints_nothing_when_all_is_delivered() {
    let receiver = Receiver::ok();
    let (env, _) = repository(1);
    let config = settings(&env, vec![rb(&receiver)]);

    let output = run(&env, &["-q", "-c", &config, "--range", "..main"], b"");

    assert_eq!(code(&output), 0);
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(stderr(&output), "");
    assert_eq!(stdout(&output), "");
}

#[test]
fn version_prints_name_and_version() {
    let env = GitEnv::new();

    let output = run(&env, &["--version"], b"");

    assert_eq!(code(&output), 0);
    assert_eq!(stdout(&output), "rbg-notify 0.1.0\n");
    assert_eq!(
        stdout(&output),
        format!("rbg-notify {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn help_lists_flags_and_exit_statuses() {
    let env = GitEnv::new();

    let output = run(&env, &["--help"], b"");

    assert_eq!(code(&output), 0);
    assert_eq!(stderr(&output), "");
    let help = stdout(&output);
    assert!(help.starts_with("Usage: rbg-notify "), "{help}");
    for flag in ["--config", "--range", "--ref", "--dry-run", "--version"] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
    assert!(help.contains("  1 a delivery failed\n"), "{help}");
    assert!(
        help.contains("  2 bad usage, configuration or input\n"),
        "{help}"
    );
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let env = GitEnv::new();
    let cases: [(&[&str], &str); 3] = [
        (&["--bogus"], "unrecognized argument: --bogus"),
        (
            &[],
            "nothing to do: install rbg-notify as a git post-receive or Mercurial \
             changegroup hook (a wrapper script gives --post-receive or --changegroup), or \
             give --range, --retry, --check or --ping (see --help)",
        ),
        (
            &["--post-receive", "--ref", "main"],
            "--ref only makes sense with --range",
        ),
    ];
    for (args, message) in cases {
        let output = run(&env, args, b"");
        assert_eq!(code(&output), 2, "{args:?}");
        assert_eq!(stdout(&output), "", "{args:?}");
        assert_eq!(
            errors(&output),
            [format!("rbg-notify: error: {message}")],
            "{args:?}"
        );
    }
}

#[test]
fn outside_a_repository_is_an_error() {
    let env = GitEnv::new();

    let output = env.run_binary(&["--post-receive"], b"", &[], env.root());

    assert_eq!(code(&output), 2);
    let lines = errors(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "rbg-notify: error: finding the git repository around the current folder: "
        ),
        "{lines:?}"
    );
}

/// Found by a first-time administrator: `--ref refs/tags/v1.0` was sent as
/// the branch name.
#[test]
fn ref_that_is_not_a_branch_is_refused() {
    let (env, _) = repository(2);
    for bad in ["refs/tags/v1.0", "bad ref"] {
        let output = run(&env, &["--range", "main~1..main", "--ref", bad, "-n"], b"");
        assert_eq!(code(&output), 2);
        assert_eq!(stdout(&output), "");
        assert_eq!(
            errors(&output),
            [format!(
                "rbg-notify: error: --ref \"{bad}\" is not a branch: give refs/heads/NAME or NAME"
            )]
        );
    }
}

/// Found by a first-time administrator: a dry run into a full disk exited 0.
#[test]
fn dry_run_that_cannot_write_its_output_fails() {
    let (env, _) = repository(1);
    let mut cmd = std::process::Command::new(crate::util::binary());
    crate::util::isolate(&mut cmd, env.root(), "");
    cmd.current_dir(env.bare())
        .args(["--range", "..main", "-n", "-q"]);
    cmd.stdin(std::process::Stdio::null());
    cmd.stdout(fs::File::create("/dev/full").expect("/dev/full"));
    // A dry run of one commit ends at once; stdout is set, so only stderr
    // is captured.
    let output = cmd.output().expect("run the binary");
    assert_eq!(code(&output), 2);
    assert_eq!(
        errors(&output),
        ["rbg-notify: error: writing to standard output: no space left on device"]
    );
}

/// Found by a first-time administrator: in a linked worktree the repository
/// was named after the worktree, not the repository whose hooks run.
#[test]
fn linked_worktree_is_named_after_its_repository() {
    let env = GitEnv::new();
    env.commit("one");
    let linked = env.root().join("linked-tree");
    env.git(&["worktree", "add", "--quiet", path_str(&linked)]);
    let output = env.run_binary(&["--range", "..HEAD", "-n", "-v"], b"", &[], &linked);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("rbg-notify: repository name: \"work\"\n"),
        "{}",
        stderr(&output)
    );
}
