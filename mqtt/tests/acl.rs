//! Topic permissions from a Mosquitto ACL file, with real clients (`mosquitto_pub`, `mosquitto_sub`
//! logging in with `-u/-P`): the same password and ACL files given to this listener and to a real
//! Mosquitto, the same clients run against each, the same messages expected from both; then what only
//! we do (SUBACK 0x80, refusals counted by reason, wills, anonymous lines).
//! `scripts/test.sh` installs mosquitto and mosquitto-clients; a missing tool fails these tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod bridge_common;
mod common;

use switchyard::Broker;
use switchyard_mqtt::{AclFile, MqttConfig, MqttServer, MqttStats, PasswordFile};

use bridge_common::{Mosquitto, free_port};
use common::{finish, runtime, spawn, stdout, wait_subscribed};

const PASSWORD: &str = "pw-123";

/// Every line kind: anonymous lines, users, `topic` with each access (and none), `pattern` with `%c`
/// and `%u`, deny lines written after the grants they carve out of, comments and blank lines.
const ACL: &str = "\
# anonymous clients (none log in here: the password file is in force)
topic read public/#

user writer
topic write #

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read public/#

user bob
topic read bob/#
topic read devices/#

pattern write devices/%c/status
pattern read users/%u/#
pattern deny users/%u/private
";

/// The password file (made by `mosquitto_passwd`) and the ACL file, in `dir`.
fn files(dir: &Path) -> (PathBuf, PathBuf) {
    let passwords = dir.join("passwords");
    for (i, user) in ["writer", "alice", "bob"].iter().enumerate() {
        let mut command = Command::new("mosquitto_passwd");
        if i == 0 {
            command.arg("-c");
        }
        let status = command
            .arg("-b")
            .arg(&passwords)
            .args([user, PASSWORD])
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_passwd runs (scripts/test.sh installs mosquitto)");
        assert!(status.success());
    }
    let acl = dir.join("acl");
    std::fs::write(&acl, ACL).unwrap();
    (passwords, acl)
}

fn our_server(rt: &tokio::runtime::Runtime, passwords: &Path, acl: &Path) -> MqttServer {
    let config = MqttConfig::default()
        .sys_interval(None)
        .password_file(Some(PasswordFile::load(passwords).unwrap()))
        .acl_file(Some(AclFile::load(acl).unwrap()));
    rt.block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap()
}

/// `user`'s login arguments, then `extra`.
fn as_user<'a>(user: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-u", user, "-P", PASSWORD];
    args.extend_from_slice(extra);
    args
}

/// One QoS 1 publish as `user` (with `extra` arguments such as `-i ID` or `-r`); whether the client
/// saw it acknowledged.
fn publish(addr: SocketAddr, user: &str, topic: &str, payload: &str, extra: &[&str]) -> bool {
    let mut args = as_user(user, &["-q", "1", "-t", topic, "-m", payload]);
    args.extend_from_slice(extra);
    common::run("mosquitto_pub", addr, &args).status.success()
}

/// A publish of [`collect`]'s round: (user, topic, payload, extra arguments).
type Send<'a> = (&'a str, &'a str, &'a str, &'a [&'a str]);

