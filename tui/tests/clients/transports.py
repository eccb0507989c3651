"""paho-mqtt over TLS, WebSockets and WebSockets over TLS against one `switchyard serve`.

Run by tests/serve_tls.rs as
`python3 transports.py CA TLS_PORT WS_PORT WSS_PORT USER PASSWORD`: the server has a password file
with USER, and its TLS certificate is signed by CA. Prints `ok NAME` per check and exits non-zero at
the first failure. Every wait is bounded; only 127.0.0.1 is used.
"""

import queue
import sys
import time

import paho.mqtt.client as mqtt

CA = sys.argv[1]
TLS_PORT, WS_PORT, WSS_PORT = (int(p) for p in sys.argv[2:5])
USER, PASSWORD = sys.argv[5], sys.argv[6]
WAIT = 10.0


def client(name, transport, tls, login=True):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, transport=transport)
    if transport == "websockets":
        c.ws_set_options(path="/mqtt")
    if tls:
        c.tls_set(ca_certs=CA)
    if login:
        c.username_pw_set(USER, PASSWORD)
    return c


def connack(c, port):
    """Connects `c` to `port` and returns the CONNACK's reason code as an int."""
    codes = queue.Queue()
    c.on_connect = lambda _c, _u, _f, reason, _p: codes.put(reason.value)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    return codes.get(timeout=WAIT)


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name} {detail}")
    print(f"ok {name}", flush=True)


# Anonymous clients are refused on WebSockets too once a password file is given (CONNACK 5).
anonymous = client("ws-anonymous", "websockets", tls=False, login=False)
code = connack(anonymous, WS_PORT)
anonymous.loop_stop()
# paho 2 reports MQTT 3.1.1's CONNACK 5 as MQTT 5's reason code 135, "not authorized".
check("anonymous refused over websockets", code == 135, code)

# A subscriber over plain WebSockets gets what publishers send over TLS and over WebSockets+TLS.
received = queue.Queue()
sub = client("ws-sub", "websockets", tls=False)
sub.on_message = lambda _c, _u, m: received.put((m.topic, m.payload))
subscribed = queue.Queue()
sub.on_subscribe = lambda _c, _u, _m, codes, _p: subscribed.put([c.value for c in codes])
check("websockets login", connack(sub, WS_PORT) == 0)
sub.subscribe("transports/#", qos=1)
check("websockets subscribe", subscribed.get(timeout=WAIT) == [1])

for name, transport, port in [
    ("tls", "tcp", TLS_PORT),
    ("wss", "websockets", WSS_PORT),
]:
    pub = client(f"{name}-pub", transport, tls=True)
    check(f"{name} login", connack(pub, port) == 0)
    info = pub.publish(f"transports/{name}", f"over {name}".encode(), qos=1)
    info.wait_for_publish(timeout=WAIT)
    check(f"{name} publish acknowledged", info.is_published())
    topic, payload = received.get(timeout=WAIT)
    expected = (f"transports/{name}", f"over {name}".encode())
    check(f"{name} delivered over websockets", (topic, payload) == expected, (topic, payload))
    pub.disconnect()
    pub.loop_stop()

# A large message (larger than a WebSocket read buffer) arrives whole.
big = bytes(range(256)) * 1024
pub = client("wss-big", "websockets", tls=True)
check("wss login again", connack(pub, WSS_PORT) == 0)
pub.publish("transports/big", big, qos=1).wait_for_publish(timeout=WAIT)
topic, payload = received.get(timeout=WAIT)
check("256 KiB over wss and ws", payload == big, len(payload))
pub.disconnect()
pub.loop_stop()
sub.disconnect()
sub.loop_stop()
time.sleep(0.2)
