//! Mercurial fixtures built with the real `hg` CLI in a temporary directory:
//! a server repository that receives pushes and a clone to commit in.
//!
//! Pushes go over `ssh://` through a stand-in for ssh that runs
//! `hg serve --stdio` locally, so the server side is a separate `hg` process
//! that reads only its own hgrc, and the pusher sees the changegroup hook's
//! output as `remote:` lines, as on a real server. Every command runs in the
//! environment `util::command::isolate` sets up, plus a test hgrc.

use std::cell::Cell;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::command::{assert_success, binary, isolate, run_with_timeout, COMMAND_TIMEOUT};

/// The user every changeset is committed as.
pub const HG_USER: &str = "A U Thor <author@example.com>";

/// The first changeset's date; each changeset is a minute later, which with
/// the fixed user makes node ids the same on every run.
const EPOCH: u64 = 1_700_000_000;

/// Stands in for ssh: hg runs `<ssh> [options] <host> <remote command>`
/// through the shell, and only the remote command matters here.
const FAKE_SSH: &str = "#!/bin/sh\nfor last; do :; done\nexec /bin/sh -c \"$last\"\n";

/// A temporary directory holding a server repository and a clone of it.
pub struct HgEnv {
    tmp: TempDir,
    server: PathBuf,
    work: PathBuf,
    hgrc: PathBuf,
    /// Changesets made so far; sets the next date.
    ticks: Cell<u64>,
}

impl HgEnv {
    /// Creates `<tmp>/srv/repo1` and its clone `<tmp>/work`.
    pub fn new() -> HgEnv {
        let tmp = tempfile::Builder::new()
            .prefix("rbg-notify-hg-test-")
            .tempdir()
            .expect("create a temporary directory");
        let root = tmp.path().to_path_buf();
        let env = HgEnv {
            server: root.join("srv").join("repo1"),
            work: root.join("work"),
            hgrc: root.join("hgrc"),
            tmp,
            ticks: Cell::new(0),
        };
        env.write_test_hgrc();

        fs::create_dir_all(root.join("srv")).expect("create srv");
        env.hg_in(&root, &["init", path(&env.server)]);
        env.hg_in(&root, &["clone", "--quiet", &env.server_url(), "work"]);
        env
    }