/// Subscribes as `user` to `filter` and returns the first `count` messages (`topic payload`), publishing
/// `round` again and again (at most 50 times) until the subscriber has them: it does not matter when
/// its subscription becomes active, and a message it should not get has as many chances to come as
/// the ones it should.
fn collect(
    addr: SocketAddr,
    user: &str,
    filter: &str,
    count: usize,
    round: &[Send],
) -> Vec<String> {
    let count = count.to_string();
    let sub = spawn(
        "mosquitto_sub",
        addr,
        &as_user(
            user,
            &["-v", "-q", "1", "-t", filter, "-C", &count, "-W", "30"],
        ),
    );
    let mut sub = sub;
    for _ in 0..50 {
        if sub.try_wait().unwrap().is_some() {
            break;
        }
        for (user, topic, payload, extra) in round {
            publish(addr, user, topic, payload, extra);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = finish(sub, Duration::from_secs(10));
    stdout(&out).lines().map(str::to_string).collect()
}

/// What each client of the scenario received, in a form both brokers must produce alike.
fn scenario(addr: SocketAddr) -> Vec<Vec<String>> {
    assert!(publish(addr, "writer", "alice/r", "r1", &["-r"]));
    assert!(publish(addr, "writer", "alice/secret/r", "r2", &["-r"]));
    let mut seen = Vec::new();
    // Retained: only the one alice may read, then a live one.
    seen.push(collect(
        addr,
        "alice",
        "alice/#",
        2,
        &[("writer", "alice/end", "e", &[])],
    ));
    // A wildcard over forbidden topics: the retained one she may read, then what she may read of
    // each round (three topics, in any order: the subscription may start mid-round).
    let mut wildcard = collect(
        addr,
        "alice",
        "#",
        4,
        &[
            ("writer", "alice/secret/k", "s", &[]),
            ("writer", "bob/x", "b", &[]),
            ("writer", "users/alice/private", "p", &[]),
            ("writer", "users/alice/a", "a", &[]),
            ("writer", "users/bob/a", "ub", &[]),
            ("writer", "public/p", "p", &[]),
            ("writer", "alice/x", "x", &[]),
        ],
    );
    wildcard[1..].sort();
    seen.push(wildcard);
    // A publish alice may not make is acknowledged but not routed.
    seen.push(collect(
        addr,
        "bob",
        "bob/#",
        1,
        &[
            ("alice", "bob/x", "from-alice", &[]),
            ("writer", "bob/x", "from-writer", &[]),
        ],
    ));
    // `%c`: a client may write only under its own id.
    seen.push(collect(
        addr,
        "bob",
        "devices/#",
        1,
        &[
            ("alice", "devices/dev7/status", "forged", &["-i", "dev8"]),
            ("alice", "devices/dev7/status", "ok", &["-i", "dev7"]),
        ],
    ));
    // Denied writes are acknowledged (mosquitto_pub succeeds) on both.
    assert!(publish(addr, "alice", "bob/y", "n", &[]));
    seen
}

fn expected() -> Vec<Vec<String>> {
    let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        lines(&["alice/r r1", "alice/end e"]),
        lines(&["alice/r r1", "alice/x x", "public/p p", "users/alice/a a"]),
        lines(&["bob/x from-writer"]),
        lines(&["devices/dev7/status ok"]),
    ]
}

#[test]
fn mosquitto_and_switchyard_read_the_same_acl_file_and_deliver_the_same_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (passwords, acl) = files(dir.path());

    let rt = runtime();
    let ours = our_server(&rt, &passwords, &acl);
    let from_ours = scenario(ours.local_addr());
    assert_eq!(from_ours, expected(), "switchyard");

    let port = free_port();
    let mosquitto = Mosquitto::start_with_files(port, &passwords, Some(&acl));
    let from_mosquitto = scenario(SocketAddr::from(([127, 0, 0, 1], port)));
    drop(mosquitto);
    assert_eq!(from_mosquitto, expected(), "mosquitto with the same files");

    let acl = ours.stats().acl;
    assert!(acl.acl_file);
    assert_eq!(acl.lines, 13);
    let r = acl.refused_by_reason;
    assert_eq!(
        r.subscribe, 0,
        "every filter above reaches something readable"
    );
    assert!(r.publish >= 3, "{r:?}");
    assert!(r.read >= 3, "{r:?}");
    assert_eq!(r.retained_read, 2, "alice/secret/r, to alice/# and to #");
}

