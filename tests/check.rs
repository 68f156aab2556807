//! `--check` and `--ping` run in a bare repository, and rb-gateway's own
//! `config.json` plus `webhooks.json` used as the settings file (issue #5).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::git_push::{assert_delivered, checked, SECRET};
use crate::util::{
    assert_success, binary, give_away, path_str, remote_lines, running_as_root, stderr, stdout,
    webhook, GitEnv, Receiver, Reply,
};

/// A secret as long as Review Board's hooks UUIDs, so no warning is given.
const LONG_SECRET: &str = "8d3d6c70-2a8f-4f5e-9b7b-3f1f6d9f2c11";

/// Runs the binary in the bare repository with `args`.
fn run(env: &GitEnv, args: &[&str]) -> Output {
    env.run_binary(args, b"", &[], env.bare())
}

/// Returns the exit code, failing the test if a signal ended the run.
fn code(output: &Output) -> i32 {
    output.status.code().expect("the binary exits normally")
}

/// Returns the bare repository's path as the binary prints it.
fn bare(env: &GitEnv) -> PathBuf {
    fs::canonicalize(env.bare()).expect("the bare repository exists")
}

/// Writes `json` to `path` with `mode` and returns the path as text.
fn write(path: &Path, json: &Value, mode: u32) -> String {
    fs::write(path, json.to_string()).expect("write a settings file");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    path_str(path).to_string()
}

/// Writes rb-gateway's pair, `config.json` naming the bare repository
/// `Project` and `hooks/webhooks.json` with `webhooks`; returns the config.
fn gateway(env: &GitEnv, webhooks: Value) -> PathBuf {
    let dir = env.root().join("rb-gateway");
    fs::create_dir_all(dir.join("hooks")).expect("create rb-gateway's folders");
    let config = json!({
        "htpasswdPath": "htpasswd",
        "port": 8888,
        "tokenStorePath": "tokens.dat",
        "webhookStorePath": "hooks/webhooks.json",
        "repositories": [
            {"name": "Other", "path": "/srv/other.git", "scm": "git"},
            {"name": "Project", "path": path_str(env.bare()), "scm": "git"},
        ],
    });
    write(&dir.join("hooks/webhooks.json"), &webhooks, 0o600);
    write(&dir.join("config.json"), &config, 0o600);
    dir.join("config.json")
}

/// Returns an rb-gateway webhook entry (`repos`, not `repositories`).
fn gateway_webhook(receiver: &Receiver, repos: &[&str]) -> Value {
    json!({
        "id": "rb", "url": receiver.url(), "secret": SECRET, "enabled": true,
        "events": ["push"], "repos": repos,
    })
}

#[test]
fn rb_gateway_config_names_the_repository_by_its_path() {
    let receiver = Receiver::ok();
    let env = GitEnv::new();
    env.install_hook(&binary());
    let config = gateway(&env, json!([gateway_webhook(&receiver, &["Project"])]));
    env.set_config("rbgateway.config", path_str(&config));

    let id = env.commit("first");
    let output = env.push(&["origin", "main"], &[]);
    assert_success(&output);
    assert_delivered(&remote_lines(&output)[0], "rb", "1 commit");
    let body = checked(&receiver.requests()[0], "Project");
    assert_eq!(body["commits"][0]["id"], id);

    // The repository's own setting still wins over rb-gateway's name.
    env.set_config("rbgateway.repository", "Renamed");
    let check = run(&env, &["--check"]);
    assert_eq!(code(&check), 1, "{}", stdout(&check));
    assert!(stdout(&check).contains(
        "repository name: \"Renamed\" (from git config rbgateway.repository)\n\
         note: no entry of the repositories list"
    ));
}

#[test]
fn check_explains_the_name_and_every_webhook() {
    let receiver = Receiver::ok();
    let env = GitEnv::new();
    let config = gateway(
        &env,
        json!([
            gateway_webhook(&receiver, &["Project"]),
            {"id": "off", "url": receiver.url(), "secret": LONG_SECRET, "enabled": false,
             "events": ["push"], "repos": ["Project"]},
            {"id": "elsewhere", "url": receiver.url(), "secret": LONG_SECRET,
             "events": ["push"], "repos": ["Other", "Third"]},
        ]),
    );
    let webhooks = config.parent().unwrap().join("hooks/webhooks.json");
    fs::set_permissions(&webhooks, fs::Permissions::from_mode(0o644)).unwrap();

    let output = run(&env, &["--check", "--config", path_str(&config)]);

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let expected = format!(
        "repository: {bare} (git)\n\
         settings file: {config} (from --config)\n\
         webhooks file: {webhooks} (from the settings file's webhookStorePath)\n\
         repository name: \"Project\" (from the repositories entry of {config} whose path is \
         {path})\n\
         webhook \"rb\": matches\n\
         webhook \"off\": does not match: it is disabled (\"enabled\": false)\n\
         webhook \"elsewhere\": does not match: repository \"Project\" is not in its \
         repositories (\"Other\", \"Third\")\n\
         warning: {webhooks} is readable by group or others, and it holds webhook secrets; \
         `chmod 600` it (it must stay readable by the user pushes run as)\n\
         warning: webhook \"rb\": its secret is only 6 bytes, easy to guess; use at least 20 \
         (Review Board's is the repository's hooks UUID)\n\
         webhooks that hear of pushes to \"Project\": 1 of 3\n",
        bare = bare(&env).display(),
        config = config.display(),
        webhooks = webhooks.display(),
        path = env.bare().display(),
    );
    assert_eq!(stdout(&output), expected);
}

