#!/usr/bin/env python3
"""Bytes and CPU per idle MQTT connection: Switchyard's listener beside Mosquitto.

Starts `switchyard serve --mqtt` (default queues, and `--mqtt-queue 16`) and a Mosquitto (127.0.0.1 only) on free ports, opens N raw
connections to each (CONNECT with keep-alive 60 s, one SUBSCRIBE at QoS 1), and reads the server's
resident memory before and after (/proc/PID/status VmRSS) and its CPU time over an idle interval
(/proc/PID/stat utime+stime). Both servers are stopped by their pids at the end.

Usage: python3 scripts/mqtt-idle.py [--connections 1000] [--idle 10]   (after cargo build --release)
"""

import argparse
import os
import socket
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "switchyard")
MOSQUITTO = next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.path.exists(p)), "mosquitto"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def connect_many(port, n):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(packet(0x10, mqtt_str("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + mqtt_str(f"idle-{i}")))
        assert s.recv(4)[:2] == b"\x20\x02"
        s.sendall(packet(0x82, struct.pack("!H", 1) + mqtt_str(f"idle/{i}") + b"\x01"))
        assert s.recv(5)[0] == 0x90
        socks.append(s)
    return socks


def measure(name, pid, port, n, idle):
    time.sleep(1)
    before = rss_kib(pid)
    socks = connect_many(port, n)
    time.sleep(1)
    after = rss_kib(pid)
    ticks = cpu_ticks(pid)
    time.sleep(idle)
    ticks = cpu_ticks(pid) - ticks
    hz = os.sysconf("SC_CLK_TCK")
    print(f"| {name} | {n} | {(after - before) * 1024 / n:,.0f} | {ticks / hz / idle * 100:.2f}% |")
    for s in socks:
        s.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="mqtt-idle-")
    sy_port, small_port, mq_port = free_port(), free_port(), free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {mq_port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    servers = [
        subprocess.Popen([BIN, "serve", "--mqtt", f"127.0.0.1:{sy_port}"], stdout=subprocess.DEVNULL),
        subprocess.Popen([BIN, "serve", "--mqtt", f"127.0.0.1:{small_port}", "--mqtt-queue", "16"],
                         stdout=subprocess.DEVNULL),
        subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        time.sleep(1)
        print("| server | idle connections | bytes of RSS per connection | CPU while idle (one core) |")
        print("|---|---|---|---|")
        measure("Switchyard", servers[0].pid, sy_port, args.connections, args.idle)
        measure("Switchyard --mqtt-queue 16", servers[1].pid, small_port, args.connections, args.idle)
        measure("Mosquitto", servers[2].pid, mq_port, args.connections, args.idle)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