fn wait_stats(server: &MqttServer, what: &str, done: impl Fn(&MqttStats) -> bool) -> MqttStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", stats.acl);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_filter_with_nothing_readable_is_refused_in_suback_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (passwords, acl) = files(dir.path());
    let rt = runtime();
    let server = our_server(&rt, &passwords, &acl);
    let addr = server.local_addr();
    for filter in ["bob/#", "alice/secret/+", "$SYS/#"] {
        let out = common::run(
            "mosquitto_sub",
            addr,
            &as_user("alice", &["-t", filter, "-C", "1", "-W", "10"]),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("All subscription requests were denied"),
            "{filter}: {err}"
        );
    }
    // Writer may write everything and read nothing but its own `users/writer/...`.
    let out = common::run(
        "mosquitto_sub",
        addr,
        &as_user("writer", &["-t", "bob/#", "-C", "1", "-W", "10"]),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied"));
    let stats = wait_stats(&server, "four refusals", |s| s.open == 0);
    assert_eq!(stats.acl.refused_by_reason.subscribe, 4);
    assert!(stats.clients.iter().all(|c| c.subscriptions.is_empty()));
}

#[test]
fn a_will_is_published_only_where_its_client_may_write() {
    let dir = tempfile::tempdir().unwrap();
    let (passwords, acl) = files(dir.path());
    let rt = runtime();
    let server = our_server(&rt, &passwords, &acl);
    let addr = server.local_addr();
    let watcher = server.broker().subscribe("devices/#").unwrap();
    // Each connects with a will, then dies without DISCONNECT: the will is due.
    for (id, topic, published) in [
        ("dev7", "devices/dev9/status", 0),
        ("dev8", "devices/dev8/status", 1),
    ] {
        let mut client = spawn(
            "mosquitto_sub",
            addr,
            &as_user(
                "alice",
                &[
                    "-i",
                    id,
                    "-t",
                    "alice/in",
                    "--will-topic",
                    topic,
                    "--will-payload",
                    "gone",
                ],
            ),
        );
        wait_subscribed(&server, id, 1);
        client.kill().unwrap();
        let _ = client.wait();
        let stats = wait_stats(&server, "the will judged", |s| {
            s.wills_published + s.acl.refused_by_reason.will == 1 + published
        });
        assert_eq!(stats.wills_published, published);
        assert_eq!(stats.acl.refused_by_reason.will, 1);
    }
    let got = watcher.try_recv().unwrap();
    assert_eq!(got.message().topic(), "devices/dev8/status");
    assert!(
        watcher.try_recv().is_err(),
        "the forbidden will was not published"
    );
}

#[test]
fn without_a_password_file_every_client_gets_the_anonymous_lines_and_the_patterns() {
    let rt = runtime();
    let acl = AclFile::parse(ACL).unwrap();
    let config = MqttConfig::default().sys_interval(None).acl_file(Some(acl));
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    let addr = server.local_addr();
    // A user name without a password file picks no rules: alice's lines are not hers.
    let out = common::run(
        "mosquitto_sub",
        addr,
        &as_user("alice", &["-t", "alice/#", "-C", "1", "-W", "10"]),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied"));
    let sub = spawn(
        "mosquitto_sub",
        addr,
        &["-i", "reader", "-v", "-t", "#", "-C", "1", "-W", "20"],
    );
    wait_subscribed(&server, "reader", 1);
    // Not readable by anonymous clients, then readable: only the second arrives.
    for topic in ["devices/x/status", "public/news"] {
        server.broker().publish(topic, "m").unwrap();
    }
    let out = finish(sub, Duration::from_secs(20));
    assert_eq!(stdout(&out).trim(), "public/news m");
    // `%c` applies to anonymous clients too; anything else is not theirs to write.
    assert!(
        common::run(
            "mosquitto_pub",
            addr,
            &["-i", "d1", "-t", "devices/d1/status", "-m", "up", "-q", "1"]
        )
        .status
        .success()
    );
    let stats = wait_stats(&server, "refusals", |s| s.open == 0);
    assert_eq!(stats.acl.refused_by_reason.subscribe, 1);
    assert_eq!(stats.acl.refused_by_reason.read, 1);
    assert_eq!(stats.acl.refused_by_reason.publish, 0);
}