#[test]
fn check_exits_1_when_no_webhook_matches_and_2_on_a_bad_file() {
    let receiver = Receiver::ok();
    let env = GitEnv::new();
    let mut hook = webhook("rb", &receiver.url(), LONG_SECRET);
    hook["repositories"] = json!(["project"]);
    let settings = env.root().join("rbg.json");
    write(&settings, &json!({ "webhooks": [hook] }), 0o600);
    env.set_config("rbgateway.config", path_str(&settings));

    let output = run(&env, &["--check"]);
    assert_eq!(code(&output), 1);
    let expected = format!(
        "repository: {bare} (git)\n\
         settings file: {settings} (from rbgateway.config)\n\
         repository name: \"repo1\" (from the name of the folder {bare})\n\
         webhook \"rb\": does not match: repository \"repo1\" is not in its repositories \
         (\"project\")\n\
         no webhook hears of pushes to \"repo1\" (1 in the settings file); add \"repo1\" to a \
         webhook's repositories, or set the repository name (--repository, \
         rbgateway.repository)\n",
        bare = bare(&env).display(),
        settings = settings.display(),
    );
    assert_eq!(stdout(&output), expected);

    let output = run(&env, &["--check", "--repository", "project"]);
    assert_eq!(code(&output), 0);
    assert!(stdout(&output).contains("repository name: \"project\" (from --repository)\n"));

    fs::write(
        &settings,
        "{\"webhooks\": [{\"id\": \"rb\", \"evnets\": []}]}",
    )
    .unwrap();
    let output = run(&env, &["--check"]);
    assert_eq!(code(&output), 2);
    assert_eq!(
        stderr(&output),
        format!(
            "rbg-notify: error: {}: webhook \"rb\": unknown field \"evnets\" (known fields: id, \
             url, secret, enabled, events, repositories, repos, timeout, max_commits, branches, \
             ca_file)\n",
            settings.display()
        )
    );
}

#[test]
fn ping_signs_a_ping_event_for_each_matching_webhook() {
    let good = Receiver::ok();
    let bad = Receiver::start(Reply::with_body(400, "Bad signature.\n"));
    let env = GitEnv::new();
    let config = env.write_config(&json!({ "webhooks": [
        webhook("good", &good.url(), SECRET),
        webhook("bad", &bad.url(), SECRET),
        {"id": "off", "url": good.url(), "secret": SECRET, "enabled": false,
         "events": ["push"], "repositories": ["repo1"]},
    ]}));
    let config = path_str(&config);

    let output = run(&env, &["--ping", "--config", config]);

    assert_eq!(code(&output), 1);
    let text = stderr(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("rbg-notify: webhook \"good\": ping answered (HTTP 200, "),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "rbg-notify: error: webhook \"bad\": ping failed: HTTP 400 Bad Request: Bad signature."
    );
    let requests = good.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("X-RBG-Event"), Some("ping"));
    assert!(requests[0].verify_signature(SECRET));
    assert_eq!(
        requests[0].json(),
        json!({"event": "ping", "repository": "repo1"})
    );

    let output = run(&env, &["--ping", "--config", config, "--webhook", "good"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(good.requests().len(), 2);

    let output = run(&env, &["--ping", "--config", config, "--webhook", "nope"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("--webhook: no webhook \"nope\" in "));
}

/// Found when an administrator ran `--check` as root in a repository the
/// git user owns: libgit2's refusal did not say what to do.
#[test]
fn a_repository_another_user_owns_says_to_run_as_its_owner() {
    if !running_as_root() {
        return; // Only root can give a repository to another user.
    }
    let env = GitEnv::new();
    give_away(env.bare());

    let output = env.run_binary(&["--check"], b"", &[], env.bare());

    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("is not owned by current user; run rbg-notify as the user that owns it"),
        "{said}"
    );
}
