#!/usr/bin/python3
"""ws_receive.py PORT SECRET USER CHANNEL CONTENT -- COMMAND...

A WebSocket client of the installed package's worker (python3-websockets):
connects as USER with an HS256 token (PyJWT) minted from SECRET, retrying
until the worker listens (30 s), waits for `ready` and checks that CHANNEL is
in it, then runs COMMAND (a psql that calls chat_send()) and waits for the
`message` frame of CHANNEL with CONTENT.  Prints the frame; exits 0 when it
came, 1 when not (with the reason).
"""
import asyncio
import json
import subprocess
import sys
import time

import jwt
import websockets

DEADLINE_S = 30


async def main(port, secret, user, channel, content, command):
    now = int(time.time())
    token = jwt.encode({"sub": user, "iat": now, "exp": now + 600}, secret, algorithm="HS256")
    url = "ws://127.0.0.1:%s/ws?token=%s" % (port, token)
    end = time.monotonic() + DEADLINE_S
    while True:  # until the worker listens
        try:
            ws = await websockets.connect(url, open_timeout=5)
            break
        except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake) as e:
            if time.monotonic() > end:
                print("no connection to %s: %s" % (url, e))
                return 1
            await asyncio.sleep(0.2)
    try:
        return await receive(ws, channel, content, command, end)
    finally:
        await ws.close()


async def receive(ws, channel, content, command, end):
    ready = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
    if ready.get("type") != "ready":
        print("first frame is not ready: %s" % ready)
        return 1
    if channel not in [c.get("id") for c in ready.get("channels", [])]:
        print("channel %s not in ready: %s" % (channel, ready))
        return 1
    r = subprocess.run(command, capture_output=True, text=True)
    if r.returncode != 0:
        print("command failed: %s%s" % (r.stdout, r.stderr))
        return 1
    while time.monotonic() < end:
        try:
            f = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, end - time.monotonic())))
        except asyncio.TimeoutError:
            break
        m = f.get("message") or {}
        if f.get("type") == "message" and m.get("channelId") == channel \
                and m.get("content") == content:
            print(json.dumps(f))
            return 0
    print("no message frame with %r within %d s" % (content, DEADLINE_S))
    return 1


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) < 7 or a[5] != "--":
        sys.exit(__doc__)
    sys.exit(asyncio.run(main(a[0], a[1], a[2], a[3], a[4], a[6:])))
