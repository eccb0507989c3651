//! [`AccessFiles`]: where the password and ACL files are, read again on a reload (SIGHUP in `switchyard
//! serve`) by [`crate::MqttServer::reload_access`] or a [`crate::ListenerHandle`].
//!
//! A reload reads both files first and puts them in force together only if both parse; otherwise
//! nothing changes, the refusal (file and line) is counted and returned. Connections stay open either
//! way; what a reload changes for them is in `crate::auth::permissions`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::access::Access;
use super::acl::{AclFile, AclFileError};
use super::password_file::{PasswordFile, PasswordFileError};
use super::permissions::rules;

/// The files a listener's rules come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFiles {
    /// The Mosquitto password file, if clients log in.
    pub password_file: Option<PathBuf>,
    /// The Mosquitto ACL file, if topics have permissions.
    pub acl_file: Option<PathBuf>,
}

/// A reload that was refused: a file did not read or parse. The old rules stay in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The password file.
    #[error("{path}: {error}")]
    Passwords {
        /// The file.
        path: String,
        /// What was wrong (with its line number).
        error: PasswordFileError,
    },
    /// The ACL file.
    #[error("{path}: {error}")]
    Acl {
        /// The file.
        path: String,
        /// What was wrong (with its line number).
        error: AclFileError,
    },
}

/// What a reload put in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    /// Users in the password file (0 without one).
    pub users: usize,
    /// Rule lines in the ACL file (0 without one).
    pub acl_lines: usize,
}

impl AccessFiles {
    /// Reads and parses both files; the error names the file and the line.
    pub fn load(&self) -> Result<(Option<PasswordFile>, Option<AclFile>), ReloadError> {
        let passwords = self
            .password_file
            .as_deref()
            .map(|path| {
                PasswordFile::load(path).map_err(|error| ReloadError::Passwords {
                    path: path.display().to_string(),
                    error,
                })
            })
            .transpose()?;
        let acl = self
            .acl_file
            .as_deref()
            .map(|path| {
                AclFile::load(path).map_err(|error| ReloadError::Acl {
                    path: path.display().to_string(),
                    error,
                })
            })
            .transpose()?;
        Ok((passwords, acl))
    }
}

/// Reads `files` and puts them in force, or counts the refusal and keeps the old rules.
pub(crate) fn reload(access: &Access, files: &AccessFiles) -> Result<Reloaded, ReloadError> {
    let counters = &access.counters;
    match files.load() {
        Ok((passwords, acl)) => {
            let reloaded = Reloaded {
                users: passwords.as_ref().map_or(0, PasswordFile::len),
                acl_lines: acl.as_ref().map_or(0, AclFile::lines),
            };
            access.replace(rules(passwords.map(Arc::new), acl.map(Arc::new)));
            counters.reloads.fetch_add(1, Ordering::Relaxed);
            Ok(reloaded)
        }
        Err(error) => {
            counters.reloads_refused.fetch_add(1, Ordering::Relaxed);
            *counters
                .last_refusal
                .write()
                .unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_does_not_parse_keeps_the_old_rules_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let acl_path = dir.path().join("acl");
        std::fs::write(&acl_path, "topic read a/#\n").unwrap();
        let files = AccessFiles {
            password_file: None,
            acl_file: Some(acl_path.clone()),
        };
        let access = Access::default();
        assert_eq!(reload(&access, &files).unwrap().acl_lines, 1);
        let version = access.version();
        std::fs::write(&acl_path, "topic read a/#\ntopic read b/#\ntopik x\n").unwrap();
        let err = reload(&access, &files).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("acl"), "{err}");
        assert_eq!(access.version(), version, "the old rules stay");
        assert_eq!(access.current().1.acl.as_ref().unwrap().lines(), 1);
        let (_, reloads) = access.stats();
        assert_eq!((reloads.reloads, reloads.refused), (1, 1));
        assert!(reloads.last_refusal.unwrap().contains("line 3"));
    }
}
