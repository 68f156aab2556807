//! `install.sh --repo` wiring repositories with the already-built binary
//! (`--binary`, so nothing is compiled here), `--uninstall` undoing it, and
//! the post-receive dispatcher it installs next to an existing hook (issue
//! #5).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

use crate::git_push::{assert_delivered, checked, rb, SECRET};
use crate::util::{
    assert_given_away, assert_success, binary, give_away, isolate, path_str, remote_lines,
    run_with_timeout, running_as_root, stderr, webhook, write_executable, GitEnv, HgEnv, Receiver,
    COMMAND_TIMEOUT, ZERO_ID,
};

/// Returns the checkout's install.sh.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh")
}

/// Runs `install.sh <args>` in `root` with the isolated environment.
fn install(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    isolate(&mut cmd, root, "");
    cmd.arg(script()).args(args).current_dir(root);
    run_with_timeout(&mut cmd, b"", COMMAND_TIMEOUT)
}

/// Wires `repo` to the built binary with extra `args`, failing on error.
fn wire(root: &Path, repo: &Path, args: &[&str]) -> Output {
    let bin = binary();
    let mut all = vec!["--repo", path_str(repo), "--binary", path_str(&bin)];
    all.extend(args);
    let output = install(root, &all);
    assert_success(&output);
    output
}

/// Undoes the wiring of `repo`, failing on error.
fn unwire(root: &Path, repo: &Path) -> Output {
    let output = install(root, &["--repo", path_str(repo), "--uninstall"]);
    assert_success(&output);
    output
}

/// Returns every file under `dir` with its bytes (a symlink as its target),
/// sorted, so two snapshots compare the whole tree.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).expect("read a folder") {
            let path = entry.expect("a folder entry").path();
            let meta = fs::symlink_metadata(&path).expect("stat an entry");
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).expect("read a link");
                all.push((path, target.into_os_string().into_encoded_bytes(), 0));
            } else if meta.is_dir() {
                all.push((path.clone(), Vec::new(), meta.permissions().mode()));
                stack.push(path);
            } else {
                let bytes = fs::read(&path).expect("read a file");
                all.push((path, bytes, meta.permissions().mode()));
            }
        }
    }
    all.sort();
    all
}

/// A hook that appends its stdin to `file` and exits with `status`.
fn recorder(file: &Path, status: u8) -> String {
    format!("#!/bin/sh\ncat >>'{}'\nexit {status}\n", path_str(file))
}

/// Returns a bare repository wired by install.sh, with a settings file for
/// `receiver` named by `--config`.
fn wired(receiver: &Receiver) -> GitEnv {
    let env = GitEnv::new();
    let config = env.write_config(&json!({ "webhooks": [rb(receiver)] }));
    wire(env.root(), env.bare(), &["--config", path_str(&config)]);
    env
}

#[test]
fn wires_a_fresh_bare_repository() {
    let receiver = Receiver::ok();
    let env = wired(&receiver);

    let hook = env.bare().join("hooks/post-receive");
    assert_eq!(fs::read_link(&hook).unwrap(), binary());
    let config = env.git_in(env.bare(), &["config", "rbgateway.config"]);
    assert_eq!(config, path_str(&env.root().join("rbg-notify.json")));

    // The ledger starts now, so even a first push whose hook never ran
    // (killed at once) is found by the next run.
    assert!(env.bare().join("rbg-notify/ledger.json").is_file());
    fs::rename(&hook, env.root().join("hook-aside")).unwrap();
    let first = env.commit("first");
    assert_success(&env.push(&["origin", "main"], &[]));
    fs::rename(env.root().join("hook-aside"), &hook).unwrap();

    let id = env.commit("second");
    let output = env.push(&["origin", "main"], &[]);
    assert_success(&output);
    let lines = remote_lines(&output);
    assert_delivered(&lines[0], "rb", "2 commits");
    let body = checked(&receiver.requests()[0], "repo1");
    assert_eq!(body["commits"][0]["id"], first);
    assert_eq!(body["commits"][1]["id"], id);
}

