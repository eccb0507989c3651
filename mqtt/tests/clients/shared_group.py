"""One member of a shared subscription ($share/GROUP/FILTER), a paho-mqtt client at QoS 1.

Run by tests/paho_shared_group.rs as `python3 shared_group.py ROLE HOST PORT FILTER COUNT`:

- `holder` takes messages and never acknowledges them (paho's manual_ack, no ack ever sent), printing
  `got PAYLOAD dup=0|1` for each; it waits to be killed (it exits by itself after 60 s).
- `worker` acknowledges what it gets (paho acks after the callback), printing the same lines; after
  COUNT messages it prints `done` and waits for a line on stdin (or 60 s), then disconnects cleanly.

Both print `subscribed` once the SUBACK arrived. Every wait is bounded; only HOST is used (loopback).
"""

import queue
import sys
import time

import paho.mqtt.client as mqtt

ROLE, HOST, PORT, FILTER, COUNT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
LIMIT = 60.0


def say(line):
    print(line, flush=True)


def main():
    subacks = queue.Queue()
    messages = queue.Queue()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"paho-{ROLE}",
        clean_session=True,
        protocol=mqtt.MQTTv311,
        manual_ack=(ROLE == "holder"),
    )
    client.on_subscribe = lambda c, u, mid, codes, p: subacks.put([code.value for code in codes])
    client.on_message = lambda c, u, m: messages.put(m)
    client.connect(HOST, PORT, keepalive=30)
    client.loop_start()
    client.subscribe(FILTER, qos=1)
    codes = subacks.get(timeout=10)
    assert codes == [1], f"SUBACK {codes}"
    say("subscribed")

    deadline = time.monotonic() + LIMIT
    got = 0
    while time.monotonic() < deadline:
        try:
            m = messages.get(timeout=0.1)
        except queue.Empty:
            continue
        say(f"got {m.payload.decode()} dup={int(m.dup)} qos={m.qos}")
        got += 1
        if ROLE == "worker" and got == COUNT:
            say("done")
            sys.stdin.readline()  # the test reads the books first; EOF ends it too
            client.disconnect()
            client.loop_stop()
            return 0
    say("timed out")
    return 1


if __name__ == "__main__":
    sys.exit(main())
