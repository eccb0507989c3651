"""MQTT 3.1.1 behaviours of the Switchyard listener, checked with paho-mqtt and raw sockets.

Run by tests/paho_clients.rs as `python3 behaviours.py HOST PORT`; prints `ok NAME` per check and
exits non-zero at the first failure. Every wait is bounded; only the given loopback address is used.
paho-mqtt handles the protocol where a well-behaved client is wanted; raw sockets send what paho
will not (a second CONNECT, a malformed packet, a PUBLISH never acknowledged).
"""

import queue
import socket
import struct
import sys
import time

import paho.mqtt.client as mqtt

HOST, PORT = sys.argv[1], int(sys.argv[2])
WAIT = 10.0


# ---------------------------------------------------------------- raw packets


def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body


def connect_packet(client_id, clean=True, keep_alive=60, will=None, name="MQTT", level=4):
    flags = 0x02 if clean else 0
    payload = mqtt_str(client_id)
    if will:
        topic, message = will
        flags |= 0x04
        payload += mqtt_str(topic) + mqtt_str(message)
    body = mqtt_str(name) + bytes([level, flags]) + struct.pack("!H", keep_alive) + payload
    return packet(0x10, body)


def subscribe_packet(pkid, filters):
    body = struct.pack("!H", pkid)
    for f, qos in filters:
        body += mqtt_str(f) + bytes([qos])
    return packet(0x82, body)


def publish_packet(topic, payload, qos=0, pkid=0, retain=False, dup=False):
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = mqtt_str(topic) + (struct.pack("!H", pkid) if qos else b"") + payload
    return packet(first, body)


class Raw:
    """A raw MQTT connection: send bytes, read whole packets."""

    def __init__(self):
        self.sock = socket.create_connection((HOST, PORT), timeout=WAIT)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_packet(self):
        """(first byte, body), or None when the server closed the connection."""
        while True:
            if len(self.buf) >= 2:
                mult, length, i = 1, 0, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        if len(self.buf) >= i + length:
                            first, body = self.buf[0], self.buf[i : i + length]
                            self.buf = self.buf[i + length :]
                            return first, body
                        break
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            except socket.timeout:
                raise AssertionError(f"nothing from the server within {WAIT} s") from None
            if not chunk:
                return None
            self.buf += chunk

    def connect(self, client_id, **kw):
        self.send(connect_packet(client_id, **kw))
        first, body = self.read_packet()
        assert first == 0x20, f"expected CONNACK, got {first:#x}"
        return body[0] & 1, body[1]  # session present, return code

    def closed_by_server(self):
        return self.read_packet() is None

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- paho helpers


class Paho:
    """A paho client whose received messages land in a queue."""

    def __init__(self, client_id, clean_session=True, keepalive=30, will=None, connect=True):
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = lambda c, u, flags, rc, p: self.connacks.put((flags, rc))
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subacks.put(codes)
        self.client.on_disconnect = lambda c, u, flags, rc, p: self.disconnects.put(rc)
        if will:
            self.client.will_set(*will)
        self.keepalive = keepalive
        if connect:
            self.connect()

    def connect(self):
        self.client.connect(HOST, PORT, keepalive=self.keepalive)
        self.client.loop_start()
        flags, rc = self.connacks.get(timeout=WAIT)
        assert rc == 0, f"CONNACK {rc}"
        return flags

    def subscribe(self, *filters):
        self.client.subscribe([(f, q) for f, q in filters])
        return [c.value for c in self.subacks.get(timeout=WAIT)]

    def next(self, timeout=WAIT):
        return self.messages.get(timeout=timeout)

    def nothing_for(self, seconds):
        try:
            m = self.messages.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published(), f"publish on {topic} at QoS {qos} not acknowledged"

    def stop(self, disconnect=True):
        if disconnect:
            self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------- checks

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


@check
def connack_accepts_mqtt_3_1_1():
    raw = Raw()
    assert raw.connect("raw-ok") == (0, 0)
    raw.close()


@check
def connack_refuses_another_protocol_level_with_code_1():
    raw = Raw()
    raw.send(connect_packet("old", level=3))
    first, body = raw.read_packet()
    assert (first, body[1]) == (0x20, 1), (first, body)
    assert raw.closed_by_server()
    raw = Raw()
    raw.send(connect_packet("older", name="MQIsdp", level=3))
    first, body = raw.read_packet()
    assert (first, body[1]) == (0x20, 1), (first, body)


@check
def empty_client_id_is_accepted_with_clean_session_and_refused_without():
    raw = Raw()
    assert raw.connect("", clean=True) == (0, 0)
    raw.close()
    raw = Raw()
    assert raw.connect("", clean=False) == (0, 2)
    assert raw.closed_by_server()
    paho = Paho("")  # paho with an empty id and a clean session
    paho.stop()


