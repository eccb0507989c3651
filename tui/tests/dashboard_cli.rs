//! The dashboard's command line, without a terminal.

use assert_cmd::Command;

#[test]
fn without_a_terminal_the_dashboard_refuses_and_points_at_switchyard_load() {
    for args in [&[][..], &["dashboard"][..], &["--no-demo"][..]] {
        let out = Command::cargo_bin("switchyard")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{args:?} should fail without a terminal"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("needs a terminal") && stderr.contains("switchyard load"),
            "{stderr}"
        );
    }
}

#[test]
fn a_refresh_outside_100ms_to_1s_is_refused() {
    for bad in ["5ms", "10s", "soon"] {
        let out = Command::cargo_bin("switchyard")
            .unwrap()
            .args(["--refresh", bad])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refresh") || stderr.contains("duration"),
            "{stderr}"
        );
    }
}

#[test]
fn the_access_options_need_the_mqtt_listener() {
    // clap does not check in a release build that a `requires` names an argument or group that
    // exists: without the dashboard's `mqtt_listener` group these options were taken without --mqtt.
    for option in ["--mqtt-password-file", "--mqtt-acl-file"] {
        for args in [&[option, "f"][..], &["dashboard", option, "f"][..]] {
            let out = Command::cargo_bin("switchyard")
                .unwrap()
                .args(args)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("--mqtt <ADDR>"), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn dashboard_help_documents_its_options() {
    let out = Command::cargo_bin("switchyard")
        .unwrap()
        .args(["dashboard", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in ["--no-demo", "--export-dir", "--refresh", "250ms"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}
