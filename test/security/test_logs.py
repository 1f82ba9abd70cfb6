"""
Secrets in the server log.  A session at the default log level with good
and bad tokens (upgrade, Bearer, refresh, oversized), message contents that
are stored, refused (too large, NUL, not a member), edited, sent through SQL
and rolled back, a database failure inside the worker (statement timeout
while the table is locked, which is logged) and a worker restart; then the
whole server log is searched: no token, no part of one, no secret and no
message content may appear.
"""
import asyncio
import os
import signal
import time
import uuid

import jwt
import pytest

from seclib import (Client, assert_401, hs_token, new_user, start, upgrade, wait_until,
                    worker_pid)


@pytest.fixture(scope="module")
def lg():
    c = start("logs", **{"chat.statement_timeout": "'300ms'", "chat.max_message_bytes": "'1kB'"})
    yield c
    c.stop()


def marker(tag):
    return "SECRET-%s-%s" % (tag, uuid.uuid4().hex)


async def test_no_token_and_no_content_in_the_log(lg):
    assert lg.sql1("SHOW log_min_messages") == "warning"
    assert lg.sql1("SHOW log_statement") == "none"
    tokens, contents = [], []
    a, b = new_user("a"), new_user("b")
    g = lg.group([a, b])
    other = lg.group([new_user("x"), new_user("y")])

    def tok(sub, ttl=600, key=None, **extra):
        t = jwt.encode(dict({"sub": sub, "iat": int(time.time()), "exp": int(time.time()) + ttl},
                            **extra), key or lg.secret, algorithm="HS256")
        tokens.append(t)
        return t

    # upgrades refused in every way, by query and by header
    for t in (tok(a, key="wrong"), tok(a, ttl=-3600), tok(a, nbf=int(time.time()) + 3600),
              hs_token({"alg": "none"}, {"sub": a, "exp": int(time.time()) + 60}, b"")[:-43],
              tok(a, pad="P" * 9000)):
        tokens.append(t)
        assert_401(upgrade(lg.chat_port, t))
        assert_401(upgrade(lg.chat_port, bearer=t))
    t = tok(a)
    r = upgrade(lg.chat_port, t, bearer=tok(a, jti="different"))
    assert 400 <= r.status < 500
    # good connections by query and by Bearer
    ca = await Client.open(lg, a, token=tok(a))
    cb = await Client.open(lg, b, token=tok(b))
    # refresh: good, other user, expired, garbage
    for i, rt in enumerate((tok(a, ttl=1200), tok(b), tok(a, ttl=-100), tok(a, key="nope"))):
        await ca.send({"type": "refresh", "token": rt, "ref": "r%d" % i})
        await ca.wait_for(lambda f, i=i: f.get("ref") == "r%d" % i)

    # contents: stored, edited, refused
    m = marker("stored")
    contents.append(m)
    k = await ca.send_message(g, m)
    assert k["type"] == "ack"
    e = marker("edited")
    contents.append(e)
    await ca.send({"type": "edit", "messageId": k["serverId"], "content": e, "ref": "e"})
    await cb.wait_for(lambda f: f.get("type") == "message_updated")
    for tag, content, channel in (("toolarge", "L" * 2000, g), ("nul", "a\u0000b", g),
                                  ("notmember", "", other)):
        mk = marker(tag)
        contents.append(mk)
        f = await ca.send_message(channel, mk + content)
        assert f["type"] == "error", f
    # a reply to a message of another channel: refused by the database
    mk = marker("badreply")
    contents.append(mk)
    x = lg.send_sql(other, lg.sql1("SELECT user_id FROM chat.channel_members "
                                   "WHERE channel_id = %s LIMIT 1", (other,)), marker("sqlother"))
    f = await ca.send_message(g, mk, replyTo=str(x[0]))
    assert f["type"] == "error", f

    # a database failure inside the worker, which the worker logs (what the
    # client is told is checked in the test below; here only the log matters)
    mk = marker("timeout")
    contents.append(mk)
    locker = lg.connect(autocommit=False)
    cid = str(uuid.uuid4())
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE chat.messages IN ACCESS EXCLUSIVE MODE")
            await ca.send({"type": "send", "clientId": cid, "channelId": str(g), "content": mk})
            wait_until(lambda: "chat worker query failed" in lg.log_text(), timeout=10,
                       what="the worker logging its failed query")
    finally:
        locker.rollback()
        locker.close()
    f = await ca.wait_for(lambda f: f.get("clientId") == cid, timeout=10, what="answer")
    if f["type"] != "ack":
        f = await ca.send_message(g, mk, client_id=cid)
    assert f["type"] == "ack", f

    # SQL sends, committed and rolled back
    mk = marker("sqlsend")
    contents.append(mk)
    lg.send_sql(g, a, mk)
    mk = marker("rolledback")
    contents.append(mk)
    conn = lg.connect(autocommit=False)
    with conn.cursor() as cur:
        cur.execute("SELECT chat_send(%s, %s, %s)", (g, a, mk))
    conn.rollback()
    conn.close()
    await cb.wait_for(lambda f: f.get("type") == "message"
                      and f["message"]["content"] == contents[-2], timeout=5)

    # a worker restart in the middle of it all
    pid = worker_pid(lg)
    os.kill(pid, signal.SIGTERM)
    await ca.wait_closed(timeout=10)
    wait_until(lambda: lg.worker_pids() and lg.worker_pids()[0] != pid, timeout=15,
               what="the worker back")
    wait_until(lambda: lg.healthz() == 200, timeout=15, what="/healthz")
    c2 = await Client.open(lg, a, token=tok(a))
    mk = marker("afterrestart")
    contents.append(mk)
    assert (await c2.send_message(g, mk))["type"] == "ack"
    await asyncio.gather(c2.close(), cb.close())

    log = lg.log_text()
    assert "listening on port" in log and "chat worker query failed" in log, \
        "the log is not the server's, or the failure path logged nothing"
    leaks = []
    for t in set(tokens):
        h, p, s = (t.split(".") + ["", ""])[:3]
        for what, part in (("token", t), ("payload", p), ("signature", s)):
            if len(part) >= 16 and part in log:
                leaks.append("%s of %s..." % (what, t[:30]))
    for c in contents:
        if c in log:
            leaks.append("content %s" % c)
    if lg.secret in log:
        leaks.append("chat.jwt_secret")
    assert not leaks, "the server log holds secrets:\n  " + "\n  ".join(leaks)