#[test]
fn keeps_an_existing_hook_and_gives_both_the_same_stdin() {
    let receiver = Receiver::ok();
    let env = GitEnv::new();
    let hooks = env.bare().join("hooks");
    let seen = env.root().join("seen-by-old-hook");
    write_executable(&hooks.join("post-receive"), &recorder(&seen, 0));
    let original = snapshot(&hooks);
    let config = env.write_config(&json!({ "webhooks": [rb(&receiver)] }));

    let output = wire(env.root(), env.bare(), &["--config", path_str(&config)]);
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    let entries = hooks.join("post-receive.d");
    assert_eq!(
        fs::read(entries.join("10-existing")).unwrap(),
        recorder(&seen, 0).as_bytes()
    );
    assert_eq!(
        fs::read_link(entries.join("50-rbg-notify")).unwrap(),
        binary()
    );
    // A third entry records its stdin too, so the two can be compared.
    let seen_too = env.root().join("seen-by-another-entry");
    write_executable(&entries.join("90-another"), &recorder(&seen_too, 0));

    let first = env.commit("on main");
    env.branch("topic");
    let output = env.push(&["origin", "main", "topic"], &[]);
    assert_success(&output);

    let expected =
        format!("{ZERO_ID} {first} refs/heads/main\n{ZERO_ID} {first} refs/heads/topic\n");
    assert_eq!(fs::read_to_string(&seen).unwrap(), expected);
    assert_eq!(fs::read(&seen_too).unwrap(), fs::read(&seen).unwrap());
    assert_delivered(&remote_lines(&output)[0], "rb", "1 commit");
    assert_eq!(receiver.requests().len(), 1);

    fs::remove_file(entries.join("90-another")).unwrap();
    unwire(env.root(), env.bare());
    assert_eq!(snapshot(&hooks), original);
}

#[test]
fn dispatcher_runs_every_entry_and_exits_with_the_first_failure() {
    let env = GitEnv::new();
    let hooks = env.bare().join("hooks");
    let entries = hooks.join("post-receive.d");
    fs::create_dir(&entries).unwrap();
    let dispatcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/post-receive");
    fs::copy(&dispatcher, hooks.join("post-receive")).unwrap();
    let logs: Vec<PathBuf> = (1..=3)
        .map(|n| env.root().join(format!("log{n}")))
        .collect();
    write_executable(&entries.join("10-a"), &recorder(&logs[0], 0));
    write_executable(&entries.join("20-b"), &recorder(&logs[1], 3));
    write_executable(&entries.join("30-c"), &recorder(&logs[2], 4));
    fs::write(entries.join("40-not-executable"), "#!/bin/sh\nexit 9\n").unwrap();

    // Bytes a shell variable would not keep: no last newline, a CR, a NUL.
    let input = b"a b refs/heads/x\r\n\0tail";
    let mut cmd = Command::new(hooks.join("post-receive"));
    isolate(&mut cmd, env.root(), "");
    let output = run_with_timeout(&mut cmd, input, COMMAND_TIMEOUT);

    assert_eq!(output.status.code(), Some(3));
    for log in &logs {
        assert_eq!(fs::read(log).unwrap(), input);
    }
}

#[test]
fn honours_core_hooks_path() {
    let receiver = Receiver::ok();
    let env = GitEnv::new();
    env.set_config("core.hooksPath", "custom-hooks");
    let config = env.write_config(&json!({ "webhooks": [rb(&receiver)] }));

    let output = wire(env.root(), env.bare(), &["--config", path_str(&config)]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("core.hooksPath is set"),
        "{output:?}"
    );
    let hook = env.bare().join("custom-hooks/post-receive");
    assert_eq!(fs::read_link(&hook).unwrap(), binary());
    assert!(!env.bare().join("hooks/post-receive").exists());

    env.commit("first");
    let output = env.push(&["origin", "main"], &[]);
    assert_delivered(&remote_lines(&output)[0], "rb", "1 commit");
}

#[test]
fn rerun_changes_nothing_and_uninstall_restores_every_byte() {
    let receiver = Receiver::ok();
    let env = GitEnv::new();
    let hooks = env.bare().join("hooks");
    write_executable(&hooks.join("post-receive"), "#!/bin/sh\nexit 0\n");
    let before = snapshot(env.bare());
    let config = env.write_config(&json!({ "webhooks": [rb(&receiver)] }));
    let args = ["--config", path_str(&config), "--repository", "Project"];

    wire(env.root(), env.bare(), &args);
    let once = snapshot(env.bare());
    assert_ne!(once, before);
    assert_eq!(
        env.git_in(env.bare(), &["config", "rbgateway.repository"]),
        "Project"
    );
    wire(env.root(), env.bare(), &args);
    assert_eq!(snapshot(env.bare()), once);

    unwire(env.root(), env.bare());
    assert_eq!(snapshot(env.bare()), before);
    let again = unwire(env.root(), env.bare());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to undo"));
    assert_eq!(snapshot(env.bare()), before);
}

