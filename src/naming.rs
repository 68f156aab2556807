//! The repository name a run sends, and why it is that name.
//!
//! The name is the first of: `--repository`; the repository's own setting
//! (git config `rbgateway.repository`, the hgrc's `[rbgateway] repository`);
//! the `name` of the rb-gateway `repositories` entry whose `path` is this
//! repository, when the settings file is rb-gateway's config; the folder's
//! name. Reading the settings and the repository is left to `settings.rs`,
//! `git.rs` and `hg.rs`; `--check` prints the reason given here.

use std::fmt;
use std::path::PathBuf;

use crate::config::Config;
use crate::error::Error;
use crate::repo::Repo;
use crate::settings::Settings;
use crate::{git, hg};

/// Holds a repository name and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// Gives the name.
    pub name: String,
    /// Tells where it came from.
    pub source: NameSource,
}

/// Tells where a repository name came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameSource {
    /// Came from `--repository`.
    Flag,
    /// Came from the repository's own setting, described as written.
    Setting(&'static str),
    /// Came from an entry of rb-gateway's `repositories` list.
    Gateway {
        /// Names the settings file.
        settings: PathBuf,
        /// Gives the entry's `path`.
        path: PathBuf,
    },
    /// Came from the folder's name.
    Folder(PathBuf),
}

impl fmt::Display for NameSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameSource::Flag => f.write_str("from --repository"),
            NameSource::Setting(key) => write!(f, "from {key}"),
            NameSource::Gateway { settings, path } => write!(
                f,
                "from the repositories entry of {} whose path is {}",
                settings.display(),
                path.display()
            ),
            NameSource::Folder(folder) => {
                write!(f, "from the name of the folder {}", folder.display())
            }
        }
    }
}

/// Names the repository, with the reason, in the order of precedence the
/// module describes.
pub fn resolve(repo: &Repo, config: &Config, settings: Option<&Settings>) -> Result<Named, Error> {
    if let Some(named) = explicit(repo, config)? {
        return Ok(named);
    }
    let folders = folders(repo);
    if let Some(entry) = settings.and_then(|s| s.gateway_repository(&folders)) {
        let settings = settings.map(|s| s.path.clone()).unwrap_or_default();
        return Ok(Named {
            name: entry.name.clone(),
            source: NameSource::Gateway {
                settings,
                path: entry.path.clone(),
            },
        });
    }
    let name = match repo {
        Repo::Git(repo) => git::folder_name(repo)?,
        Repo::Hg(repo, _) => hg::folder_name(repo)?,
    };
    let folder = folders.into_iter().next().unwrap_or_default();
    Ok(Named {
        name,
        source: NameSource::Folder(folder),
    })
}

/// Returns the name `--repository` or the repository's setting gives.
fn explicit(repo: &Repo, config: &Config) -> Result<Option<Named>, Error> {
    if let Some(name) = &config.repository {
        return Ok(Some(Named {
            name: name.clone(),
            source: NameSource::Flag,
        }));
    }
    let setting = match repo {
        Repo::Git(repo) => git::name_setting(repo)?.map(|n| (n, GIT_SETTING)),
        Repo::Hg(_, settings) => settings.repository.clone().map(|n| (n, HG_SETTING)),
    };
    Ok(setting.map(|(name, key)| Named {
        name,
        source: NameSource::Setting(key),
    }))
}

/// Describes the git setting that names the repository.
const GIT_SETTING: &str = concat!("git config ", "rbgateway.repository");

/// Describes the hgrc setting that names the repository.
const HG_SETTING: &str = "[rbgateway] repository in the hgrc";

/// Returns the folders an rb-gateway `path` may give for this repository,
/// the one that names it first: the work tree, or the bare repository, and
/// the git folder itself; Mercurial's root.
pub fn folders(repo: &Repo) -> Vec<PathBuf> {
    let canonical = |p: PathBuf| p.canonicalize().unwrap_or(p);
    match repo {
        Repo::Git(repo) => {
            let mut folders = vec![canonical(git::home(repo))];
            let git_dir = canonical(repo.path().to_path_buf());
            if !folders.contains(&git_dir) {
                folders.push(git_dir);
            }
            folders
        }
        Repo::Hg(repo, _) => vec![canonical(repo.root().to_path_buf())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_setting_is_spelled_as_the_key() {
        assert_eq!(
            GIT_SETTING,
            format!("git config {}", crate::wire::GIT_KEY_REPOSITORY)
        );
    }

    #[test]
    fn explains_each_source() {
        let gateway = NameSource::Gateway {
            settings: "/etc/rb-gateway/config.json".into(),
            path: "/srv/p.git".into(),
        };
        assert_eq!(
            gateway.to_string(),
            "from the repositories entry of /etc/rb-gateway/config.json whose path is /srv/p.git"
        );
        assert_eq!(NameSource::Flag.to_string(), "from --repository");
        assert_eq!(
            NameSource::Folder("/srv/p.git".into()).to_string(),
            "from the name of the folder /srv/p.git"
        );
    }
}