async def test_database_failure_in_the_worker_is_an_internal_error(lg):
    """docs/protocol.md: `internal` is "a database failure; nothing was
    stored, retry with the same clientId".  A send that hits
    chat.statement_timeout (the table is locked by another session) must be
    answered with it in about two timeouts (the batch and its isolated
    retry), the connection must stay usable, and the retry must be stored
    once."""
    a, b = new_user("a"), new_user("b")
    g = lg.group([a, b])
    ca, cb = await lg.client(a), await lg.client(b)
    cid = str(uuid.uuid4())
    log_start = len(lg.log_text())
    locker = lg.connect(autocommit=False)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE chat.messages IN ACCESS EXCLUSIVE MODE")
            t0 = time.monotonic()
            await ca.send({"type": "send", "clientId": cid, "channelId": str(g),
                           "content": "blocked", "ref": "blocked"})
            try:
                f = await ca.wait_for(lambda f: f.get("clientId") == cid, timeout=3,
                                      what="the answer while the table is locked")
            except AssertionError:
                f = None
            took = time.monotonic() - t0
            log = lg.log_text()[log_start:]
    finally:
        locker.rollback()
        locker.close()
    assert "errstart was not called" not in log, \
        "the worker's error handling broke on a statement timeout: the log says " \
        "'ERROR: errstart was not called' (an error re-thrown after FlushErrorState)"
    assert f is not None, "no answer to a send within 3s while its batch timed out (300ms)"
    assert f["type"] == "error" and f["code"] == "internal" and f.get("ref") == "blocked", f
    assert took < 2.5, took
    assert lg.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s", (cid,)) == 0
    k = await ca.send_message(g, "blocked", client_id=cid)
    assert k["type"] == "ack" and k["duplicate"] is False, k
    assert (await cb.wait_message(g, lambda m: m["clientId"] == cid))["content"] == "blocked"
    assert lg.sql1("SELECT count(*) FROM chat.messages WHERE client_id = %s", (cid,)) == 1
    await asyncio.gather(ca.close(), cb.close())


def test_secrets_are_hidden_from_ordinary_roles(lg):
    """chat.jwt_secret and chat.ssl_key_file are superuser-only settings:
    an application role sees neither through SHOW, current_setting() nor
    pg_settings."""
    role = "app_" + uuid.uuid4().hex[:8]
    lg.sql("CREATE ROLE %s LOGIN" % role)
    c = lg.connect(autocommit=False)
    try:
        with c.cursor() as cur:
            cur.execute("SET ROLE %s" % role)
            for q in ("SHOW chat.jwt_secret", "SELECT current_setting('chat.jwt_secret')",
                      "SHOW chat.ssl_key_file"):
                cur.execute("SAVEPOINT s")
                try:
                    cur.execute(q)
                    got = cur.fetchall()
                except Exception:  # noqa: BLE001 - refused is the point
                    cur.execute("ROLLBACK TO SAVEPOINT s")
                    continue
                raise AssertionError("%s as %s returned %r" % (q, role, got))
            cur.execute("SELECT name, setting FROM pg_settings WHERE name LIKE 'chat.%'")
            rows = dict(cur.fetchall())
            assert lg.secret not in [v for v in rows.values()], rows
            assert "chat.jwt_secret" not in rows or rows["chat.jwt_secret"] in (None, ""), rows
    finally:
        c.close()