@check
def a_second_connect_is_a_protocol_error_that_closes_the_connection():
    raw = Raw()
    raw.connect("twice")
    raw.send(connect_packet("twice"))
    assert raw.closed_by_server()


@check
def a_first_packet_that_is_not_connect_closes_the_connection():
    raw = Raw()
    raw.send(packet(0xC0, b""))  # PINGREQ
    assert raw.closed_by_server()


@check
def a_malformed_packet_closes_only_its_connection():
    bystander = Paho("bystander")
    raw = Raw()
    raw.connect("malformed")
    raw.send(bytes([0x82, 0x02, 0x00, 0x01]))  # SUBSCRIBE with no filter
    assert raw.closed_by_server()
    raw = Raw()
    raw.connect("reserved-type")
    raw.send(bytes([0xF0, 0x00]))  # packet type 15 is reserved
    assert raw.closed_by_server()
    bystander.subscribe(("still/alive", 1))
    bystander.publish("still/alive", b"yes", qos=1)
    assert bystander.next().payload == b"yes"
    bystander.stop()


@check
def a_new_connection_with_a_live_client_id_takes_the_session_over():
    first = Paho("same-id")
    second = Paho("same-id")
    first.disconnects.get(timeout=WAIT)  # the server closed the first connection
    first.client.loop_stop()
    second.subscribe(("takeover/t", 0))
    second.publish("takeover/t", b"second is live")
    assert second.next().payload == b"second is live"
    second.stop()


@check
def qos_0_1_and_2_are_published_acknowledged_and_delivered_at_the_granted_qos():
    sub = Paho("qos-sub")
    assert sub.subscribe(("qos/0", 0), ("qos/1", 1), ("qos/2", 2)) == [0, 1, 2]
    pub = Paho("qos-pub")
    for qos in (0, 1, 2):
        pub.publish(f"qos/{qos}", f"at {qos}".encode(), qos=qos)
        m = sub.next()
        assert (m.topic, m.payload, m.qos) == (f"qos/{qos}", f"at {qos}".encode(), qos), m
    pub.stop()
    sub.stop()


@check
def suback_grants_the_qos_and_refuses_an_invalid_filter_with_0x80():
    raw = Raw()
    raw.connect("suback")
    raw.send(subscribe_packet(9, [("ok/+", 2), ("bad/#/filter", 1), ("also+bad", 0), ("fine", 1)]))
    first, body = raw.read_packet()
    assert first == 0x90 and body[:2] == b"\x00\x09", (first, body)
    assert list(body[2:]) == [2, 0x80, 0x80, 1], list(body[2:])
    raw.close()


@check
def unsubscribe_is_acknowledged_and_stops_delivery():
    sub = Paho("unsub")
    sub.subscribe(("unsub/t", 1))
    sub.publish("unsub/t", b"before", qos=1)
    assert sub.next().payload == b"before"
    result, mid = sub.client.unsubscribe("unsub/t")
    assert result == 0
    time.sleep(0.3)  # the UNSUBACK has come back by then (paho has no blocking wait for it)
    sub.publish("unsub/t", b"after", qos=1)
    sub.nothing_for(0.5)
    sub.stop()


@check
def pingreq_is_answered_and_keeps_an_idle_client_connected():
    raw = Raw()
    raw.connect("pinger", keep_alive=1)
    for _ in range(3):
        time.sleep(0.8)
        raw.send(packet(0xC0, b""))
        first, _ = raw.read_packet()
        assert first == 0xD0, f"expected PINGRESP, got {first:#x}"
    raw.close()


@check
def keep_alive_timeout_closes_the_connection_and_publishes_the_will():
    watcher = Paho("will-watcher-ka")
    watcher.subscribe(("will/ka", 1))
    raw = Raw()
    started = time.monotonic()
    raw.connect("silent", keep_alive=1, will=("will/ka", b"silent is gone"))
    assert raw.closed_by_server()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5.0, f"closed after {elapsed:.2f} s, expected about 1.5 s"
    assert watcher.next().payload == b"silent is gone"
    watcher.stop()


@check
def the_will_is_published_on_an_unclean_close_and_not_after_disconnect():
    watcher = Paho("will-watcher")
    watcher.subscribe(("will/+", 1))
    polite = Paho("polite", will=("will/polite", b"polite died", 1))
    polite.stop()  # DISCONNECT: no will
    rude = Raw()
    rude.connect("rude", will=("will/rude", b"rude died"))
    rude.close()  # TCP close without DISCONNECT
    m = watcher.next()
    assert (m.topic, m.payload) == ("will/rude", b"rude died"), (m.topic, m.payload)
    watcher.nothing_for(0.5)
    watcher.stop()


