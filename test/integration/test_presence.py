"""
Presence on one worker (issue 4, docs/protocol.md "presence"): the first
connection of a user broadcasts online to the members of their channels, a
second device adds nothing and closing one of two removes nothing, the last
close broadcasts offline; a client that really stops answering pings (a raw
TCP socket after a manual upgrade that never reads) is declared offline
after chat.heartbeat_timeout (3s here) and its socket is closed; ready
carries the online members, the presence frame answers presence_state, and
chat_online(channel) agrees.
"""
import socket
import time
import uuid

from livelib import (EARLY_MARGIN, HEARTBEAT_TIMEOUT, LATE_MARGIN, RawWs, close_all,
                     error_for, new_user, online, presence_of, typing_of, wait_for_t)


def presence_frames(client, user):
    return [f["status"] for f in client.frames
            if f.get("type") == "presence" and f.get("userId") == user]


async def marker(live, channel, observer):
    """An ordered sync point: a fresh user H types in channel and the
    observer waits for it.  Whatever the worker broadcast to the observer
    before handling H's frame is received by then."""
    h = new_user("h")
    live.sql("SELECT chat_add_member(%s, %s)", (channel, h))
    ch = await live.client(h)
    await ch.send({"type": "typing", "channelId": str(channel)})
    await observer.wait_for(typing_of(channel, h), timeout=3, what="marker typing")
    return ch


