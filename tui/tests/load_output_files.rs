//! Where `switchyard load` writes: `--json` and `--stats-jsonl` at a symbolic link write through to its
//! target and leave the link; a path that exists and is not a regular file (a fifo, a device node, a
//! directory) is refused with exit 2 before the run and left as it was; the same file given to both
//! options under two names is refused with exit 2.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;

fn load(args: &[&std::ffi::OsStr]) -> Output {
    Command::cargo_bin("switchyard")
        .unwrap()
        .args(["load", "--no-progress", "--messages", "100"])
        .args(args)
        // Before the fix a fifo given to --stats-jsonl blocked the open forever.
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
}

fn refused(out: &Output, expect: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    assert!(out.stdout.is_empty(), "the run started: {err}");
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .unwrap()
        .file_type()
        .is_symlink()
}

#[test]
fn json_and_jsonl_at_symbolic_links_write_to_the_targets_and_keep_the_links() {
    let dir = tempfile::tempdir().unwrap();
    let (json_link, jsonl_link) = (dir.path().join("run.json"), dir.path().join("run.jsonl"));
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::write(dir.path().join("real/run.json"), "old").unwrap();
    std::os::unix::fs::symlink("real/run.json", &json_link).unwrap();
    std::os::unix::fs::symlink("real/run.jsonl", &jsonl_link).unwrap(); // dangling: created
    let out = load(&[
        "--json".as_ref(),
        json_link.as_os_str(),
        "--stats-jsonl".as_ref(),
        jsonl_link.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_symlink(&json_link) && is_symlink(&jsonl_link));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("real/run.json")).unwrap())
            .unwrap();
    assert_eq!(v["load"]["result"]["published"], 100);
    assert!(dir.path().join("real/run.jsonl").is_file());
}

#[test]
fn a_fifo_is_refused_before_the_run_and_left_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for option in ["--json", "--stats-jsonl"] {
        let out = load(&[option.as_ref(), fifo.as_os_str()]);
        refused(&out, &[option, "pipe", "a fifo", "not a regular file"]);
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }
}

#[test]
fn a_device_node_is_refused_and_left_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let null = dir.path().join("null");
    // Our own copy of /dev/null (char 1:3), so a regression cannot replace the machine's.
    let made = std::process::Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(
        made.success(),
        "mknod needs root, which the test machine has"
    );
    // Through a symbolic link as well: the link's target is what counts.
    let link = dir.path().join("out.json");
    std::os::unix::fs::symlink(&null, &link).unwrap();
    for path in [&null, &link] {
        let out = load(&["--json".as_ref(), path.as_os_str()]);
        refused(
            &out,
            &["--json", "a character device", "refusing to replace it"],
        );
        assert!(
            std::fs::metadata(&null)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    assert!(is_symlink(&link));
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = load(&["--json".as_ref(), dir.path().as_os_str()]);
    refused(&out, &["--json", "a directory"]);
}

#[test]
fn one_file_under_two_names_is_refused_for_json_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.json");
    let dotted = dir.path().join(".").join("x.json");
    let sym = dir.path().join("sym.json");
    std::os::unix::fs::symlink("x.json", &sym).unwrap();
    for other in [&x, &dotted, &sym] {
        let out = load(&[
            "--json".as_ref(),
            x.as_os_str(),
            "--stats-jsonl".as_ref(),
            other.as_os_str(),
        ]);
        refused(&out, &["--json and --stats-jsonl name the same file"]);
    }
    // A hard link is the same file too (device and inode).
    std::fs::write(&x, "").unwrap();
    let hard = dir.path().join("hard.json");
    std::fs::hard_link(&x, &hard).unwrap();
    let out = load(&[
        "--json".as_ref(),
        x.as_os_str(),
        "--stats-jsonl".as_ref(),
        hard.as_os_str(),
    ]);
    refused(&out, &["the same file"]);
    assert_eq!(
        std::fs::read_to_string(&x).unwrap(),
        "",
        "nothing was written"
    );
}

#[test]
fn a_relative_name_and_a_dotted_one_are_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("switchyard")
        .unwrap()
        .current_dir(dir.path())
        .args(["load", "--no-progress", "--messages", "10"])
        .args(["--json", "x.json", "--stats-jsonl", "./x.json"])
        .output()
        .unwrap();
    refused(&out, &["the same file"]);
    assert!(!dir.path().join("x.json").exists());
}
