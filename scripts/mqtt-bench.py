#!/usr/bin/env python3
"""Switchyard's MQTT listener beside Mosquitto: throughput and latency, and the cost of idle connections.

Both commands start `switchyard serve --mqtt` and a Mosquitto (a config binding 127.0.0.1 only) on free
loopback ports, and stop them (by their pids) at the end. Build first: cargo build --release.

  python3 scripts/mqtt-bench.py compare [--repeat 3]
      The same `switchyard load --mqtt` clients against each server in turn (A B A B ...) for 1->1,
      1->100 and 100->1 at QoS 0 and 1, flat out and paced below saturation; a Markdown table of deliveries/s, p50/p99 latency and messages
      lost (medians over the repetitions), with the Switchyard/Mosquitto throughput ratio as
      median [min-max] over the interleaved pairs.

  python3 scripts/mqtt-bench.py roundtrip [--before PATH] [--repeat 7] [--messages 20000]
      QoS 1 round trips with Mosquitto's own clients, as issue 19 measured them: `mosquitto_pub
      --repeat N -q 1` (each publish waits for its PUBACK before the next) to one `mosquitto_sub -q 1`,
      against this tree's `switchyard serve --mqtt`, Mosquitto, and with --before a binary built before
      a change, in turn, the order rotating each round. Messages/s (N over mosquitto_pub's wall time,
      once the subscriber got all N) and each server's CPU time per message (from /proc), medians, with
      the ratios as median [min-max] over the rounds.

  python3 scripts/mqtt-bench.py acl [--repeat 5]
      The per-message cost of topic permissions with 1,000 ACL lines: the same password file and the
      same ACL file (one user whose 1,000th line is the one that grants `load/#`) given to Switchyard
      and to Mosquitto, each also run with the password file alone; the same paced `switchyard load
      --mqtt --mqtt-user` clients against all four in turn, repeated. Each server's CPU time (from
      /proc) per delivered message, with and without the ACL; the ACL's cost per message is the
      difference; ratios as median [min-max] over the interleaved repetitions.

  python3 scripts/mqtt-bench.py ab --before PATH [--repeat 7]
      QoS 1 1->1, flat out and paced at 20k/s and 4k/s: a `switchyard` binary built before a change
      (PATH), this tree's, and Mosquitto, in turn (the order rotating each round), the same
      `switchyard load --mqtt` client (this tree's) against each; deliveries/s, each server's CPU time
      per delivered message (from /proc; at a pace every server sustains it is what a message costs,
      and a busy machine disturbs it far less than throughput) and p50/p99 latency (medians), and the
      after/before and after/Mosquitto ratios as median [min-max] over the rounds.

  python3 scripts/mqtt-bench.py idle [--repeat 3] [--connections 1000] [--idle 10] [--tls]
                                     [--before PATH] [--queue16]
      N raw connections to each (CONNECT with keep-alive 60 s, one SUBSCRIBE at QoS 1); the server's
      resident memory before and after (/proc/PID/status VmRSS) and its CPU time over an idle interval;
      each round starts every server afresh and measures them in turn, the order rotating. The servers:
      this tree's `switchyard serve --mqtt`, Mosquitto, the floor of a tokio server of the same design
      (`mqtt/examples/idle_floor.rs`, if built: cargo build --release -p switchyard-mqtt --example
      idle_floor), with --before a binary built before a change, with --queue16 `--mqtt-queue 16`.
      Medians [min-max] over the rounds, and each server's ratio to Mosquitto in the same round. With
      --tls, over TLS (a certificate made as `tls` makes it; no floor).

  python3 scripts/mqtt-bench.py tls [--repeat 5] [--connects 1000]
      Both servers with a TCP and a TLS listener (the same certificate and key, an ECDSA P-256 pair
      made by openssl; no client certificates; TLS 1.2 and 1.3 allowed, as both default to): 1->1
      QoS 0 deliveries/s with `switchyard load --mqtt ... [--mqtt-cafile]`, and connects/s from 4
      Python processes (Python's ssl module, a full handshake each, then CONNECT, CONNACK,
      DISCONNECT), over TLS and over TCP, each server in turn (A B A B ...); medians, and the ratio
      Switchyard/Mosquitto as median [min-max] over the interleaved pairs.
"""

