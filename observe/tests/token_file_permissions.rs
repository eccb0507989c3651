//! A token file others can read or replace is refused, as ssh refuses such a key (issue 18, row 8).

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use switchyard_observe::{ServeOptions, load_or_create_token, read_token_file};

fn token_file(dir: &Path, mode: u32) -> std::path::PathBuf {
    let path = dir.join(format!("token-{mode:o}"));
    std::fs::write(&path, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn a_token_file_readable_or_writable_by_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o666, 0o640, 0o620, 0o604] {
        let path = token_file(dir.path(), mode);
        for error in [
            load_or_create_token(&path).unwrap_err().to_string(),
            read_token_file(&path).unwrap_err().to_string(),
            ServeOptions::default()
                .token_file(&path)
                .unwrap_err()
                .to_string(),
        ] {
            assert!(
                error.contains(&format!("chmod 600 {}", path.display())),
                "mode {mode:o}: {error}"
            );
        }
    }
    for mode in [0o600, 0o400] {
        let path = token_file(dir.path(), mode);
        assert_eq!(load_or_create_token(&path).unwrap().0, "s3cret-token");
        assert_eq!(read_token_file(&path).unwrap(), "s3cret-token");
    }
}

#[test]
fn a_symlinked_token_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = token_file(dir.path(), 0o600);
    for linked in [target.as_path(), Path::new("/etc/hostname")] {
        let link = dir.path().join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(linked, &link).unwrap();
        for error in [
            load_or_create_token(&link).unwrap_err().to_string(),
            read_token_file(&link).unwrap_err().to_string(),
        ] {
            assert!(error.contains("symbolic link"), "{error}");
        }
    }
}
