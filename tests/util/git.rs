//! Git fixtures built with the real `git` CLI in a temporary directory: a
//! bare repository that receives pushes, and a clone to make commits in.
//!
//! Every command runs in the environment `util::command::isolate` sets up;
//! HTTP is left to `util::receiver`.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::command::{assert_success, binary, isolate, run_with_timeout, COMMAND_TIMEOUT};

/// The all-zero id git gives for a created or deleted ref.
pub const ZERO_ID: &str = "0000000000000000000000000000000000000000";

/// The first commit's date; each commit is a minute later, which together
/// with the fixed names makes commit ids the same on every run.
const EPOCH: u64 = 1_700_000_000;

/// A temporary directory holding a bare repository and a clone of it.
pub struct GitEnv {
    tmp: TempDir,
    name: String,
    bare: PathBuf,
    work: PathBuf,
    /// Commits (and merges, annotated tags) made so far; sets the next date.
    ticks: Cell<u64>,
}

impl GitEnv {
    /// Creates `<tmp>/srv/repo1.git` and its clone `<tmp>/work`.
    pub fn new() -> GitEnv {
        GitEnv::with_name("repo1")
    }

    /// Creates `<tmp>/srv/<name>.git` and its clone `<tmp>/work`.
    pub fn with_name(name: &str) -> GitEnv {
        let tmp = tempfile::Builder::new()
            .prefix("rbg-notify-test-")
            .tempdir()
            .expect("create a temporary directory");
        let root = tmp.path().to_path_buf();
        let env = GitEnv {
            bare: root.join("srv").join(format!("{name}.git")),
            work: root.join("work"),
            name: name.to_string(),
            tmp,
            ticks: Cell::new(0),
        };

        let bare = env.bare.to_str().expect("temporary paths are UTF-8");
        env.git_in(&root, &["init", "--quiet", "--bare", bare]);
        env.git_in(&root, &["clone", "--quiet", bare, "work"]);
        env
    }

    /// Returns the temporary directory that holds everything.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Returns the bare repository's path.
    pub fn bare(&self) -> &Path {
        &self.bare
    }

