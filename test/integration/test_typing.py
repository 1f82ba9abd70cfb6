"""
Typing indicators (issue 4, docs/protocol.md "typing"): broadcast to the
other members with expiresInMs and never to the typer's own connections;
server-side debounce (chat.typing_debounce = 1s here) where a re-send inside
the window is not broadcast but extends the indicator; expiry
chat.typing_timeout (1.5s here) after the last typing event; typing_stopped
at once when the typer sends a message there or closes their last
connection; not_member for a channel the user is not in.

Times are measured with time.monotonic() on our side: a broadcast reaches
us a little after the server decided it, so "not before the timeout" is
checked as >= timeout - EARLY_MARGIN from the moment we sent the event.
"""
import time
import uuid

from livelib import (EARLY_MARGIN, LATE_MARGIN, TYPING_DEBOUNCE, TYPING_TIMEOUT,
                     close_all, count, error_for, new_user, sleep_until,
                     stopped_of, typing_of, wait_for_t)


def typing(channel, ref=None):
    f = {"type": "typing", "channelId": str(channel)}
    if ref is not None:
        f["ref"] = ref
    return f


async def test_typing_reaches_others_not_the_typers_devices(live):
    a, b, c = new_user("a"), new_user("b"), new_user("c")
    g = live.group([a, b, c])
    a1 = await live.client(a)
    a2 = await live.client(a)          # the typer's second device
    cb = await live.client(b)
    cc = await live.client(c)
    try:
        assert a1.ready["typingTimeoutMs"] == int(TYPING_TIMEOUT * 1000)
        assert a1.ready["typingDebounceMs"] == int(TYPING_DEBOUNCE * 1000)
        await a1.send(typing(g))
        for rx in (cb, cc):
            f = await rx.wait_for(typing_of(g, a), timeout=3, what="a's typing")
            assert f == {"type": "typing", "channelId": str(g), "userId": a,
                         "expiresInMs": int(TYPING_TIMEOUT * 1000)}, f
        # Negative check, bounded: the typer's connections are skipped in the
        # same loop iteration that wrote to b and c (one worker), so by now a
        # frame for them would at most be in flight; 0.3s covers that.
        for own in (a1, a2):
            await own.expect_none(lambda f: f.get("type") == "typing", 0.3,
                                  "typing frame on the typer's own connection")
        # the indicator ends for everyone else
        for rx in (cb, cc):
            await rx.wait_for(stopped_of(g, a), timeout=TYPING_TIMEOUT + LATE_MARGIN + 1)
        # still never a typing frame on the typer's devices
        assert count(a1, lambda f: f.get("type") == "typing") == 0
        assert count(a2, lambda f: f.get("type") == "typing") == 0
    finally:
        await close_all(a1, a2, cb, cc)


