"""
The HS256 signing secret (issue 13).

- No role below superuser reads chat.jwt_secret: not a monitoring role
  (pg_monitor, which includes pg_read_all_settings, to which PostgreSQL
  opens GUC_SUPERUSER_ONLY settings) through SHOW, current_setting(),
  pg_settings or pg_file_settings.  A superuser still can.
- chat.jwt_secret_file: the secret in a file only the server's OS user may
  read; a file others may read is refused with a clear log line.
- An HS256 secret shorter than 32 bytes is refused at startup, with a clear
  log line (that never shows it), and tokens signed with it get 401.
- CREATE EXTENSION warns when it adopts existing chat_app / chat_auditor
  roles, whose members get what the extension grants them.
"""
import os
import time
import uuid

import psycopg2
import pytest

from seclib import (assert_401, assert_status, claims, hs_token, key_dir, new_user,
                    server_log_has, start, upgrade, write_file)

HS = {"alg": "HS256", "typ": "JWT"}


@pytest.fixture(scope="module")
def sec():
    c = start("secrets")
    yield c
    c.stop()


def as_role(cluster, role, queries):
    """Runs each query as role (a login role, connected as itself); returns
    {query: rows or the error text}."""
    out = {}
    c = psycopg2.connect(host=cluster.dir, port=cluster.port, user=role, dbname="postgres")
    c.autocommit = True
    try:
        for q in queries:
            with c.cursor() as cur:
                try:
                    cur.execute(q)
                    out[q] = cur.fetchall()
                except psycopg2.Error as e:
                    out[q] = "ERROR: %s" % e.pgerror
    finally:
        c.close()
    return out


QUERIES = ("SHOW chat.jwt_secret",
           "SELECT current_setting('chat.jwt_secret')",
           "SELECT name, setting, reset_val, boot_val FROM pg_settings WHERE name LIKE 'chat.%'",
           "SELECT * FROM pg_file_settings",
           "SHOW ALL")


@pytest.mark.parametrize("grant", ["pg_monitor", "pg_read_all_settings", None])
def test_no_role_below_superuser_reads_the_secret(sec, grant):
    role = "r_" + uuid.uuid4().hex[:8]
    sec.sql("CREATE ROLE %s LOGIN" % role + (" IN ROLE %s" % grant if grant else ""))
    got = as_role(sec, role, QUERIES)
    text = repr(got)
    assert sec.secret not in text, "%s (member of %s) read the secret: %s" % (role, grant, text)
    show = got["SHOW chat.jwt_secret"]
    assert isinstance(show, str) or show == [("********",)], show
    # the superuser still sees it
    assert sec.sql1("SHOW chat.jwt_secret") == sec.secret


@pytest.fixture(scope="module")
def short():
    c = start("secret-short", **{"chat.jwt_secret": "'only-twenty-bytes-..'"})
    yield c
    c.stop()


def test_short_hs256_secret_is_refused_at_startup(short):
    key = "only-twenty-bytes-.."
    assert len(key) == 20
    deadline = time.monotonic() + 10
    while not server_log_has(short, r"HS256 secret refused: chat.jwt_secret is 20 bytes long"):
        assert time.monotonic() < deadline, short.log_tail()
        time.sleep(0.05)
    assert key not in short.log_text()
    r = upgrade(short.chat_port, hs_token(HS, claims(new_user("sh")), key))
    assert_401(r, what="a token signed with a 20-byte secret")
    with pytest.raises(psycopg2.Error) as e:
        short.sql1("SELECT chat_mint_token('x', '1 hour')")
    assert "at least 32 bytes" in str(e.value)


@pytest.fixture(scope="module")
def sfile():
    d = key_dir()
    secret = "file-secret-" + uuid.uuid4().hex            # 44 bytes
    write_file(d, "jwt.secret", secret + "\n", mode=0o600)
    write_file(d, "loose.secret", secret + "\n", mode=0o644)
    path, loose = os.path.join(d, "jwt.secret"), os.path.join(d, "loose.secret")
    c = start("secret-file", **{"chat.jwt_secret": "''",
                                "chat.jwt_secret_file": "'%s'" % path})
    c.file_secret, c.loose = secret, loose
    yield c
    c.stop()


def test_secret_file(sfile):
    u = new_user("sf")
    r = upgrade(sfile.chat_port, hs_token(HS, claims(u), sfile.file_secret))
    assert_status(r, 101, what="a token signed with the file's secret")
    # the final newline is not part of the secret
    r = upgrade(sfile.chat_port, hs_token(HS, claims(u), sfile.file_secret + "\n"))
    assert_401(r)
    assert sfile.file_secret not in sfile.log_text()
    # the SQL minting function signs with it too
    tok = sfile.sql1("SELECT chat_mint_token(%s, '1 hour')", (u,))
    assert_status(upgrade(sfile.chat_port, tok), 101, what="a minted token")
    # a file that group or others may read is refused, with a log line
    sfile.sql("ALTER SYSTEM SET chat.jwt_secret_file = %s", (sfile.loose,))
    sfile.sql("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while not server_log_has(sfile, r"HS256 secret refused: chat.jwt_secret_file .* accessible by no one else"):
        assert time.monotonic() < deadline, sfile.log_tail()
        time.sleep(0.05)
    r = upgrade(sfile.chat_port, hs_token(HS, claims(u), sfile.file_secret))
    assert_401(r, what="a token after the key file was refused")
    sfile.sql("ALTER SYSTEM RESET chat.jwt_secret_file")
    sfile.sql("SELECT pg_reload_conf()")


def test_create_extension_warns_when_it_adopts_roles(sec):
    """chat_app and chat_auditor are cluster-wide: a second CREATE EXTENSION
    (here in another database; the first one made them) adopts them as
    they are, and says so, since their members get what chat grants."""
    db = "adopt_" + uuid.uuid4().hex[:8]
    sec.sql("CREATE DATABASE %s" % db)
    c = psycopg2.connect(host=sec.dir, port=sec.port, user="postgres", dbname=db)
    c.autocommit = True
    try:
        with c.cursor() as cur:
            cur.execute("CREATE EXTENSION chat")
        notices = "".join(c.notices)
    finally:
        c.close()
    for role in ("chat_app", "chat_auditor"):
        assert 'WARNING:  role "%s" already exists and is used as it is' % role in notices, \
            notices