    /// Returns the clone's path.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// Returns the repository name, `repo1` unless chosen.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns a `git` command in `dir` with the isolated environment.
    pub fn git_command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new("git");
        let date = format!("{} +0000", EPOCH + 60 * self.ticks.get());
        isolate(&mut cmd, self.root(), &date);
        cmd.arg("-C").arg(dir);
        cmd.args(["-c", "init.defaultBranch=main"]);
        cmd
    }

    /// Runs git in `dir`, panicking on failure, and returns its stdout with
    /// trailing newlines removed.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let output = run_with_timeout(self.git_command(dir).args(args), b"", COMMAND_TIMEOUT);
        assert_success(&output);
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.trim_end_matches('\n').to_string()
    }

    /// Runs git in the clone, as `git_in` does.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.work, args)
    }

    /// Adds or changes a file, commits it with `message` and returns the
    /// new commit id.
    pub fn commit(&self, message: &str) -> String {
        self.change_file();
        self.git(&["commit", "--quiet", "-m", message]);
        self.head()
    }

    /// Commits with exactly these message bytes (no cleanup) and returns the
    /// new commit id; `encoding` makes git record an `encoding` header.
    pub fn commit_bytes(&self, message: &[u8], encoding: Option<&str>) -> String {
        let file = self.root().join("message.txt");
        fs::write(&file, message).expect("write the commit message");
        self.change_file();

        let file = file.to_str().expect("temporary paths are UTF-8");
        let setting = encoding.map(|encoding| format!("i18n.commitEncoding={encoding}"));
        let mut args = Vec::new();
        if let Some(setting) = &setting {
            args.extend(["-c", setting.as_str()]);
        }
        args.extend(["commit", "--quiet", "--cleanup=verbatim", "-F", file]);
        self.git(&args);
        self.head()
    }

    /// Writes a file no earlier commit touched, so branches never conflict,
    /// and stages it. Also moves the clock on by one commit.
    fn change_file(&self) {
        let tick = self.tick();
        let file = format!("file-{tick}.txt");
        fs::write(self.work.join(&file), format!("change {tick}\n")).expect("write a file");
        self.git(&["add", &file]);
    }

    fn tick(&self) -> u64 {
        self.ticks.set(self.ticks.get() + 1);
        self.ticks.get()
    }

    /// Returns the full id of the clone's `HEAD`.
    pub fn head(&self) -> String {
        self.rev_parse("HEAD")
    }

    /// Returns the full id `rev` names in the clone.
    pub fn rev_parse(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", rev])
    }

    /// Creates branch `name` at `HEAD` without switching to it.
    pub fn branch(&self, name: &str) {
        self.git(&["branch", name]);
    }

    /// Switches the clone to `rev`.
    pub fn checkout(&self, rev: &str) {
        self.git(&["checkout", "--quiet", rev]);
    }

    /// Merges `rev` into the current branch with a merge commit (`--no-ff`)
    /// and returns its id.
    pub fn merge(&self, rev: &str) -> String {
        self.tick();
        let message = format!("Merge {rev}");
        self.git(&["merge", "--quiet", "--no-ff", "-m", &message, rev]);
        self.head()
    }

    /// Creates lightweight tag `name` at `HEAD` and returns the commit id.
    pub fn tag(&self, name: &str) -> String {
        self.git(&["tag", name]);
        self.rev_parse(&format!("refs/tags/{name}"))
    }

    /// Creates annotated tag `name` at `HEAD` and returns the tag object id.
    pub fn annotated_tag(&self, name: &str, message: &str) -> String {
        self.tick();
        self.git(&["tag", "-a", "-m", message, name]);
        self.rev_parse(&format!("refs/tags/{name}"))
    }

    /// Moves the current branch and work tree to `rev`.
    pub fn reset_hard(&self, rev: &str) {
        self.git(&["reset", "--quiet", "--hard", rev]);
    }

    /// Runs `git push <args>` in the clone with extra `env` (which reaches the
    /// VCS hook) and returns its output, successful or not.
    pub fn push(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.git_command(&self.work);
        cmd.arg("push").args(args).envs(env.iter().copied());
        run_with_timeout(&mut cmd, b"", COMMAND_TIMEOUT)
    }

    /// Runs `git rev-list <args>` in the bare repository and returns the ids.
    pub fn rev_list(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["rev-list"];
        all.extend(args);
        let out = self.git_in(&self.bare, &all);
        out.lines().map(str::to_string).collect()
    }

    /// Sets `key` to `value` in the bare repository's config.
    pub fn set_config(&self, key: &str, value: &str) {
        self.git_in(&self.bare, &["config", key, value]);
    }

    /// Makes `program` the bare repository's post-receive hook, by symlink.
    pub fn install_hook(&self, program: &Path) {
        let hook = self.bare.join("hooks").join("post-receive");
        if hook.symlink_metadata().is_ok() {
            fs::remove_file(&hook).expect("remove the old hook");
        }
        std::os::unix::fs::symlink(program, &hook).expect("symlink the hook");
    }

    /// Writes `json` to `<tmp>/rbg-notify.json` and returns that path.
    pub fn write_config(&self, json: &serde_json::Value) -> PathBuf {
        let path = self.root().join("rbg-notify.json");
        let text = serde_json::to_string_pretty(json).expect("JSON values serialize");
        fs::write(&path, text).expect("write the config file");
        path
    }

    /// Runs the `rbg-notify` binary in `cwd` with `args`, `stdin` and extra
    /// `env`, in the isolated environment, and returns its output.
    pub fn run_binary(
        &self,
        args: &[&str],
        stdin: &[u8],
        env: &[(&str, &str)],
        cwd: &Path,
    ) -> Output {
        let mut cmd = Command::new(binary());
        let date = format!("{EPOCH} +0000");
        isolate(&mut cmd, self.root(), &date);
        cmd.args(args).envs(env.iter().copied()).current_dir(cwd);
        run_with_timeout(&mut cmd, stdin, COMMAND_TIMEOUT)
    }
}

impl Default for GitEnv {
    fn default() -> GitEnv {
        GitEnv::new()
    }
}

/// Returns a webhook entry: enabled, for `push`, on repository `repo1`.
pub fn webhook(id: &str, url: &str, secret: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "url": url,
        "secret": secret,
        "enabled": true,
        "events": ["push"],
        "repositories": ["repo1"],
    })
}
