//! Which certificate authorities HTTPS deliveries trust.
//!
//! The HTTP client (minreq over rustls) builds its list of trusted roots
//! once per process, at the first https connection: the Mozilla roots built
//! into the binary, plus the system's store, which rustls-native-certs reads
//! from the file `SSL_CERT_FILE` names instead when that variable is set.
//! The client takes no roots of ours, so the settings' CA files are trusted
//! by pointing `SSL_CERT_FILE` at them before anything is sent: one file as
//! it is, several through one bundle kept in the repository's folder. The
//! list belongs to the process, so every CA file of the settings counts for
//! every webhook of the run. Reading and checking the settings is left to
//! `settings.rs`; when to do this, to `lib.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::settings::Settings;
use crate::spool;

/// Opens each certificate in a PEM file (RFC 7468).
pub const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// Names the variable rustls-native-certs reads its roots from, in place of
/// the system's store.
pub const CERT_FILE_VARIABLE: &str = "SSL_CERT_FILE";

/// Names the bundle of several CA files, inside the repository's folder.
pub const BUNDLE: &str = "rbg-notify/ca-bundle.pem";

/// Returns whether `bytes` hold at least one PEM certificate.
pub fn holds_certificate(bytes: &[u8]) -> bool {
    let marker = PEM_CERTIFICATE.as_bytes();
    bytes.windows(marker.len()).any(|w| w == marker)
}

/// Returns the file to trust for the CA files of `settings`: `None` when
/// they name none, the file itself when they name one, else the bundle of
/// them all in the repository's `folder`, written when its contents change.
pub fn cert_file(settings: &Settings, folder: &Path) -> Result<Option<PathBuf>, Error> {
    let files = settings.ca_files();
    match files[..] {
        [] => return Ok(None),
        [file] => return Ok(Some(file.to_path_buf())),
        _ => {}
    }

    let mut bundle = Vec::new();
    for file in files {
        let bytes = fs::read(file).map_err(|source| Error::ConfigRead {
            path: file.to_path_buf(),
            source,
        })?;
        bundle.extend_from_slice(&bytes);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    let path = folder.join(BUNDLE);
    // Rewritten only on a change, so runs of a repository do not keep
    // replacing a file that every one of them reads.
    if fs::read(&path).ok().as_deref() != Some(bundle.as_slice()) {
        spool::create_parent(&path)?;
        spool::write_atomic(&path, &bundle)?;
    }
    Ok(Some(path))
}

/// Makes the HTTP client trust the certificates in `file`, with the bundled
/// roots, in place of the system's store.
///
/// # Safety
///
/// Changes the process environment: call it before any other thread
/// starts, and before the first https connection, after which the client
/// no longer looks.
pub unsafe fn trust(file: &Path) {
    // The hook's working folder does not change during a run, but an
    // absolute path leaves no doubt about which file is meant.
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    std::env::set_var(CERT_FILE_VARIABLE, file);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, top: Option<&str>, hooks: &[Option<&str>]) -> Settings {
        let webhooks: Vec<_> = hooks
            .iter()
            .enumerate()
            .map(|(i, ca)| {
                let mut hook = serde_json::json!({"id": format!("w{i}"), "url": "https://rb/",
                    "secret": "s", "events": ["push"], "repositories": ["r"]});
                if let Some(ca) = ca {
                    hook["ca_file"] = (*ca).into();
                }
                hook
            })
            .collect();
        let mut root = serde_json::json!({ "webhooks": webhooks });
        if let Some(top) = top {
            root["ca_file"] = top.into();
        }
        let path = dir.join("c.json");
        Settings::parse(&path, root.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn trusts_one_file_as_it_is_and_several_through_one_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            "-----BEGIN CERTIFICATE-----\nA\n",
            "-----BEGIN CERTIFICATE-----\nB",
        );
        fs::write(dir.path().join("a.pem"), a).unwrap();
        fs::write(dir.path().join("b.pem"), b).unwrap();
        let folder = dir.path().join("repo");

        let none = settings(dir.path(), None, &[None]);
        assert_eq!(cert_file(&none, &folder).unwrap(), None);
        let one = settings(dir.path(), Some("a.pem"), &[Some("a.pem"), None]);
        assert_eq!(
            cert_file(&one, &folder).unwrap(),
            Some(dir.path().join("a.pem"))
        );
        assert!(!folder.exists());

        let two = settings(dir.path(), None, &[Some("b.pem"), Some("a.pem")]);
        let bundle = folder.join(BUNDLE);
        assert_eq!(cert_file(&two, &folder).unwrap(), Some(bundle.clone()));
        assert_eq!(fs::read_to_string(&bundle).unwrap(), format!("{b}\n{a}"));
    }

    #[test]
    fn finds_a_certificate_anywhere_in_the_file() {
        assert!(holds_certificate(
            b"# our CA\n-----BEGIN CERTIFICATE-----\n"
        ));
        assert!(!holds_certificate(b"-----BEGIN PRIVATE KEY-----\n"));
    }
}