    /// Writes the hgrc every command reads (`HGRCPATH`) and the fake ssh.
    fn write_test_hgrc(&self) {
        let ssh = self.root().join("fake-ssh");
        fs::write(&ssh, FAKE_SSH).expect("write the fake ssh");
        fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).expect("chmod fake ssh");
        let text = format!("[ui]\nusername = {HG_USER}\nssh = {}\n", path(&ssh));
        fs::write(&self.hgrc, text).expect("write the test hgrc");
    }

    /// Returns the temporary directory that holds everything.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Returns the server repository's root.
    pub fn server(&self) -> &Path {
        &self.server
    }

    /// Returns the clone's root.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// Returns the server's `ssh://` URL, as the clone pushes to it.
    pub fn server_url(&self) -> String {
        format!("ssh://localhost/{}", path(&self.server))
    }

    /// Returns an `hg` command in `dir` with the isolated environment.
    pub fn hg_command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new("hg");
        isolate(&mut cmd, self.root(), "");
        cmd.env("HGRCPATH", &self.hgrc)
            .env("HGUSER", HG_USER)
            .current_dir(dir);
        cmd
    }

    /// Runs hg in `dir`, panicking on failure, and returns its stdout with
    /// trailing newlines removed.
    pub fn hg_in(&self, dir: &Path, args: &[&str]) -> String {
        let output = run_with_timeout(self.hg_command(dir).args(args), b"", COMMAND_TIMEOUT);
        assert_success(&output);
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.trim_end_matches('\n').to_string()
    }

    /// Runs hg in the clone, as `hg_in` does.
    pub fn hg(&self, args: &[&str]) -> String {
        self.hg_in(&self.work, args)
    }

    /// Adds a new file, commits it with `message` and returns the full node.
    pub fn commit(&self, message: &str) -> String {
        self.commit_with(message, &[])
    }

    /// Commits a new file with `message` and `env` (such as `HGENCODING`),
    /// and returns the full node.
    pub fn commit_with(&self, message: &str, env: &[(&str, &str)]) -> String {
        let tick = self.tick();
        let file = format!("file-{tick}.txt");
        fs::write(self.work.join(&file), format!("change {tick}\n")).expect("write a file");
        self.hg(&["add", "--quiet", &file]);
        let date = self.date(tick);
        let mut cmd = self.hg_command(&self.work);
        cmd.args(["commit", "--quiet", "-d", &date, "-m", message])
            .envs(env.iter().copied());
        assert_success(&run_with_timeout(&mut cmd, b"", COMMAND_TIMEOUT));
        self.node(".")
    }

    /// Tags the clone's parent changeset with `name` (a changeset of its
    /// own) and returns the node of the changeset tagged.
    pub fn tag(&self, name: &str) -> String {
        let tagged = self.node(".");
        let date = self.date(self.tick());
        self.hg(&["tag", "-d", &date, name]);
        tagged
    }

    fn tick(&self) -> u64 {
        self.ticks.set(self.ticks.get() + 1);
        self.ticks.get()
    }

    fn date(&self, tick: u64) -> String {
        format!("{} 0", EPOCH + 60 * tick)
    }

    /// Returns the full node `rev` names in the clone.
    pub fn node(&self, rev: &str) -> String {
        self.hg(&["log", "-r", rev, "-T", "{node}"])
    }

    /// Returns the full nodes of `revset` in the server, in the order
    /// `hg log` lists them, whatever a test put in the server's hgrc.
    pub fn server_nodes(&self, revset: &str) -> Vec<String> {
        let mut cmd = self.hg_command(&self.server);
        cmd.env("HGPLAIN", "1")
            .args(["log", "--hidden", "-r", revset, "-T", "{node}\\n"]);
        let output = run_with_timeout(&mut cmd, b"", COMMAND_TIMEOUT);
        assert_success(&output);
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.lines().map(str::to_string).collect()
    }

    /// Returns how many changesets the server holds.
    pub fn server_len(&self) -> usize {
        self.server_nodes("all()").len()
    }

    /// Appends `text` to the hgrc of the repository at `repo`.
    pub fn append_hgrc(&self, repo: &Path, text: &str) {
        let file = repo.join(".hg").join("hgrc");
        let mut hgrc = OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .expect("open the hgrc");
        hgrc.write_all(text.as_bytes()).expect("append to the hgrc");
    }

    /// Makes the built binary the server's changegroup hook.
    pub fn install_hook(&self) {
        let hook = format!("[hooks]\nchangegroup.rbgateway = {}\n", path(&binary()));
        self.append_hgrc(&self.server, &hook);
    }

    /// Names `settings` as the server's `[rbgateway] config`.
    pub fn set_settings(&self, settings: &Path) {
        let text = format!("[rbgateway]\nconfig = {}\n", path(settings));
        self.append_hgrc(&self.server, &text);
    }

    /// Writes `json` to `<tmp>/rbg-notify.json` and returns that path.
    pub fn write_config(&self, json: &serde_json::Value) -> PathBuf {
        let file = self.root().join("rbg-notify.json");
        let text = serde_json::to_string_pretty(json).expect("JSON values serialize");
        fs::write(&file, text).expect("write the config file");
        file
    }

    /// Runs `hg push <args>` in the clone, to the server over the fake ssh,
    /// with extra `env` (which reaches the server and its hook), and returns
    /// its output, successful or not.
    pub fn push(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.hg_command(&self.work);
        cmd.arg("push")
            .args(args)
            .arg(self.server_url())
            .envs(env.iter().copied());
        run_with_timeout(&mut cmd, b"", COMMAND_TIMEOUT)
    }

    /// Runs the `rbg-notify` binary in `cwd` with `args` and extra `env`, in
    /// the isolated environment, and returns its output.
    pub fn run_binary(&self, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
        let mut cmd = Command::new(binary());
        isolate(&mut cmd, self.root(), "");
        cmd.env("HGRCPATH", &self.hgrc)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(cwd);
        run_with_timeout(&mut cmd, b"", COMMAND_TIMEOUT)
    }
}

impl Default for HgEnv {
    fn default() -> HgEnv {
        HgEnv::new()
    }
}

/// Converts `path` to `&str` for an hg argument or hgrc line, panicking if
/// it is not UTF-8 (temporary directories always are).
fn path(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("path is not UTF-8: {}", path.display()))
}