async def test_indicator_expires_typing_timeout_after_the_event(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca = await live.client(a)
    cb = await live.client(b)
    try:
        t0 = time.monotonic()
        await ca.send(typing(g))
        _, t_typing = await wait_for_t(cb, typing_of(g, a), timeout=3)
        assert t_typing - t0 < TYPING_TIMEOUT / 2, "typing broadcast took %.2fs" % (t_typing - t0)
        stopped, t_stop = await wait_for_t(cb, stopped_of(g, a),
                                           timeout=TYPING_TIMEOUT + LATE_MARGIN + 2)
        assert stopped == {"type": "typing_stopped", "channelId": str(g), "userId": a}, stopped
        lasted = t_stop - t0
        assert lasted >= TYPING_TIMEOUT - EARLY_MARGIN, \
            "typing_stopped %.3fs after the typing event; typing_timeout is %.1fs" \
            % (lasted, TYPING_TIMEOUT)
        assert lasted <= TYPING_TIMEOUT + LATE_MARGIN, \
            "typing_stopped only %.3fs after the typing event (timeout %.1fs)" % (lasted, TYPING_TIMEOUT)
        assert count(cb, typing_of(g, a)) == 1
        assert count(cb, stopped_of(g, a)) == 1
    finally:
        await close_all(ca, cb)


async def test_debounce_holds_while_typing_and_resends_extend(live):
    """Typing every 300ms for 3s: a broadcast at most every typing_debounce
    (1s), so about duration/debounce of them, and the indicator stays up the
    whole time (every re-send extends it) until typing_timeout after the
    last event."""
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca = await live.client(a)
    cb = await live.client(b)
    try:
        period, duration = 0.3, 3.0
        start = time.monotonic()
        sent = []
        n = int(duration / period) + 1          # at 0, 0.3, ..., 3.0
        for i in range(n):
            await sleep_until(start + i * period)
            await ca.send(typing(g))
            sent.append(time.monotonic())
        last_event = sent[-1]
        stopped, t_stop = await wait_for_t(cb, stopped_of(g, a),
                                           timeout=TYPING_TIMEOUT + LATE_MARGIN + 2)
        typings = [f for f in cb.frames if typing_of(g, a)(f)]
        assert all(f["expiresInMs"] == int(TYPING_TIMEOUT * 1000) for f in typings), typings
        expected = duration / TYPING_DEBOUNCE      # 3 (at ~0, ~1.2, ~2.4)
        assert expected - 1 <= len(typings) <= expected + 1, \
            "%d typing broadcasts for %d typing frames over %.1fs with a %.1fs debounce " \
            "(expected about %d)" % (len(typings), n, duration, TYPING_DEBOUNCE, expected)
        # no typing_stopped while the user kept typing: the first one is the
        # one after the last event, typing_timeout later
        stops = [i for i, f in enumerate(cb.frames) if stopped_of(g, a)(f)]
        assert len(stops) == 1, "typing_stopped %d times: %r" % (len(stops), cb.frames)
        assert cb.frames.index(typings[-1]) < stops[0]
        after_last = t_stop - last_event
        assert after_last >= TYPING_TIMEOUT - EARLY_MARGIN, \
            "typing_stopped %.3fs after the last typing event (timeout %.1fs): the re-sends " \
            "inside the debounce window did not extend the indicator" % (after_last, TYPING_TIMEOUT)
        assert after_last <= TYPING_TIMEOUT + LATE_MARGIN, after_last
    finally:
        await close_all(ca, cb)


async def test_debounce_spacing_of_broadcasts(live):
    """The broadcasts of one user in one channel are at least
    typing_debounce apart, measured where they arrive."""
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca = await live.client(a)
    cb = await live.client(b)
    try:
        period, duration = 0.3, 3.0
        start = time.monotonic()
        arrivals = []

        async def collect_until(t):
            while time.monotonic() < t:
                try:
                    _, at = await wait_for_t(cb, typing_of(g, a), timeout=max(0.01, t - time.monotonic()))
                    arrivals.append(at)
                except AssertionError:
                    break   # nothing more before t
        for i in range(int(duration / period) + 1):
            await ca.send(typing(g))
            await collect_until(start + (i + 1) * period)
        gaps = [y - x for x, y in zip(arrivals, arrivals[1:])]
        assert len(arrivals) >= 2, arrivals
        assert all(gap >= TYPING_DEBOUNCE - EARLY_MARGIN for gap in gaps), \
            "typing broadcasts closer than the %.1fs debounce: gaps %r" % (TYPING_DEBOUNCE, gaps)
        # and the debounce does not swallow the indicator: one per window
        assert all(gap <= TYPING_DEBOUNCE + period + LATE_MARGIN for gap in gaps), gaps
        await cb.wait_for(stopped_of(g, a), timeout=TYPING_TIMEOUT + LATE_MARGIN + 2)
    finally:
        await close_all(ca, cb)


async def test_sending_a_message_stops_typing_at_once(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca = await live.client(a)
    cb = await live.client(b)
    try:
        t0 = time.monotonic()
        await ca.send(typing(g))
        await cb.wait_for(typing_of(g, a), timeout=3)
        k = await ca.send_message(g, "done typing")
        assert k["type"] == "ack", k
        t_send = time.monotonic()
        _, t_stop = await wait_for_t(cb, stopped_of(g, a), timeout=3)
        m = (await cb.wait_seen(lambda f: f.get("type") == "message"
                                and f["message"]["channelId"] == str(g), timeout=5))["message"]
        assert m["content"] == "done typing"
        # typing_stopped before the message, wherever the typer is: from
        # another worker or host (CHAT_TOPOLOGY=mixed) the message may
        # arrive first, and ends the relayed indicator there first
        kinds = [f.get("type") for f in cb.frames
                 if f.get("type") in ("typing_stopped", "message")]
        assert kinds[:2] == ["typing_stopped", "message"], kinds
        # well before the indicator would have expired by itself
        assert t_stop - t0 < TYPING_TIMEOUT - 0.5, \
            "typing_stopped %.2fs after typing, %.2fs after the send: not at once" \
            % (t_stop - t0, t_stop - t_send)
        # and only once: expiry must not send a second one later.  Bounded
        # negative wait: past the moment the old indicator would have expired.
        await cb.expect_none(stopped_of(g, a), max(0.1, t0 + TYPING_TIMEOUT + 0.5 - time.monotonic()),
                             "a second typing_stopped")
    finally:
        await close_all(ca, cb)


async def test_sending_in_another_channel_does_not_stop_typing(live):
    a, b = new_user("a"), new_user("b")
    g, other = live.group([a, b]), live.group([a, b])
    ca = await live.client(a)
    cb = await live.client(b)
    try:
        t0 = time.monotonic()
        await ca.send(typing(g))
        await cb.wait_for(typing_of(g, a), timeout=3)
        k = await ca.send_message(other, "elsewhere")
        assert k["type"] == "ack", k
        _, t_stop = await wait_for_t(cb, stopped_of(g, a), timeout=TYPING_TIMEOUT + LATE_MARGIN + 2)
        assert t_stop - t0 >= TYPING_TIMEOUT - EARLY_MARGIN, \
            "a message in another channel ended the indicator after %.2fs" % (t_stop - t0)
    finally:
        await close_all(ca, cb)


async def test_sending_from_sql_stops_typing(live):
    """The user's message reaches the channel through chat_send (the
    application's path): 'Alex is typing' must not outlive Alex's message."""
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    ca = await live.client(a)
    cb = await live.client(b)
    try:
        t0 = time.monotonic()
        await ca.send(typing(g))
        await cb.wait_for(typing_of(g, a), timeout=3)
        live.send_sql(g, a, "sent by the application for a")
        _, t_stop = await wait_for_t(cb, stopped_of(g, a), timeout=TYPING_TIMEOUT + LATE_MARGIN + 2)
        await cb.wait_message(g)
        assert t_stop - t0 < TYPING_TIMEOUT - 0.5, \
            "typing_stopped only %.2fs after the typing event although a's message (chat_send) " \
            "came: it came from the expiry, not from the send" % (t_stop - t0)
        # and before the message, as when a sends over the socket
        kinds = [f.get("type") for f in cb.frames
                 if f.get("type") in ("typing_stopped", "message")]
        assert kinds == ["typing_stopped", "message"], kinds
    finally:
        await close_all(ca, cb)


async def test_last_connection_closing_stops_typing(live):
    a, b = new_user("a"), new_user("b")
    g = live.group([a, b])
    typer = await live.client(a)
    other_device = await live.client(a)
    cb = await live.client(b)
    try:
        t0 = time.monotonic()
        await typer.send(typing(g))
        await cb.wait_for(typing_of(g, a), timeout=3)
        # a device that is not the last one closes: the indicator stays.
        # Bounded negative wait (0.3s): the server handles the close in the
        # iteration that sees the EOF; well inside the 1.5s timeout.
        await other_device.close()
        await cb.expect_none(stopped_of(g, a), 0.3, "typing_stopped while a still has a connection")
        t_close = time.monotonic()
        await typer.close()
        _, t_stop = await wait_for_t(cb, stopped_of(g, a), timeout=TYPING_TIMEOUT + LATE_MARGIN + 2)
        assert t_stop - t0 < TYPING_TIMEOUT - 0.3, \
            "typing_stopped %.2fs after typing (%.2fs after the last close): it came from the " \
            "expiry, not from the close" % (t_stop - t0, t_stop - t_close)
        assert count(cb, stopped_of(g, a)) == 1
    finally:
        await close_all(typer, other_device, cb)


async def test_typing_in_a_channel_not_joined_is_not_member(live):
    a, b, m = new_user("a"), new_user("b"), new_user("mallory")
    g = live.group([a, b])
    cm = await live.client(m)
    cb = await live.client(b)
    try:
        err = await error_for(cm, typing(g), ref="t1")
        assert err["code"] == "not_member", err
        err = await error_for(cm, typing(uuid.uuid4()), ref="t2")
        assert err["code"] == "not_member", err
        # bad shapes are bad_request
        err = await error_for(cm, {"type": "typing"}, ref="t3")
        assert err["code"] == "bad_request", err
        err = await error_for(cm, {"type": "typing", "channelId": "not-a-uuid"}, ref="t4")
        assert err["code"] == "bad_request", err
        # and nothing leaked to the members.  Bounded: one worker, the refusal
        # above was answered, so a leaked broadcast would already be queued.
        await cb.expect_none(lambda f: f.get("type") in ("typing", "typing_stopped"), 0.3,
                             "typing of a non-member")
        # the connection stays usable
        await cm.send({"type": "ping", "ref": "p"})
        pong = await cm.wait_for(lambda f: f.get("ref") == "p")
        assert pong["type"] == "pong"
    finally:
        await close_all(cm, cb)
