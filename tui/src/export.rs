//! Writing JSON files so that a reader never sees half of one.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Writes `value` as pretty JSON to `path` atomically: into a temporary file in the same directory,
/// flushed and synced, then renamed over `path`. On any error `path` is left as it was (absent or the
/// previous version) and no temporary file remains. `-` writes to stdout instead.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if path == Path::new("-") {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        serde_json::to_writer_pretty(&mut out, value).context("writing JSON to stdout")?;
        writeln!(out).context("writing JSON to stdout")?;
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".switchyard-")
        .suffix(".json.tmp")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot write {}: directory {} is not writable",
                path.display(),
                dir.display()
            )
        })?;
    // tempfile creates its files owner-only (0600); a snapshot is an ordinary report that CI jobs and
    // other users read, so give it the mode a plain `File::create` would have under a usual umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting the permissions of {}", path.display()))?;
    }
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        serde_json::to_writer_pretty(&mut w, value)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(w).with_context(|| format!("writing {}", path.display()))?;
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Appends `value` as one line of JSON to `file` and flushes, so a run killed midway leaves whole lines.
pub fn append_json_line<T: Serialize>(file: &mut File, value: &T) -> Result<()> {
    let mut line = serde_json::to_vec(value).context("serialising a stats snapshot")?;
    line.push(b'\n');
    file.write_all(&line).context("appending a stats line")?;
    file.flush().context("flushing the stats lines")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
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
}
