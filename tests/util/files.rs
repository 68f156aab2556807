//! Files the tests make or hand over: executable scripts, and repositories
//! given to another user, as a server's git user owns them while an
//! administrator works as root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The user and group id repositories are given to; no account needs it.
pub const OTHER_USER: u32 = 4321;

/// Writes `text` to `path` as an executable script.
pub fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).expect("write a script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod a script");
}

/// Returns whether the tests run as root, which alone can give a
/// repository to another user.
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self").expect("/proc/self").uid() == 0
}

/// Gives `path` and everything under it to `OTHER_USER`.
pub fn give_away(path: &Path) {
    let owner = format!("{OTHER_USER}:{OTHER_USER}");
    let chown = Command::new("chown")
        .args(["-R", owner.as_str()])
        .arg(path)
        .status();
    assert!(chown.expect("run chown").success());
}

/// Checks that every one of `paths` (links themselves, not their targets)
/// belongs to `OTHER_USER`.
pub fn assert_given_away(paths: &[PathBuf]) {
    for path in paths {
        let meta = fs::symlink_metadata(path).expect("a file to check");
        let owner = (meta.uid(), meta.gid());
        assert_eq!(owner, (OTHER_USER, OTHER_USER), "{}", path.display());
    }
}