async def test_first_connection_online_second_device_nothing_last_close_offline(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    cb = await live.client(b)
    a1 = a2 = h = None
    try:
        a1 = await live.client(a)
        f = await cb.wait_for(presence_of(a, "online"), timeout=3)
        assert f == {"type": "presence", "userId": a, "status": "online"}, f
        assert online(live, g) == sorted([a, b])

        # a second device adds nothing
        a2 = await live.client(a)
        # closing one of two devices removes nothing
        await a1.close()
        # Sync point instead of a sleep: H types after both events; the
        # worker (one loop, in order) would have broadcast a presence of a
        # before H's typing.  Plus a short bounded window (0.3s) for a frame
        # the worker may have flushed from the close in the same iteration.
        h = await marker(live, g, cb)
        await cb.expect_none(lambda f: f.get("type") == "presence" and f.get("userId") == a,
                             0.3, "presence change of a while a still has a device")
        assert presence_frames(cb, a) == ["online"], presence_frames(cb, a)
        assert a in online(live, g)

        # the last close broadcasts offline, once
        await a2.close()
        f = await cb.wait_for(presence_of(a, "offline"), timeout=3)
        assert f == {"type": "presence", "userId": a, "status": "offline"}, f
        assert presence_frames(cb, a) == ["online", "offline"]
        assert a not in online(live, g)
    finally:
        await close_all(a1, a2, cb, h)


async def test_presence_goes_to_members_of_every_channel_only(live):
    a, b, c, outsider = new_user("a"), new_user("b"), new_user("c"), new_user("x")
    live.group([a, b])
    live.group([c, a])
    live.group([outsider])             # the outsider has a channel, not with a
    cb, cc, cx = await live.client(b), await live.client(c), await live.client(outsider)
    ca = None
    try:
        ca = await live.client(a)
        for rx in (cb, cc):
            await rx.wait_for(presence_of(a, "online"), timeout=3)
        await ca.close()
        for rx in (cb, cc):
            await rx.wait_for(presence_of(a, "offline"), timeout=3)
        # the outsider shares no channel with a.  Bounded: b and c got both
        # frames, which the worker wrote in the same iterations.
        await cx.expect_none(lambda f: f.get("type") == "presence" and f.get("userId") == a,
                             0.3, "presence of a user sharing no channel")
    finally:
        await close_all(ca, cb, cc, cx)


async def test_one_presence_frame_however_many_channels_are_shared(live):
    """The presence frame names no channel, so a connection that shares
    three channels with the user gets it once, not once per channel."""
    a, b = new_user("a"), new_user("b")
    g = [live.group([a, b]), live.group([b, a]), live.direct(a, b)]
    cb = await live.client(b)
    ca = h = None
    try:
        ca = await live.client(a)
        await cb.wait_for(presence_of(a, "online"), timeout=3)
        await ca.close()
        await cb.wait_for(presence_of(a, "offline"), timeout=3)
        # Sync point: the worker wrote every copy of both frames in the
        # iterations that handled the open and the close, before H's typing.
        h = await marker(live, g[0], cb)
        await cb.expect_none(lambda f: f.get("type") == "presence" and f.get("userId") == a,
                             0.3, "another presence frame of a")
        assert presence_frames(cb, a) == ["online", "offline"], presence_frames(cb, a)
    finally:
        await close_all(ca, cb, h)


async def test_ready_presence_state_and_chat_online_agree(live):
    a, b, c, m = new_user("a"), new_user("b"), new_user("c"), new_user("m")
    g = live.group([a, b, c])
    ca = await live.client(a)
    cb = await live.client(b)
    cm = None
    try:
        # b connected after a: its ready lists a as online; c never connected
        ch = cb.ready_channel(g)
        assert a in ch["online"], ch
        assert c not in ch["online"], ch
        assert online(live, g) == sorted([a, b])
        for rx, ref in ((ca, "pa"), (cb, "pb")):
            await rx.send({"type": "presence", "channelId": str(g), "ref": ref})
            st = await rx.wait_for(lambda f, ref=ref: f.get("ref") == ref, timeout=3)
            assert st["type"] == "presence_state", st
            assert st["channelId"] == str(g)
            assert sorted(st["online"]) == sorted([a, b]), st
        # a non-member may not ask
        cm = await live.client(m)
        err = await error_for(cm, {"type": "presence", "channelId": str(g)}, ref="pm")
        assert err["code"] == "not_member", err
        err = await error_for(cm, {"type": "presence", "channelId": str(uuid.uuid4())}, ref="pn")
        assert err["code"] == "not_member", err
        # c comes and goes: all three views follow
        cc = await live.client(c)
        await ca.wait_for(presence_of(c, "online"), timeout=3)
        assert online(live, g) == sorted([a, b, c])
        await cb.send({"type": "presence", "channelId": str(g), "ref": "p2"})
        st = await cb.wait_for(lambda f: f.get("ref") == "p2", timeout=3)
        assert sorted(st["online"]) == sorted([a, b, c]), st
        await cc.close()
        await ca.wait_for(presence_of(c, "offline"), timeout=3)
        assert online(live, g) == sorted([a, b])
        await cb.send({"type": "presence", "channelId": str(g), "ref": "p3"})
        st = await cb.wait_for(lambda f: f.get("ref") == "p3", timeout=3)
        assert sorted(st["online"]) == sorted([a, b]), st
    finally:
        await close_all(ca, cb, cm)


async def test_chat_online_unknown_channel_is_an_error(live):
    import psycopg2
    try:
        live.sql("SELECT * FROM chat_online(%s)", (str(uuid.uuid4()),))
    except psycopg2.Error as e:
        assert e.pgcode == "P0002", (e.pgcode, str(e))
    else:
        raise AssertionError("chat_online of an unknown channel returned rows instead of P0002")


async def test_silent_client_declared_offline_after_heartbeat_timeout(live):
    """A raw socket that completes the upgrade and then never reads (so it
    never answers a ping): offline after heartbeat_timeout, socket closed."""
    mute, b = new_user("mute"), new_user("b")
    g = live.group([mute, b])
    cb = await live.client(b)
    raw = None
    try:
        raw = RawWs(live.chat_port, live.token(mute))     # reads only the 101 head
        t0 = raw.handshake_done
        await cb.wait_for(presence_of(mute, "online"), timeout=3)
        assert mute in online(live, g)
        _, t_off = await wait_for_t(cb, presence_of(mute, "offline"),
                                    timeout=HEARTBEAT_TIMEOUT + LATE_MARGIN + 3)
        silent = t_off - t0
        assert silent >= HEARTBEAT_TIMEOUT - EARLY_MARGIN, \
            "declared offline after %.2fs of silence; heartbeat_timeout is %.1fs" \
            % (silent, HEARTBEAT_TIMEOUT)
        assert silent <= HEARTBEAT_TIMEOUT + LATE_MARGIN + 1.0, silent
        assert mute not in online(live, g)
        assert presence_frames(cb, mute) == ["online", "offline"]
        # and the server closed the socket: reading now (after the fact)
        # drains what it had sent (ready, pings, maybe a close frame) and
        # then meets EOF
        deadline = time.monotonic() + 3
        eof = False
        while time.monotonic() < deadline:
            try:
                raw.read_frame(timeout=max(0.05, deadline - time.monotonic()))
            except (EOFError, ConnectionResetError):
                eof = True
                break
            except socket.timeout:
                break
        assert eof, "the server never closed the socket of the silent client"
        # b itself (its library answers pings) is still connected and fine
        await cb.send({"type": "ping", "ref": "alive"})
        assert (await cb.wait_for(lambda f: f.get("ref") == "alive", timeout=3))["type"] == "pong"
    finally:
        if raw:
            raw.close()
        await close_all(cb)


async def test_silent_device_does_not_take_the_user_offline(live):
    """One device of the user goes silent; another stays: the silent one is
    closed after the timeout, but the user stays online (no flapping)."""
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    cb = await live.client(b)
    ca = raw = None
    try:
        ca = await live.client(a)
        await cb.wait_for(presence_of(a, "online"), timeout=3)
        raw = RawWs(live.chat_port, live.token(a))
        t0 = raw.handshake_done
        # wait (with a deadline) for the silent device's end: its socket
        # reaches EOF; we read only after the timeout has passed
        closed = None
        deadline = t0 + HEARTBEAT_TIMEOUT + LATE_MARGIN + 2
        while time.monotonic() < deadline:
            # let the client loop run (b's pings are answered) meanwhile
            await cb.collect(0.2)
            if time.monotonic() - t0 < HEARTBEAT_TIMEOUT:
                continue
            try:
                while True:
                    raw.read_frame(timeout=0.05)
            except (EOFError, ConnectionResetError):
                closed = time.monotonic()
                break
            except socket.timeout:
                continue
        assert closed is not None, "the silent device was never closed"
        # Ordered sync point: a marker typing after the close was handled.
        h = await marker(live, g, cb)
        await h.close()
        assert presence_frames(cb, a) == ["online"], presence_frames(cb, a)
        assert a in online(live, g)
    finally:
        if raw:
            raw.close()
        await close_all(ca, cb)


async def test_ready_online_is_the_same_on_every_device(live):
    """ready's online list is "the members with a live connection", like
    presence_state and chat_online: it must not depend on whether the user
    happens to have another device connected already."""
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    cb = await live.client(b)
    a1 = await live.client(a)
    a2 = await live.client(a)
    try:
        first, second = sorted(a1.ready_channel(g)["online"]), sorted(a2.ready_channel(g)["online"])
        await a1.send({"type": "presence", "channelId": str(g), "ref": "st"})
        st = sorted((await a1.wait_for(lambda f: f.get("ref") == "st", timeout=3))["online"])
        assert st == online(live, g) == sorted([a, b]), (st, online(live, g))
        assert first == second, \
            "ready.online differs between a's first device %r and its second %r" % (first, second)
        assert first == st, "ready.online %r, presence_state %r" % (first, st)
    finally:
        await close_all(cb, a1, a2)


async def test_a_full_presence_table_says_so(cluster_factory):
    """chat.max_online_users = 16: the 17th and 18th users are served (ready,
    send) but not listed online, and the server log says why."""
    from conftest import Client, async_wait_until
    c = cluster_factory("presence-full", **{"chat.max_online_users": "16"})
    users = [new_user("p%d" % i) for i in range(18)]
    g = c.group(users)
    clients = []
    try:
        for u in users:
            clients.append(await Client.open(c, u))
        await async_wait_until(lambda: len(online(c, g)) == 16, 5,
                               what="16 users listed online")
        listed = set(online(c, g))
        assert listed < set(users), listed
        unlisted = [cl for cl in clients if cl.user not in listed]
        assert len(unlisted) == 2
        # served all the same
        ack = await unlisted[0].send_message(g, "not listed, still here")
        assert ack["type"] == "ack", ack
        await async_wait_until(lambda: "chat presence table is full" in c.log_text(), 5,
                               what="the WARNING in the server log")
        assert "Raise chat.max_online_users (now 16)" in c.log_text()
    finally:
        await close_all(*clients)
