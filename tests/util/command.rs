//! Running child processes for tests: an isolated environment, a timeout
//! guard, and readers for what git and the binary print.
//!
//! Which commands to run, and in which repository, is left to `util::git`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any child may run before the guard kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables kept from the caller's environment; everything else is cleared
/// so a developer's git config, `GIT_DIR` (tests run from a git hook) or
/// `RBG_NOTIFY_*` settings cannot leak into a test.
const PASS_THROUGH: &[&str] = &[
    "PATH",
    "TMPDIR",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    // Coverage builds write their profiles here.
    "LLVM_PROFILE_FILE",
];

/// Returns the path of the `rbg-notify` binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rbg-notify"))
}

/// Clears `cmd`'s environment and sets the fixed one every test runs in,
/// with `home` as `HOME` and `date` as the author and committer date.
pub fn isolate(cmd: &mut Command, home: &Path, date: &str) {
    cmd.env_clear();
    for name in PASS_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    let ceiling = home.parent().unwrap_or(home);
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Stops git from finding a repository above the temporary directory.
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ADVICE", "0")
        .env("GIT_AUTHOR_NAME", "A U Thor")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_NAME", "C O Mitter")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_COMMITTER_DATE", date)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        // The machine's own /etc/rbg-notify/config.json must not count.
        .env(
            "RBG_NOTIFY_DEFAULT_CONFIG",
            home.join("no-default-settings.json"),
        );
}

/// Runs `cmd` with `stdin` as its input and returns its output, panicking
/// if it runs longer than `timeout`.
pub fn run_with_timeout(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {cmd:?}: {err}"));

    // Written and read on threads so a full pipe cannot deadlock the child
    // against us. A child that exits without reading makes the write fail,
    // which is fine.
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));

    let status = wait(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        // The readers are left behind: a grandchild (a hook under `git
        // push`) may still hold the pipes open.
        panic!("{cmd:?} still running after {timeout:?}; killed it")
    });
    let _ = writer.join();
    Output {
        status,
        stdout: stdout.join().expect("stdout reader does not panic"),
        stderr: stderr.join().expect("stderr reader does not panic"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Polls `child` until it exits or `timeout` passes. The poll interval
/// grows, so quick commands return quickly without spinning on slow ones.
fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("child can be waited for") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Panics with the command's stdout and stderr unless it exited with 0.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "command failed with {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// Returns stdout as text, lossily decoded.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Returns stderr as text, lossily decoded.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Returns what the VCS hook printed during a `git push`: its `remote: `
/// lines from stderr, without that prefix.
pub fn remote_lines(output: &Output) -> Vec<String> {
    // Off a terminal, git pads each sideband line with 8 spaces where it
    // would otherwise send a clear-to-end-of-line code (git's sideband.c,
    // DUMB_SUFFIX), so trailing spaces are git's, not the hook's.
    stderr(output)
        .lines()
        .filter_map(|line| line.strip_prefix("remote:"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end_matches(' '))
        .map(str::to_string)
        .collect()
}

/// Converts `path` to `&str` for an environment pair, panicking if it is
/// not UTF-8 (temporary directories always are).
pub fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("path is not UTF-8: {}", path.display()))
}
