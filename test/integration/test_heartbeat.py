"""
Heartbeat over a raw TCP socket (so that no library answers pings for us):
the server pings every chat.heartbeat_interval (1s here), and a client that
stays silent is closed after chat.heartbeat_timeout (3s here); one that
answers the pings stays.
"""
import json
import socket
import time
import uuid

from conftest import RawWs, new_user

INTERVAL = 1.0
TIMEOUT = 3.0


def test_silent_client_is_pinged_then_closed(cluster):
    user = new_user("mute")
    ws = RawWs(cluster.chat_port, cluster.token(user))
    try:
        op, payload = ws.read_frame()
        assert op == 0x1 and json.loads(payload)["type"] == "ready"
        assert json.loads(payload)["heartbeatMs"] == int(INTERVAL * 1000)
        pings = []
        closed_at = None
        while True:
            try:
                op, payload = ws.read_frame(timeout=TIMEOUT * 3)
            except (EOFError, ConnectionResetError):
                closed_at = time.monotonic()
                break
            if op == 0x9:
                pings.append(time.monotonic())
            # anything else (a close frame before the TCP close is fine) is
            # read and never answered
        silent_for = closed_at - ws.handshake_done
        # pinged about every interval while it lasted
        assert len(pings) >= 2, pings
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert all(0.5 * INTERVAL <= g_ <= 2.0 * INTERVAL for g_ in gaps), gaps
        assert pings[0] - ws.handshake_done <= 2.0 * INTERVAL
        # closed after heartbeat_timeout of silence, not much before or after
        assert TIMEOUT * 0.9 <= silent_for <= TIMEOUT + 2.0, silent_for
    finally:
        ws.close()


def test_client_answering_pings_stays_open(cluster):
    user = new_user("chatty")
    g = cluster.group([user])
    ws = RawWs(cluster.chat_port, cluster.token(user))
    try:
        op, payload = ws.read_frame()
        assert op == 0x1 and json.loads(payload)["type"] == "ready"
        pings = 0
        end = time.monotonic() + TIMEOUT + 1.5
        while time.monotonic() < end:
            try:
                op, payload = ws.read_frame(timeout=end - time.monotonic())
            except socket.timeout:
                break
            except (EOFError, ConnectionResetError):
                raise AssertionError("closed although every ping was answered "
                                     "(after %d pings)" % pings)
            if op == 0x9:
                pings += 1
                ws.send_frame(0xA, payload)
        assert pings >= 3
        # and the connection still works: a message round trip
        ws.send_frame(0x1, json.dumps({"type": "send", "clientId": str(uuid.uuid4()),
                                       "channelId": str(g), "content": "alive",
                                       "ref": "alive"}).encode())
        while True:
            op, payload = ws.read_frame(timeout=5)
            if op == 0x9:
                ws.send_frame(0xA, payload)
            elif op == 0x1:
                f = json.loads(payload.decode("utf-8"))
                if f.get("ref") == "alive":
                    assert f["type"] == "ack" and f["seq"] == 1, f
                    break
    finally:
        ws.close()
