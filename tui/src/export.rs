//! The files the binary writes (`load --json`, `load --stats-jsonl`, the dashboard's export), resolved
//! and checked by one helper, [`OutputFile`], before anything is written; JSON written so that a reader
//! never sees half of a file.
//!
//! The rules, the same for every writer:
//! - a symbolic link is followed: the bytes go to the link's final target and the link stays a link;
//! - the target must be a regular file or a new name in an existing directory; a directory, a fifo, a
//!   socket or a device node is refused, with an error saying what it is, and never replaced;
//! - two outputs that are the same file under different names (`x.json` and `./x.json`, a symbolic or a
//!   hard link) are recognised ([`OutputFile::same_file`]) so the command line can refuse them.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

/// How many symbolic links [`OutputFile::resolve`] follows before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// A path the binary will write, with its symbolic links resolved and its target checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// The path as the user gave it, for messages.
    given: PathBuf,
    /// Where the bytes go: `given` with every symbolic link followed. Either a regular file or a name
    /// that did not exist yet when resolved.
    target: PathBuf,
}

impl OutputFile {
    /// Follows `given` through any symbolic links and checks what it ends at: a regular file or a new
    /// name in an existing directory. Anything else is an error that names the path and what it is.
    pub fn resolve(given: &Path) -> Result<Self> {
        let refuse = |what: String| anyhow!("cannot write {}: {what}", given.display());
        let mut target = given.to_path_buf();
        for _ in 0..MAX_LINKS {
            let meta = match std::fs::symlink_metadata(&target) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if target.file_name().is_none() {
                        return Err(refuse("it does not name a file".into()));
                    }
                    let dir = parent_dir(&target);
                    if !dir.is_dir() {
                        return Err(refuse(format!(
                            "directory {} does not exist",
                            dir.display()
                        )));
                    }
                    return Ok(Self {
                        given: given.to_path_buf(),
                        target,
                    });
                }
                Err(e) => return Err(refuse(e.to_string())),
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                let link = std::fs::read_link(&target).map_err(|e| refuse(e.to_string()))?;
                // A relative link is relative to the directory holding it; `join` keeps an absolute one.
                target = parent_dir(&target).join(link);
                continue;
            }
            if kind.is_file() {
                return Ok(Self {
                    given: given.to_path_buf(),
                    target,
                });
            }
            let what = describe(&kind);
            let shown = if target == given {
                format!("it is {what}, not a regular file; refusing to replace it")
            } else {
                format!(
                    "it leads to {} which is {what}, not a regular file; refusing to replace it",
                    target.display()
                )
            };
            return Err(refuse(shown));
        }
        Err(refuse(format!(
            "more than {MAX_LINKS} symbolic links to follow"
        )))
    }

    /// Whether `self` and `other` write the same file: the same canonical path, or (for files that
    /// exist) the same device and inode, which also catches hard links.
    pub fn same_file(&self, other: &Self) -> bool {
        if canonical(&self.target) == canonical(&other.target) {
            return true;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if let (Ok(a), Ok(b)) = (
                std::fs::metadata(&self.target),
                std::fs::metadata(&other.target),
            ) {
                return (a.dev(), a.ino()) == (b.dev(), b.ino());
            }
        }
        false
    }

    /// Checks now, before a run, that a file can be created in the target's directory (the atomic
    /// write creates a temporary file there and renames it). The probe file is removed at once.
    pub fn check_writable(&self) -> Result<()> {
        let dir = parent_dir(&self.target);
        tempfile::Builder::new()
            .prefix(".switchyard-probe-")
            .tempfile_in(dir)
            .map_err(|e| {
                anyhow!(
                    "cannot write {}: directory {} is not writable ({})",
                    self.given.display(),
                    dir.display(),
                    io_cause(&e)
                )
            })?;
        Ok(())
    }

    /// Creates (or truncates) the target for appending lines, as `File::create` would, through links.
    pub fn create(&self) -> Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.target)
            .map_err(|e| anyhow!("cannot create {}: {}", self.given.display(), io_cause(&e)))
    }

    /// Writes `value` as pretty JSON to the target atomically: into a temporary file in the target's
    /// directory, flushed and synced, then renamed over the target. On any error the target is left as
    /// it was (absent or the previous version) and no temporary file remains. A symbolic link given
    /// by the user stays a link to the new file.
    pub fn write_json_atomic<T: Serialize>(&self, value: &T) -> Result<()> {
        let path = self.given.display();
        let dir = parent_dir(&self.target);
        let mut tmp = tempfile::Builder::new()
            .prefix(".switchyard-")
            .suffix(".json.tmp")
            .tempfile_in(dir)
            .map_err(|e| {
                anyhow!(
                    "cannot write {path}: directory {} is not writable ({})",
                    dir.display(),
                    io_cause(&e)
                )
            })?;
        // tempfile creates its files owner-only (0600); a snapshot is an ordinary report that CI jobs
        // and other users read, so give it the mode of the file it replaces, or the one a plain
        // `File::create` would have under a usual umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.target).map_or(0o644, |m| m.permissions().mode());
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting the permissions of {path}"))?;
        }
        {
            let mut w = BufWriter::new(tmp.as_file_mut());
            serde_json::to_writer_pretty(&mut w, value)
                .with_context(|| format!("writing {path}"))?;
            writeln!(w).with_context(|| format!("writing {path}"))?;
            w.flush().with_context(|| format!("writing {path}"))?;
        }
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("syncing {path}"))?;
        tmp.persist(&self.target)
            .map_err(|e| anyhow!("cannot write {path}: {}", io_cause(&e.error)))?;
        Ok(())
    }
}