#[test]
fn paths_with_spaces_work() {
    let receiver = Receiver::ok();
    let env = GitEnv::with_name("my project");
    let folder = env.root().join("bin folder");
    fs::create_dir(&folder).unwrap();
    let bin = folder.join("rbg-notify");
    std::os::unix::fs::symlink(binary(), &bin).unwrap();
    let hooks = env.bare().join("hooks");
    write_executable(&hooks.join("post-receive"), "#!/bin/sh\ncat >/dev/null\n");
    let mut hook = webhook("rb", &receiver.url(), SECRET);
    hook["repositories"] = json!(["my project"]);
    let config = env.root().join("settings folder/rb.json");
    fs::create_dir(config.parent().unwrap()).unwrap();
    fs::write(&config, json!({ "webhooks": [hook] }).to_string()).unwrap();

    let output = install(
        env.root(),
        &[
            "--repo",
            path_str(env.bare()),
            "--binary",
            path_str(&bin),
            "--config",
            path_str(&config),
        ],
    );
    assert_success(&output);
    env.commit("first");
    let output = env.push(&["origin", "main"], &[]);
    assert_delivered(&remote_lines(&output)[0], "rb", "1 commit");
    checked(&receiver.requests()[0], "my project");
}

#[test]
fn refuses_bad_arguments_clearly() {
    let env = GitEnv::new();
    let output = install(env.root(), &["--repo"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("install.sh: error: --repo needs a value\n"));
    let output = install(env.root(), &["--uninstall"]);
    assert_eq!(output.status.code(), Some(2));
    let output = install(env.root(), &["--repo", path_str(env.root())]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is neither a git nor a Mercurial repository"),
        "{}",
        stderr(&output)
    );
    let help = install(env.root(), &["--help"]);
    assert_success(&help);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--binary BIN"));
}

#[test]
fn wires_mercurial_keeping_every_other_byte_of_the_hgrc() {
    let receiver = Receiver::ok();
    let env = HgEnv::new();
    let hgrc = env.server().join(".hg/hgrc");
    // A comment, a [hooks] section of its own and no last newline.
    let original = "# served by hgweb\n[hooks]\nincoming.log = true\n\n[web]\nname = x";
    fs::write(&hgrc, original).unwrap();
    let mut hook = webhook("rb", &receiver.url(), SECRET);
    hook["repositories"] = json!(["Project"]);
    let config = env.write_config(&json!({ "webhooks": [hook] }));
    let args = ["--config", path_str(&config), "--repository", "Project"];

    wire(env.root(), env.server(), &args);
    let text = fs::read_to_string(&hgrc).unwrap();
    let expected = format!(
        "# served by hgweb\n[hooks]\nchangegroup.rbgateway = {}\nincoming.log = true\n\n\
         [web]\nname = x\n\n[rbgateway]\nconfig = {}\nrepository = Project\n",
        path_str(&binary()),
        path_str(&config)
    );
    assert_eq!(text, expected);
    wire(env.root(), env.server(), &args);
    assert_eq!(fs::read_to_string(&hgrc).unwrap(), expected);

    let node = env.commit("first");
    let output = env.push(&[], &[]);
    assert_success(&output);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{}", stderr(&output));
    assert_eq!(checked(&requests[0], "Project")["commits"][0]["id"], node);

    unwire(env.root(), env.server());
    assert_eq!(fs::read_to_string(&hgrc).unwrap(), original);
    assert!(!env.server().join(".hg/rbg-notify/install").exists());
}

/// Found when wiring as root, and by a trial: the folder install.sh writes
/// in, the dispatcher and its entries, and a Mercurial hgrc were left
/// root's, so hooks running as the repository's owner could not keep their
/// spool there, and Mercurial ignored the hook.
#[test]
fn wiring_as_root_leaves_the_owners_files_theirs() {
    let env = GitEnv::new();
    if !running_as_root() {
        return; // Only root can give a repository to another user.
    }
    let hooks = env.bare().join("hooks");
    write_executable(
        &hooks.join("post-receive"),
        "#!/bin/sh
exit 0
",
    );
    give_away(env.bare());
    let config = env.write_config(&json!({ "webhooks": [] }));

    let output = wire(env.root(), env.bare(), &["--config", path_str(&config)]);

    let folder = env.bare().join("rbg-notify");
    let entries = hooks.join("post-receive.d");
    assert_given_away(&[
        env.bare().join("config"),
        folder.clone(),
        folder.join("install"),
        folder.join("install/hooks"),
        hooks.join("post-receive"),
        entries.clone(),
        entries.join("50-rbg-notify"),
    ]);
    // Root runs nothing there for the owner: the first push starts the ledger.
    assert!(!folder.join("ledger.json").exists());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("the ledger starts with the first push"),
        "{said}"
    );

    // A repository just made with `hg init`: no hgrc yet.
    let hg = HgEnv::new();
    let _ = fs::remove_file(hg.server().join(".hg/hgrc"));
    give_away(hg.server());
    wire(hg.root(), hg.server(), &["--config", path_str(&config)]);
    assert_given_away(&[
        hg.server().join(".hg/hgrc"),
        hg.server().join(".hg/rbg-notify"),
    ]);
}