import argparse
import collections
import contextlib
import json
import multiprocessing
import os
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "switchyard")
TICK_S = os.sysconf("SC_CLK_TCK")
MOSQUITTO = next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.path.exists(p)), "mosquitto"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


# A started server: its name, process, MQTT port, and TLS port (None without `tls`).
Server = collections.namedtuple("Server", "name proc port tls_port")


@contextlib.contextmanager
def servers(switchyard_args, mosquittos=(("Mosquitto", "allow_anonymous true\n"),), tls=None,
            others=()):
    """Starts one `switchyard serve` per entry of `switchyard_args` ((name, arguments), and the binary
    third when it is not this tree's), one process per entry of `others` ((name, command), the
    loopback address to listen on appended; no TLS) and one Mosquitto per entry of `mosquittos`
    (name, configuration lines after its loopback listener); yields a list of Servers in that order,
    Mosquittos last. With `tls` (the paths of a certificate and its key), each `switchyard` and
    Mosquitto also listens for MQTT over TLS with them."""
    tmp = tempfile.mkdtemp(prefix="mqtt-bench-")
    started = []
    try:
        for name, command in others:
            port = free_port()
            proc = subprocess.Popen([*command, f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
            started.append(Server(name, proc, port, None))
        for name, extra, *binary in switchyard_args:
            port, tls_port = free_port(), tls and free_port()
            listeners = ["--mqtt", f"127.0.0.1:{port}"]
            if tls:
                listeners += ["--mqtt-tls", f"127.0.0.1:{tls_port}",
                              "--tls-cert", tls["cert"], "--tls-key", tls["key"]]
            proc = subprocess.Popen([*(binary or [BIN]), "serve", *listeners, *extra],
                                    stdout=subprocess.DEVNULL)
            started.append(Server(name, proc, port, tls_port))
        for index, (name, lines) in enumerate(mosquittos):
            port, tls_port = free_port(), tls and free_port()
            conf = os.path.join(tmp, f"mosquitto-{index}.conf")
            with open(conf, "w") as f:
                f.write(f"listener {port} 127.0.0.1\npersistence false\n{lines}")
                if tls:
                    f.write(f"listener {tls_port} 127.0.0.1\ncertfile {tls['cert']}\n"
                            f"keyfile {tls['key']}\n")
            proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            started.append(Server(name, proc, port, tls_port))
        for server in started:
            wait_listening(server.port)
            if server.tls_port:
                wait_listening(server.tls_port)
        yield started
    finally:
        for server in started:
            server.proc.terminate()
            server.proc.wait(timeout=10)


# ---------------------------------------------------------------- compare

# (name, publishers, subscribers, messages in total per qos, rate in messages/s over all publishers;
# 0 = flat out). The paced rows stay below both servers' saturation, where neither should drop.
SCENARIOS = [
    ("1->1", 1, 1, {0: 100_000, 1: 50_000}, 0),
    ("1->100", 1, 100, {0: 2_000, 1: 1_000}, 0),
    ("100->1", 100, 1, {0: 100_000, 1: 50_000}, 0),
    ("1->1 at 20k/s", 1, 1, {0: 40_000, 1: 40_000}, 20_000),
    ("1->100 at 1k/s", 1, 100, {0: 2_000, 1: 2_000}, 1_000),
    ("100->1 at 20k/s", 100, 1, {0: 40_000, 1: 40_000}, 20_000),
]


def load(port, pubs, subs, messages, qos, rate, out_dir, tag, login=(), cafile=None):
    path = os.path.join(out_dir, f"{tag}.json")
    tls = ["--mqtt-cafile", cafile] if cafile else []
    subprocess.run(
        [BIN, "load", "--mqtt", f"127.0.0.1:{port}", *tls, "--publishers", str(pubs),
         "--subscribers", str(subs), "--messages", str(messages), "--qos", str(qos),
         "--rate", str(rate), *login,
         "--latency-every", "8", "--json", path],
        check=True, stdout=subprocess.DEVNULL, timeout=120,
    )
    with open(path) as f:
        return json.load(f)


def compare(args):
    tmp = tempfile.mkdtemp(prefix="mqtt-compare-")
    with servers([("Switchyard", [])]) as started:
        sy_port, mq_port = (server.port for server in started)
        print("| scenario | QoS | Switchyard deliveries/s | Mosquitto deliveries/s | ratio median [min-max] "
              "| p50 / p99 µs Switchyard | p50 / p99 µs Mosquitto | lost Switchyard | lost Mosquitto |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, pubs, subs, per_qos, rate in SCENARIOS:
            for qos in (0, 1):
                runs = {"sy": [], "mq": []}
                for r in range(args.repeat):
                    for key, port in (("sy", sy_port), ("mq", mq_port)):
                        runs[key].append(
                            load(port, pubs, subs, per_qos[qos], qos, rate, tmp, f"{key}-{r}-{qos}-{len(name)}-{pubs}-{subs}-{rate}"))
                ratios = [a["delivered_per_s"] / b["delivered_per_s"]
                          for a, b in zip(runs["sy"], runs["mq"])]
                med = lambda key, f: statistics.median(f(x) for x in runs[key])
                lat = lambda key: "{:.0f} / {:.0f}".format(
                    med(key, lambda x: x["latency_us"]["p50"]), med(key, lambda x: x["latency_us"]["p99"]))
                lost = lambda key: "{:.1%}".format(med(key, lambda x: x["lost"] / max(x["expected"], 1)))
                print(f"| {name} | {qos} | {med('sy', lambda x: x['delivered_per_s']):,.0f} "
                      f"| {med('mq', lambda x: x['delivered_per_s']):,.0f} "
                      f"| {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] "
                      f"| {lat('sy')} | {lat('mq')} | {lost('sy')} | {lost('mq')} |", flush=True)


# ---------------------------------------------------------------- ab

# (name, messages, rate): QoS 1, one publisher and one subscriber.
# The paced rows stay below what both servers sustain, so the server's CPU per message is what a
# message costs it.
AB_SCENARIOS = [("1->1", 50_000, 0), ("1->1 at 20k/s", 40_000, 20_000),
                ("1->1 at 4k/s", 20_000, 4_000)]


def ab(args):
    tmp = tempfile.mkdtemp(prefix="mqtt-ab-")
    before = os.path.abspath(args.before)
    with servers([("before", [], before), ("after", [])]) as started:
        print(f"before: {before}\nafter: {BIN}\n")
        print("| QoS 1 | deliveries/s before / after / Mosquitto | after/before median [min-max] "
              "| after/Mosquitto median [min-max] | server CPU µs per message before / after / "
              "Mosquitto | CPU after/before | CPU after/Mosquitto "
              "| p50 / p99 µs before | p50 / p99 µs after | p50 / p99 µs Mosquitto "
              "| lost before / after / Mosquitto |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, messages, rate in AB_SCENARIOS:
            runs = {server.name: [] for server in started}
            for r in range(args.repeat):
                # The order rotates, so what the machine does at one point of every round favours
                # no one.
                for server in started[r % len(started):] + started[:r % len(started)]:
                    ticks = cpu_ticks(server.proc.pid)
                    report = load(server.port, 1, 1, messages, 1, rate, tmp,
                                  f"ab-{server.name}-{r}-{rate}")
                    ticks = cpu_ticks(server.proc.pid) - ticks
                    report["cpu_us"] = ticks / TICK_S * 1e6 / max(report["received"], 1)
                    runs[server.name].append(report)
            of = lambda key, field: [x[field] for x in runs[key]]
            med = lambda key, field: statistics.median(of(key, field))
            ratio = lambda a, b, field: [x / y for x, y in zip(of(a, field), of(b, field))]
            spread = lambda rs: f"{statistics.median(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}]"
            lat = lambda key: "{:.0f} / {:.0f}".format(
                statistics.median(x["latency_us"]["p50"] for x in runs[key]),
                statistics.median(x["latency_us"]["p99"] for x in runs[key]))
            lost = lambda key: "{:.1%}".format(
                statistics.median(x["lost"] / max(x["expected"], 1) for x in runs[key]))
            three = lambda field, form: " / ".join(
                format(med(key, field), form) for key in ("before", "after", "Mosquitto"))
            print(f"| {name} | {three('delivered_per_s', ',.0f')} "
                  f"| {spread(ratio('after', 'before', 'delivered_per_s'))} "
                  f"| {spread(ratio('after', 'Mosquitto', 'delivered_per_s'))} "
                  f"| {three('cpu_us', '.1f')} | {spread(ratio('after', 'before', 'cpu_us'))} "
                  f"| {spread(ratio('after', 'Mosquitto', 'cpu_us'))} "
                  f"| {lat('before')} | {lat('after')} | {lat('Mosquitto')} "
                  f"| {lost('before')} / {lost('after')} / {lost('Mosquitto')} |", flush=True)


# ---------------------------------------------------------------- roundtrip

ROUNDTRIP_PAYLOAD = "x" * 64


def lines_in(path, line):
    """How many lines `line` the file at `path` holds."""
    with open(path) as f:
        return sum(1 for got in f if got.rstrip("\n") == line)


def wait_for_lines(path, line, count, seconds):
    """Whether the file at `path` holds `count` lines `line` within `seconds` (looked at every 50 ms)."""
    deadline = time.monotonic() + seconds
    while lines_in(path, line) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def roundtrip_once(server, messages, sub_qos, tag, out_dir):
    """One `mosquitto_pub --repeat` run against `server`, its subscriber at `sub_qos`: (messages/s,
    server CPU µs per message, messages the subscriber did not get)."""
    host = ["-h", "127.0.0.1", "-p", str(server.port)]
    topic = f"roundtrip/{tag}"
    # Into a file, line-buffered: a pipe not read as fast would stall the subscriber, and through a
    # pipe or a file mosquitto_sub would otherwise hold its output in 4 KiB blocks.
    received = os.path.join(out_dir, f"{tag}.txt")
    with open(received, "w") as out:
        sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", *host, "-q", str(sub_qos), "-t", topic,
                                "-i", f"rt-sub-{tag}"], stdout=out)
    try:
        # Subscribed once a probe published after it reaches it.
        for _ in range(100):
            subprocess.run(["mosquitto_pub", *host, "-q", "1", "-t", topic, "-m", "probe"], check=True)
            if wait_for_lines(received, "probe", 1, 0.2):
                break
        else:
            sys.exit(f"{server.name}: mosquitto_sub never got a probe")
        ticks = cpu_ticks(server.proc.pid)
        started = time.monotonic()
        subprocess.run(["mosquitto_pub", *host, "-q", "1", "-t", topic, "-i", f"rt-pub-{tag}",
                        "--repeat", str(messages), "-m", ROUNDTRIP_PAYLOAD], check=True, timeout=300)
        elapsed = time.monotonic() - started
        wait_for_lines(received, ROUNDTRIP_PAYLOAD, messages, 10)
        ticks = cpu_ticks(server.proc.pid) - ticks
        return (messages / elapsed, ticks / TICK_S * 1e6 / messages,
                messages - lines_in(received, ROUNDTRIP_PAYLOAD))
    finally:
        sub.terminate()
        sub.wait(timeout=10)


def roundtrip(args):
    switchyards = [("after", [])]
    if args.before:
        switchyards.insert(0, ("before", [], os.path.abspath(args.before)))
    tmp = tempfile.mkdtemp(prefix="mqtt-roundtrip-")
    with servers(switchyards) as started:
        names = [server.name for server in started]
        print(f"`mosquitto_pub --repeat {args.messages} -q 1` to one `mosquitto_sub`, {args.repeat} "
              f"rounds; medians, ratios median [min-max] over the rounds\n")
        print("| subscriber | server | messages/s | server CPU µs per message | lost "
              "| messages/s ÷ Mosquitto | CPU ÷ Mosquitto | messages/s ÷ before | CPU ÷ before |")
        print("|---|---|---|---|---|---|---|---|---|")
        for sub_qos in args.sub_qos:
            runs = {name: [] for name in names}
            for r in range(args.repeat):
                # The order rotates, so what the machine does at one point of every round favours
                # no one.
                for server in started[r % len(started):] + started[:r % len(started)]:
                    tag = f"{server.name}-{sub_qos}-{r}"
                    runs[server.name].append(
                        roundtrip_once(server, args.messages, sub_qos, tag, tmp))

            def ratios(name, against):
                if name == against or against not in runs:
                    return "| - | -"
                rs = [[x[i] / y[i] for x, y in zip(runs[name], runs[against])] for i in (0, 1)]
                return " ".join(f"| {statistics.median(r):.2f} [{min(r):.2f}-{max(r):.2f}]"
                                for r in rs)

            for name in names:
                med = lambda i: statistics.median(run[i] for run in runs[name])
                print(f"| QoS {sub_qos} | {name} | {med(0):,.0f} | {med(1):.1f} "
                      f"| {sum(run[2] for run in runs[name])} {ratios(name, 'Mosquitto')} "
                      f"{ratios(name, 'before') if name == 'after' else '| - | -'} |", flush=True)


# ---------------------------------------------------------------- acl

ACL_LINES = 1000
ACL_USER, ACL_PASSWORD = "bench", "bench-pw"
# (name, publishers, subscribers, messages, rate in messages/s): paced below what every server
# sustains on a shared 2-core machine, so nothing is lost and the CPU a server spends per message is
# the cost of that message.
ACL_SCENARIOS = [
    ("1->1 at 4k/s", 1, 1, 20_000, 4_000),
    ("1->10 at 500/s", 1, 10, 2_500, 500),
]


def acl_files(tmp):
    """A password file made by `switchyard passwd` and an ACL file of ACL_LINES lines where the user's
    last line is the one that grants the load topic: a scan that stops at the first match reads them
    all. Both readable by Mosquitto's own user."""
    os.chmod(tmp, 0o755)
    passwords = os.path.join(tmp, "passwords")
    subprocess.run([BIN, "passwd", "-c", "-b", passwords, ACL_USER, ACL_PASSWORD], check=True)
    acl = os.path.join(tmp, "acl")
    with open(acl, "w") as f:
        f.write(f"user {ACL_USER}\n")
        for n in range(ACL_LINES - 2):
            f.write(f"topic readwrite sensors/{n}/#\n")
        f.write("topic readwrite load/#\n")
    for path in (passwords, acl):
        subprocess.run(["chown", "mosquitto", path], stderr=subprocess.DEVNULL, check=False)
    return passwords, acl


def acl(args):
    tmp = tempfile.mkdtemp(prefix="mqtt-acl-")
    passwords, acl_file = acl_files(tmp)
    login = ("--mqtt-user", ACL_USER, "--mqtt-password", ACL_PASSWORD)
    switchyards = [("sy", ["--mqtt-password-file", passwords]),
                   ("sy+acl", ["--mqtt-password-file", passwords, "--mqtt-acl-file", acl_file])]
    mosquittos = [("mq", f"allow_anonymous false\npassword_file {passwords}\n"),
                  ("mq+acl", f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl_file}\n")]
    with servers(switchyards, mosquittos) as started:
        servers_by_key = {server.name: (server.proc.pid, server.port) for server in started}
        print(f"{ACL_LINES} ACL lines. Server CPU (user + system) per delivered message, µs: medians of "
              f"{args.repeat} interleaved runs; ratios median [min-max] over the repetitions.\n")
        print("| scenario | QoS | Switchyard without / with ACL | Mosquitto without / with ACL "
              "| ACL cost per message: Switchyard | Mosquitto "
              "| with ACL: Mosquitto ÷ Switchyard | with ÷ without: Switchyard | Mosquitto | lost |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, pubs, subs, messages, rate in ACL_SCENARIOS:
            for qos in (0, 1):
                cpu = {key: [] for key in servers_by_key}
                lost = 0
                for r in range(args.repeat):
                    for key, (pid, port) in servers_by_key.items():
                        before = cpu_ticks(pid)
                        run = load(port, pubs, subs, messages, qos, rate, tmp,
                                   f"{key}-{r}-{qos}-{subs}", login)
                        ticks = cpu_ticks(pid) - before
                        lost += run["lost"]
                        cpu[key].append(ticks / TICK_S * 1e6 / max(run["received"], 1))
                med = lambda key: statistics.median(cpu[key])
                span = lambda xs: f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]"
                ratio = lambda a, b: [x / y for x, y in zip(cpu[a], cpu[b])]
                cost = lambda with_acl, plain: statistics.median(
                    x - y for x, y in zip(cpu[with_acl], cpu[plain]))
                print(f"| {name} | {qos} | {med('sy'):.1f} / {med('sy+acl'):.1f} "
                      f"| {med('mq'):.1f} / {med('mq+acl'):.1f} "
                      f"| {cost('sy+acl', 'sy'):.1f} | {cost('mq+acl', 'mq'):.1f} "
                      f"| {span(ratio('mq+acl', 'sy+acl'))} "
                      f"| {span(ratio('sy+acl', 'sy'))} | {span(ratio('mq+acl', 'mq'))} | {lost} |",
                      flush=True)


# ---------------------------------------------------------------- idle


def mqtt_str(s):
    return struct.pack("!H", len(s)) + s.encode()


def packet(first, body):
    assert len(body) < 128
    return bytes([first, len(body)]) + body


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def connect_many(port, n, context=None):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if context:
            s = context.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(packet(0x10, mqtt_str("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + mqtt_str(f"idle-{i}")))
        assert s.recv(4)[:2] == b"\x20\x02"
        s.sendall(packet(0x82, struct.pack("!H", 1) + mqtt_str(f"idle/{i}") + b"\x01"))
        assert s.recv(5)[0] == 0x90
        socks.append(s)
    return socks


def measure(pid, port, n, idle, context=None):
    """Opens `n` idle subscribed connections to the server `pid` listening on `port`: (bytes of RSS
    they added per connection, the share of one core it spent over `idle` seconds of their
    idleness)."""
    time.sleep(1)
    before = rss_kib(pid)
    socks = connect_many(port, n, context)
    time.sleep(1)
    after = rss_kib(pid)
    ticks = cpu_ticks(pid)
    time.sleep(idle)
    ticks = cpu_ticks(pid) - ticks
    for s in socks:
        s.close()
    return (after - before) * 1024 / n, ticks / TICK_S / idle * 100


IDLE_FLOOR = os.path.join(ROOT, "target", "release", "examples", "idle_floor")


def idle(args):
    certs = make_certificate(tempfile.mkdtemp(prefix="mqtt-idle-certs-")) if args.tls else None
    context = ssl.create_default_context(cafile=certs["ca"]) if certs else None
    switchyards = [("Switchyard", [])]
    if args.queue16:
        switchyards.append(("Switchyard --mqtt-queue 16", ["--mqtt-queue", "16"]))
    if args.before:
        switchyards.insert(0, ("Switchyard before", [], os.path.abspath(args.before)))
    # The floor of a tokio task per connection holding one core subscription (no TLS listener).
    others = []
    if not certs:
        if os.path.exists(IDLE_FLOOR):
            others.append(("tokio floor (idle_floor)", [IDLE_FLOOR]))
        else:
            print(f"(no {IDLE_FLOOR}: cargo build --release -p switchyard-mqtt --example idle_floor "
                  "measures the floor too)\n")
    runs = collections.defaultdict(list)
    for r in range(args.repeat):
        # Fresh processes each round (a server that freed connections keeps the pages), and the
        # order rotating, so what the machine does at one point of every round favours no one.
        with servers(switchyards, tls=certs, others=others) as started:
            for server in started[r % len(started):] + started[:r % len(started)]:
                port = server.tls_port if certs else server.port
                runs[server.name].append(
                    measure(server.proc.pid, port, args.connections, args.idle, context))
    span = lambda xs: f"{statistics.median(xs):,.0f} [{min(xs):,.0f}-{max(xs):,.0f}]"
    ratio = lambda name: [a[0] / b[0] for a, b in zip(runs[name], runs["Mosquitto"])]
    over = " over TLS" if certs else ""
    print(f"{args.connections} idle connections{over}, one QoS 1 subscription each; {args.repeat} "
          "interleaved rounds, fresh processes each; median [min-max]\n")
    print("| server | bytes of RSS per connection | ÷ Mosquitto | CPU while idle (one core) |")
    print("|---|---|---|---|")
    for name, rounds in runs.items():
        rss = [x[0] for x in rounds]
        cpu = statistics.median(x[1] for x in rounds)
        rs = [] if name == "Mosquitto" else ratio(name)
        versus = f"{statistics.median(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}]" if rs else "-"
        print(f"| {name} | {span(rss)} | {versus} | {cpu:.2f}% |")


# ---------------------------------------------------------------- tls


def make_certificate(dir):
    """A CA and a server certificate for 127.0.0.1 signed by it (ECDSA P-256), made by openssl;
    readable by Mosquitto's own user. Returns the paths."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=dir, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=bench CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(dir, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "server.ext")
    os.chmod(dir, 0o755)
    for name in os.listdir(dir):
        os.chmod(os.path.join(dir, name), 0o644)
    return {name: os.path.join(dir, f) for name, f in
            (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}


def connect_loop(port, cafile, count):
    """`count` connections one after another: TCP (and a full TLS handshake with `cafile`), CONNECT
    with a clean session, the CONNACK, DISCONNECT, close."""
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    connect = packet(0x10, mqtt_str("MQTT") + bytes([4, 2]) + struct.pack("!H", 30)
                     + mqtt_str(f"bench-{os.getpid()}"))
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context:
            s = context.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(connect)
        assert s.recv(4) == b"\x20\x02\x00\x00"
        s.sendall(b"\xe0\x00")
        s.close()


def connects_per_second(pool, port, cafile, total, workers):
    per_worker = total // workers
    started = time.monotonic()
    pool.starmap(connect_loop, [(port, cafile, per_worker)] * workers)
    return per_worker * workers / (time.monotonic() - started)


def tls(args):
    tmp = tempfile.mkdtemp(prefix="mqtt-tls-")
    certs = make_certificate(tempfile.mkdtemp(prefix="mqtt-tls-certs-"))
    workers = 4
    # (row name, function of (server, repetition) -> (figure, fraction lost or None))
    def deliveries(use_tls):
        def measure(server, r):
            port = server.tls_port if use_tls else server.port
            report = load(port, 1, 1, args.messages, 0, 0, tmp, f"{server.name}-{use_tls}-{r}",
                          cafile=certs["ca"] if use_tls else None)
            return report["delivered_per_s"], report["lost"] / max(report["expected"], 1)
        return measure
    def connects(use_tls):
        def measure(server, r):
            port = server.tls_port if use_tls else server.port
            return connects_per_second(pool, port, certs["ca"] if use_tls else None,
                                       args.connects, workers), None
        return measure
    rows = [
        ("1->1 QoS 0 deliveries/s over TLS", deliveries(True)),
        ("1->1 QoS 0 deliveries/s over TCP", deliveries(False)),
        (f"connects/s over TLS ({workers} clients)", connects(True)),
        (f"connects/s over TCP ({workers} clients)", connects(False)),
    ]
    with multiprocessing.Pool(workers) as pool, servers([("Switchyard", [])], tls=certs) as started:
        sy, mq = started
        print("| measure | Switchyard | Mosquitto | ratio median [min-max] "
              "| lost Switchyard | lost Mosquitto |")
        print("|---|---|---|---|---|---|")
        for name, measure in rows:
            runs = [(measure(sy, r), measure(mq, r)) for r in range(args.repeat)]
            ratios = [a[0] / b[0] for a, b in runs]
            med = lambda side, i: statistics.median(run[side][i] for run in runs)
            lost = lambda side: "-" if runs[0][side][1] is None else f"{med(side, 1):.1%}"
            print(f"| {name} | {med(0, 0):,.0f} | {med(1, 0):,.0f} "
                  f"| {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] "
                  f"| {lost(0)} | {lost(1)} |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("compare")
    c.add_argument("--repeat", type=int, default=3)
    a = commands.add_parser("ab")
    a.add_argument("--before", required=True, help="a switchyard binary built before the change")
    a.add_argument("--repeat", type=int, default=7)
    acl_parser = commands.add_parser("acl")
    acl_parser.add_argument("--repeat", type=int, default=5)
    i = commands.add_parser("idle")
    i.add_argument("--connections", type=int, default=1000)
    i.add_argument("--idle", type=float, default=10)
    i.add_argument("--tls", action="store_true", help="connect to the TLS listeners")
    i.add_argument("--before", help="also a switchyard binary built before a change")
    i.add_argument("--repeat", type=int, default=3, help="interleaved rounds, fresh processes each")
    i.add_argument("--queue16", action="store_true", help="also `switchyard serve --mqtt-queue 16`")
    rt = commands.add_parser("roundtrip")
    rt.add_argument("--before", help="a switchyard binary built before the change")
    rt.add_argument("--repeat", type=int, default=7)
    rt.add_argument("--messages", type=int, default=20_000)
    rt.add_argument("--sub-qos", type=int, nargs="+", default=[0, 1], choices=[0, 1, 2],
                    help="the subscriber's QoS, one row each")
    t = commands.add_parser("tls")
    t.add_argument("--repeat", type=int, default=5)
    t.add_argument("--messages", type=int, default=100_000)
    t.add_argument("--connects", type=int, default=1000)
    args = parser.parse_args()
    {"compare": compare, "ab": ab, "roundtrip": roundtrip, "acl": acl, "idle": idle,
     "tls": tls}[args.command](args)


if __name__ == "__main__":
    main()
