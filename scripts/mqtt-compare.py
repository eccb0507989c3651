#!/usr/bin/env python3
"""Switchyard's MQTT listener against Mosquitto, same clients, same run, interleaved.

Starts `switchyard serve --mqtt` and a Mosquitto (config binding 127.0.0.1 only) on free loopback
ports, then runs `switchyard load --mqtt` against each in turn (A B A B ...) for 1->1, 1->100 and
100->1 at QoS 0 and 1, and prints a Markdown table: deliveries/s, p50/p99 latency and messages lost
(medians over the repetitions), with the Switchyard/Mosquitto throughput ratio as median [min-max]
over the interleaved pairs. Both servers are stopped (by their pids) at the end.

Usage: python3 scripts/mqtt-compare.py [--repeat 3]   (build first: cargo build --release)
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "switchyard")
MOSQUITTO = next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.path.exists(p)), "mosquitto"
)

# (name, publishers, subscribers, messages in total per qos)
SCENARIOS = [
    ("1->1", 1, 1, {0: 100_000, 1: 50_000}),
    ("1->100", 1, 100, {0: 2_000, 1: 1_000}),
    ("100->1", 100, 1, {0: 100_000, 1: 50_000}),
]


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


def load(port, pubs, subs, messages, qos, out_dir, tag):
    path = os.path.join(out_dir, f"{tag}.json")
    subprocess.run(
        [BIN, "load", "--mqtt", f"127.0.0.1:{port}", "--publishers", str(pubs),
         "--subscribers", str(subs), "--messages", str(messages), "--qos", str(qos),
         "--latency-every", "8", "--json", path],
        check=True, stdout=subprocess.DEVNULL, timeout=120,
    )
    with open(path) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="mqtt-compare-")
    sy_port, mq_port = free_port(), free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {mq_port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    servers = [
        subprocess.Popen([BIN, "serve", "--mqtt", f"127.0.0.1:{sy_port}"],
                         stdout=subprocess.DEVNULL),
        subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    try:
        wait_listening(sy_port)
        wait_listening(mq_port)
        print("| scenario | QoS | Switchyard deliveries/s | Mosquitto deliveries/s | ratio median [min-max] "
              "| p50 / p99 µs Switchyard | p50 / p99 µs Mosquitto | lost Switchyard | lost Mosquitto |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, pubs, subs, per_qos in SCENARIOS:
            for qos in (0, 1):
                runs = {"sy": [], "mq": []}
                for r in range(args.repeat):
                    for key, port in (("sy", sy_port), ("mq", mq_port)):
                        runs[key].append(
                            load(port, pubs, subs, per_qos[qos], qos, tmp, f"{key}-{name}-{qos}-{r}"))
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
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