@check
def retained_messages_reach_new_subscribers_and_an_empty_one_clears():
    pub = Paho("retainer")
    pub.publish("retained/a", b"kept", qos=1, retain=True)
    late = Paho("late")
    late.subscribe(("retained/+", 1))
    replayed = late.next()
    assert replayed.payload == b"kept"
    assert replayed.retain, "a retained message sent to a new subscription carries RETAIN (3.3.1.3)"
    pub.publish("retained/a", b"live", qos=1, retain=True)
    live = late.next()
    assert (live.payload, live.retain) == (b"live", False), live
    late.stop()
    pub.publish("retained/a", b"", qos=1, retain=True)
    later = Paho("later")
    later.subscribe(("retained/+", 1))
    later.nothing_for(0.5)
    later.stop()
    pub.stop()


@check
def dollar_topics_are_not_matched_by_leading_wildcards_and_sys_topics_carry_stats():
    everything = Paho("everything")
    everything.subscribe(("#", 0), ("+/switchyard/mqtt", 0))
    sys_sub = Paho("sys")
    sys_sub.subscribe(("$SYS/switchyard/broker/published", 0), ("$SYS/switchyard/mqtt", 0))
    got = {}
    while len(got) < 2:
        m = sys_sub.next()
        got[m.topic] = m.payload
    assert int(got["$SYS/switchyard/broker/published"]) >= 0
    assert b'"clients"' in got["$SYS/switchyard/mqtt"]
    time.sleep(0.5)  # at least one more $SYS round (the test runs them every 200 ms)
    while not everything.messages.empty():
        m = everything.next()
        assert not m.topic.startswith("$"), f"# matched {m.topic}"
    everything.stop()
    sys_sub.stop()


@check
def a_persistent_session_keeps_subscriptions_and_messages_while_away():
    away = Paho("persistent", clean_session=False)
    away.subscribe(("persist/t", 1))
    away.stop()
    pub = Paho("persist-pub")
    for i in range(5):
        pub.publish("persist/t", f"while away {i}".encode(), qos=1)
    pub.stop()
    back = Paho("persistent", clean_session=False, connect=False)
    flags = back.connect()
    assert flags.session_present, "CONNACK session present"
    got = [back.next().payload for _ in range(5)]
    assert got == [f"while away {i}".encode() for i in range(5)], got
    back.stop()
    clean = Paho("persistent", clean_session=True)  # a clean session discards it
    clean.stop()


@check
def unacknowledged_messages_are_resent_with_dup_on_reconnect():
    raw = Raw()
    raw.connect("no-acks", clean=False)
    raw.send(subscribe_packet(1, [("dup/t", 1)]))
    assert raw.read_packet()[0] == 0x90
    pub = Paho("dup-pub")
    pub.publish("dup/t", b"ack me", qos=1)
    first, body = raw.read_packet()
    assert first & 0xF0 == 0x30 and not first & 0x08, f"first delivery {first:#x}"
    raw.close()  # never acknowledged
    again = Raw()
    present, rc = again.connect("no-acks", clean=False)
    assert (present, rc) == (1, 0)
    first, body = again.read_packet()
    assert first & 0xF0 == 0x30 and first & 0x08, f"resent without DUP: {first:#x}"
    assert body.endswith(b"ack me")
    pkid = body[2 + len("dup/t") : 4 + len("dup/t")]
    again.send(packet(0x40, pkid))  # PUBACK
    again.send(connect_packet("ignored"))  # and end it (a second CONNECT)
    again.closed_by_server()
    clean = Raw()
    clean.connect("no-acks", clean=True)
    clean.close()
    pub.stop()


@check
def a_resent_qos_2_publish_is_delivered_once():
    sub = Paho("qos2-once")
    sub.subscribe(("once/t", 2))
    raw = Raw()
    raw.connect("qos2-raw")
    for dup in (False, True):
        raw.send(publish_packet("once/t", b"exactly once", qos=2, pkid=7, dup=dup))
        first, body = raw.read_packet()
        assert (first, body) == (0x50, b"\x00\x07"), (first, body)  # PUBREC
    raw.send(packet(0x62, b"\x00\x07"))  # PUBREL
    first, body = raw.read_packet()
    assert (first, body) == (0x70, b"\x00\x07"), (first, body)  # PUBCOMP
    assert sub.next().payload == b"exactly once"
    sub.nothing_for(0.5)
    raw.close()
    sub.stop()


@check
def overlapping_subscriptions_deliver_one_copy_per_matching_subscription():
    sub = Paho("overlap")
    sub.subscribe(("overlap/#", 0), ("overlap/+", 1))
    sub.publish("overlap/x", b"twice", qos=1)
    got = sorted(m.qos for m in (sub.next(), sub.next()))
    assert got == [0, 1], got
    sub.nothing_for(0.3)
    sub.stop()


def main():
    only = set(sys.argv[3:])
    for fn in CHECKS:
        if only and fn.__name__ not in only:
            continue
        fn()
        print(f"ok {fn.__name__}", flush=True)


if __name__ == "__main__":
    main()
