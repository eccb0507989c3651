//! `scripts/test.sh`, the README's one test command, on a machine without tmux: it runs
//! `apt-get update` once, installs tmux non-interactively, then hands its arguments to
//! `cargo test --workspace --release`; without the `prometheus_client` Python module it installs
//! `prometheus-client` with pip. `apt-get`, `python3` and `cargo` are stubs on a PATH of our own
//! that log how they were called, so the test installs nothing and runs no nested build.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn write_script(path: &Path, body: &str) {
    // The stubs themselves may use the system tools; only the script under test sees the bare PATH.
    std::fs::write(
        path,
        format!("#!/bin/sh\nPATH=\"$PATH:/usr/bin:/bin\"\n{body}"),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A bin directory holding only the stubs and the few real tools the script itself uses.
fn stub_path(dir: &Path, log: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["dirname", "id", "sh"] {
        let real = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(real, bin.join(tool)).unwrap();
    }
    let log = log.display();
    // `apt-get install` makes `tmux` appear, as the real one would.
    write_script(
        &bin.join("apt-get"),
        &format!(
            "echo \"apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND\" >> {log}\n\
             case \"$*\" in *install*tmux*) printf '#!/bin/sh\\n' > {bin}/tmux; \
             chmod +x {bin}/tmux;; esac\n",
            bin = bin.display()
        ),
    );
    write_script(&bin.join("cargo"), &format!("echo \"cargo $*\" >> {log}\n"));
    // `python3 -c "import M"` succeeds once `python3 -m pip install` has run (or the marker was
    // made by `python_module_present`); pip installs are logged.
    write_script(
        &bin.join("python3"),
        &format!(
            "case \"$*\" in \
             *pip*install*) echo \"python3 $*\" >> {log}; touch {marker};; \
             *import*) test -e {marker};; esac\n",
            marker = bin.join("python-module-installed").display()
        ),
    );
    python_module_present(&bin);
    // The MQTT tests' tools (and the TLS tests' openssl) are there already; tmux (and, in one test,
    // a Python module) is what is missing.
    for present in ["mosquitto", "mosquitto_sub", "openssl"] {
        write_script(&bin.join(present), "");
    }
    bin
}

/// Makes the stub `python3` find the module, as if it had been installed before.
fn python_module_present(bin: &Path) {
    std::fs::write(bin.join("python-module-installed"), "").unwrap();
}

/// Bash by its full path: the child's PATH (the stubs) is what `Command` searches.
fn bash() -> &'static str {
    ["/usr/bin/bash", "/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("bash")
}

/// Runs `scripts/test.sh args` with nothing in the environment but a PATH of the stubs in `bin`;
/// returns the calls the stubs logged, in order.
fn run_with_only_stubs(bin: &Path, log: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(bash())
        .arg(repo_root().join("scripts/test.sh"))
        .args(args)
        .env_clear()
        .env("PATH", bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/test.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(log).unwrap();
    calls.lines().map(str::to_string).collect()
}

#[test]
fn installs_missing_tmux_after_one_apt_update_then_runs_the_workspace_tests() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let bin = stub_path(dir.path(), &log);
    let calls = run_with_only_stubs(&bin, &log, &["-p", "switchyard-tui", "some_filter"]);
    // Root runs apt-get directly; another user goes through sudo, which this PATH does not have.
    assert_eq!(
        calls.len(),
        3,
        "expected update, install, cargo test: {calls:#?}"
    );
    assert!(calls[0].starts_with("apt-get update"), "{calls:#?}");
    assert!(
        calls[1].starts_with("apt-get install -y") && calls[1].contains(" tmux"),
        "{calls:#?}"
    );
    assert!(
        calls[1].ends_with("DEBIAN_FRONTEND=noninteractive"),
        "{calls:#?}"
    );
    assert_eq!(
        calls[2],
        "cargo test --workspace --release -p switchyard-tui some_filter"
    );
}

#[test]
fn with_tmux_present_it_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let bin = stub_path(dir.path(), &log);
    write_script(&bin.join("tmux"), "");
    let out = Command::new(bash())
        .arg(repo_root().join("scripts/test.sh"))
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "cargo test --workspace --release\n"
    );
}

#[test]
fn installs_a_missing_python_module_with_pip_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let bin = stub_path(dir.path(), &log);
    write_script(&bin.join("tmux"), "");
    std::fs::remove_file(bin.join("python-module-installed")).unwrap();
    let calls = run_with_only_stubs(&bin, &log, &[]);
    assert_eq!(
        calls.len(),
        2,
        "expected pip install, cargo test: {calls:#?}"
    );
    assert!(
        calls[0].starts_with("python3 -m pip install --user")
            && calls[0].contains("prometheus-client"),
        "{calls:#?}"
    );
    assert_eq!(calls[1], "cargo test --workspace --release");
}

#[test]
fn ci_and_the_readme_use_this_script() {
    let root = repo_root();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains("bash scripts/test.sh"),
        ".ci/run must call scripts/test.sh"
    );
    assert!(
        !ci.contains("cargo test --workspace"),
        ".ci/run must not run the tests another way"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let opening: String = readme.lines().take(6).collect::<Vec<_>>().join("\n");
    assert!(opening.contains("cargo run --release"), "{opening}");
    assert!(opening.contains("bash scripts/test.sh"), "{opening}");
}