/// Writes `value` as pretty JSON to `path` (see [`OutputFile::write_json_atomic`]); `-` writes to
/// stdout instead.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if path == Path::new("-") {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        serde_json::to_writer_pretty(&mut out, value).context("writing JSON to stdout")?;
        writeln!(out).context("writing JSON to stdout")?;
        return Ok(());
    }
    OutputFile::resolve(path)?.write_json_atomic(value)
}

/// Appends `value` as one line of JSON to `file` and flushes, so a run killed midway leaves whole lines.
pub fn append_json_line<T: Serialize>(file: &mut File, value: &T) -> Result<()> {
    let mut line = serde_json::to_vec(value).context("serialising a stats snapshot")?;
    line.push(b'\n');
    file.write_all(&line).context("appending a stats line")?;
    file.flush().context("flushing the stats lines")?;
    Ok(())
}

/// The directory a file at `path` is written into.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `path` with its directory canonicalised (the file itself may not exist yet).
fn canonical(path: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(parent_dir(path)).ok()?;
    Some(dir.join(path.file_name()?))
}

/// What a file that is not a regular file is, for error messages.
fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a fifo (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    "not a regular file"
}

/// An I/O error's own text without the path tempfile appends (`... at path "/x/.switchyard-…"`):
/// our messages name the user's path already, and a temporary name means nothing to them.
fn io_cause(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_whole_files_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["a"],
            1
        );
        assert_eq!(names_in(dir.path()), ["out.json"]);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_path() {
        let err = write_json_atomic(Path::new("/nonexistent-dir/x/out.json"), &1).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent-dir/x/out.json"),
            "{err:#}"
        );
        assert!(!Path::new("/nonexistent-dir/x/out.json").exists());
    }

    #[test]
    fn a_symbolic_link_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        write_json_atomic(&link, &7).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "7\n");
        // A dangling link creates its target.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("new.json", &dangling).unwrap();
        write_json_atomic(&dangling, &8).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new.json")).unwrap(),
            "8\n"
        );
        assert_eq!(
            names_in(dir.path()),
            ["dangling.json", "link.json", "new.json", "real.json"]
        );
    }

    #[test]
    fn what_is_not_a_regular_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let link_to_dir = dir.path().join("to-dir.json");
        std::os::unix::fs::symlink(dir.path(), &link_to_dir).unwrap();
        for (path, what) in [
            (fifo.as_path(), "a fifo"),
            (dir.path(), "a directory"),
            (link_to_dir.as_path(), "a directory"),
        ] {
            let err = format!("{:#}", write_json_atomic(path, &1).unwrap_err());
            assert!(
                err.contains(&path.display().to_string()) && err.contains(what),
                "{err}"
            );
            let err = format!("{:#}", OutputFile::resolve(path).unwrap_err());
            assert!(err.contains("not a regular file"), "{err}");
        }
        let fifo_kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo_kind));
        assert!(
            std::fs::symlink_metadata(&link_to_dir)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn the_same_file_is_recognised_under_other_names() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let resolve = |p: &Path| OutputFile::resolve(p).unwrap();
        // Not yet existing: the same canonical path.
        let dotted = dir.path().join(".").join("a.json");
        assert!(resolve(&a).same_file(&resolve(&dotted)));
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("a.json", &link).unwrap();
        assert!(resolve(&a).same_file(&resolve(&link)));
        std::fs::write(&a, "").unwrap();
        let hard = dir.path().join("hard.json");
        std::fs::hard_link(&a, &hard).unwrap();
        assert!(resolve(&a).same_file(&resolve(&hard)));
        assert!(!resolve(&a).same_file(&resolve(&dir.path().join("b.json"))));
    }
}
