"""
JWT authentication of the upgrade, attacked.  Every token is sent to a real
worker as ?token= (and where it matters as Authorization: Bearer); a refused
one must get 401 with the JSON body and never a 101.

Clusters: "jwt-hs" (HS256 secret, audience, issuer, leeway 10s), "jwt-rs"
(an RSA public key only) and "jwt-both" (secret and RSA key).
"""
import errno
import json
import select
import socket
import time

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from seclib import (assert_401, assert_no_crash, assert_status, b64url, b64url_decode,
                    b64url_json, claims, hs256, hs_token, key_dir, new_user, start,
                    upgrade, worker_pid, write_file)

AUD = "chat-test"
ISS = "https://issuer.test"
LEEWAY = 10


@pytest.fixture(scope="module")
def hs():
    c = start("jwt-hs", **{"chat.jwt_audience": "'%s'" % AUD,
                           "chat.jwt_issuer": "'%s'" % ISS,
                           "chat.jwt_leeway": "'%ds'" % LEEWAY})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


def ok_claims(sub=None, **extra):
    c = claims(sub or new_user("j"), aud=AUD, iss=ISS)
    c.update(extra)
    return c


def good(cluster, **extra):
    return jwt.encode(ok_claims(**extra), cluster.secret, algorithm="HS256")


def tok(cluster, header=None, payload=None, key=None):
    return hs_token(header or {"alg": "HS256", "typ": "JWT"},
                    payload if payload is not None else ok_claims(),
                    cluster.secret if key is None else key)


def refused(cluster, token, reason_has=None, what=""):
    assert_401(upgrade(cluster.chat_port, token), reason_has, what or token[:80])


def accepted(cluster, token, what=""):
    assert_status(upgrade(cluster.chat_port, token), 101, what=what or token[:80])


# --------------------------------------------------------------------------
# sanity: the cluster accepts what it should, so every refusal below means
# something
# --------------------------------------------------------------------------

def test_valid_token_upgrades_by_query_and_bearer(hs):
    t = good(hs)
    assert_status(upgrade(hs.chat_port, t), 101, what="query")
    assert_status(upgrade(hs.chat_port, bearer=t), 101, what="bearer")
    assert_status(upgrade(hs.chat_port, t, bearer=t), 101, what="both, same")


def test_query_and_bearer_tokens_that_differ_are_refused(hs):
    r = upgrade(hs.chat_port, good(hs), bearer=good(hs, jti="other"))
    assert 400 <= r.status < 500 and r.status != 101, r


def test_refusal_never_reflects_the_token(hs):
    t = tok(hs, key="wrong-key")
    r = upgrade(hs.chat_port, t)
    assert_401(r)
    for part in t.split("."):
        assert part.encode() not in r.raw, "the 401 echoes a token part: %r" % r.raw


# --------------------------------------------------------------------------
# algorithm
# --------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_alg_none_is_refused(hs, alg):
    payload = ok_claims()
    unsigned = b64url_json({"alg": alg, "typ": "JWT"}) + "." + b64url_json(payload)
    refused(hs, unsigned + ".", what="alg %r, empty signature" % alg)
    refused(hs, unsigned, what="alg %r, no signature part" % alg)
    # a valid HMAC appended does not make "none" acceptable
    refused(hs, unsigned + "." + b64url(hs256(hs.secret, unsigned)),
            what="alg %r with a real HMAC" % alg)


@pytest.mark.parametrize("header", [
    {"typ": "JWT"},                                   # no alg
    {"alg": None, "typ": "JWT"},
    {"alg": ["HS256"], "typ": "JWT"},
    {"alg": "hs256", "typ": "JWT"},
    {"alg": "HS256 ", "typ": "JWT"},
    {"alg": "HS384", "typ": "JWT"},
    {"alg": "HS512", "typ": "JWT"},
    {"alg": "RS256", "typ": "JWT"},
    {"alg": "ES256", "typ": "JWT"},
    {"alg": "PS256", "typ": "JWT"},
    {"alg": "HS256", "typ": "JWT", "crit": ["exp"]},
], ids=lambda h: json.dumps(h))
def test_algorithm_is_pinned_by_the_key(hs, header):
    # signed with the real secret: only the header is wrong
    refused(hs, tok(hs, header=header))


def test_hs512_really_signed_with_the_secret_is_refused(hs):
    t = jwt.encode(ok_claims(), hs.secret, algorithm="HS512")
    refused(hs, t, "algorithm")


# --------------------------------------------------------------------------
# kid and the other key-choosing headers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kid, key", [
    ("../../../../../../dev/null", b""),
    ("/dev/null", b""),
    ("x' UNION SELECT 'attacker-key' --", b"attacker-key"),
    ("0", b"0"),
    ("", b""),
    ("|cat /etc/passwd", b"root"),
], ids=["path-dev-null", "abs-dev-null", "sql", "zero", "empty", "shell"])
def test_kid_cannot_choose_the_key(hs, kid, key):
    t = tok(hs, header={"alg": "HS256", "typ": "JWT", "kid": kid}, key=key)
    refused(hs, t, "signature", "kid %r" % kid)


def test_kid_is_ignored_when_the_signature_is_right(hs):
    for kid in ("does-not-exist", "../../etc/passwd", "' OR 1=1 --"):
        accepted(hs, tok(hs, header={"alg": "HS256", "typ": "JWT", "kid": kid}),
                 "kid %r with the real secret" % kid)


def test_embedded_attacker_keys_are_ignored(hs):
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = attacker.public_key().public_numbers()

    def i2b(n):
        return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    jwk = {"kty": "RSA", "n": i2b(pub.n), "e": i2b(pub.e)}
    for extra in ({"jwk": jwk}, {"jku": "http://127.0.0.1:1/jwks.json"},
                  {"x5u": "http://127.0.0.1:1/cert.pem"}, {"x5c": ["MIIB"]}):
        header = dict({"alg": "RS256", "typ": "JWT"}, **extra)
        t = jwt.encode(ok_claims(), attacker, algorithm="RS256", headers=header)
        refused(hs, t, what="RS256 with %s" % list(extra))
    # an oct jwk carrying the attacker's HMAC key
    t = tok(hs, header={"alg": "HS256", "typ": "JWT",
                        "jwk": {"kty": "oct", "k": b64url(b"evil")}}, key=b"evil")
    refused(hs, t, "signature", "HS256 with an oct jwk")


# --------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, reason", [
    (lambda c: c.pop("exp"), "lacks"),
    (lambda c: c.update(exp=None), None),
    (lambda c: c.update(exp=str(c["exp"])), None),
    (lambda c: c.update(exp=[c["exp"]]), None),
    (lambda c: c.update(exp=-1), None),
    (lambda c: c.update(exp=1e300), None),
    (lambda c: c.update(exp=10 ** 30), None),
    (lambda c: c.update(nbf="0"), None),
    (lambda c: c.update(iat="now"), None),
    (lambda c: c.pop("sub"), "lacks"),
    (lambda c: c.update(sub=""), "lacks"),
    (lambda c: c.update(sub=42), None),
    (lambda c: c.update(sub=None), None),
    (lambda c: c.update(sub=["alice"]), None),
    (lambda c: c.update(sub="a\u0000b"), None),
    (lambda c: c.update(sub="x" * 201), None),
], ids=["no-exp", "exp-null", "exp-string", "exp-array", "exp-negative", "exp-1e300",
        "exp-huge-int", "nbf-string", "iat-string", "no-sub", "sub-empty", "sub-number",
        "sub-null", "sub-array", "sub-nul", "sub-201-bytes"])
def test_bad_claims_are_refused(hs, mutate, reason):
    c = ok_claims()
    mutate(c)
    refused(hs, tok(hs, payload=c), reason, json.dumps(c, default=str)[:200])


def test_sub_of_200_bytes_is_accepted(hs):
    accepted(hs, tok(hs, payload=ok_claims(sub="é" * 100)))


def test_exp_boundary_with_leeway(hs):
    # refused iff now >= exp + leeway; the server's clock is never behind ours
    now = int(time.time())
    accepted(hs, tok(hs, payload=ok_claims(exp=now - LEEWAY + 4)), "expired, inside the leeway")
    now = int(time.time())
    refused(hs, tok(hs, payload=ok_claims(exp=now - LEEWAY)), "expired", "exactly at exp + leeway")
    refused(hs, tok(hs, payload=ok_claims(exp=now - LEEWAY - 5)), "expired", "past the leeway")
    refused(hs, tok(hs, payload=ok_claims(exp=now - 86400)), "expired", "a day old")


def test_nbf_boundary_with_leeway(hs):
    # refused iff now < nbf - leeway
    now = int(time.time())
    accepted(hs, tok(hs, payload=ok_claims(nbf=now + LEEWAY)), "nbf exactly now + leeway")
    accepted(hs, tok(hs, payload=ok_claims(nbf=now)), "nbf now")
    now = int(time.time())
    refused(hs, tok(hs, payload=ok_claims(nbf=now + LEEWAY + 5)), "not yet", "nbf past the leeway")
    refused(hs, tok(hs, payload=ok_claims(nbf=now + 86400)), "not yet", "nbf tomorrow")


def test_audience_and_issuer(hs):
    accepted(hs, tok(hs, payload=ok_claims(aud=["other", AUD])), "aud array containing ours")
    cases = [
        ("no aud", lambda c: c.pop("aud"), "audience"),
        ("other aud", lambda c: c.update(aud="other"), "audience"),
        ("aud prefix", lambda c: c.update(aud=AUD + "x"), "audience"),
        ("aud case", lambda c: c.update(aud=AUD.upper()), "audience"),
        ("aud array without ours", lambda c: c.update(aud=["other", "x"]), "audience"),
        ("aud empty array", lambda c: c.update(aud=[]), "audience"),
        ("aud number", lambda c: c.update(aud=7), None),
        ("no iss", lambda c: c.pop("iss"), "issuer"),
        ("other iss", lambda c: c.update(iss="https://evil.test"), "issuer"),
        ("iss case", lambda c: c.update(iss=ISS.upper()), "issuer"),
        ("iss trailing slash", lambda c: c.update(iss=ISS + "/"), "issuer"),
        ("iss array", lambda c: c.update(iss=[ISS]), None),
    ]
    for what, mutate, reason in cases:
        c = ok_claims()
        mutate(c)
        refused(hs, tok(hs, payload=c), reason, what)


def test_duplicate_members_are_refused(hs):
    now = int(time.time())
    sub = new_user("dup")
    base = '"sub":"%s","aud":"%s","iss":"%s","iat":%d' % (sub, AUD, ISS, now)
    refused(hs, tok(hs, payload='{%s,"exp":%d,"exp":%d}' % (base, now - 3600, now + 600)),
            what="two exp")
    refused(hs, tok(hs, payload='{%s,"exp":%d,"sub":"admin"}' % (base, now + 600)),
            what="two sub")
    refused(hs, tok(hs, header='{"alg":"none","alg":"HS256"}',
                    payload='{%s,"exp":%d}' % (base, now + 600)), what="two alg")
    # the same text with single members is fine
    accepted(hs, tok(hs, payload='{%s,"exp":%d}' % (base, now + 600)))


# --------------------------------------------------------------------------
# signature and encoding
# --------------------------------------------------------------------------

def test_stripped_or_broken_signature(hs):
    t = good(hs)
    h, p, s = t.split(".")
    other = good(hs).split(".")[2]
    raw = b64url_decode(s)
    flipped = b64url(bytes([raw[0] ^ 1]) + raw[1:])
    cases = {
        "stripped": h + "." + p + ".",
        "two parts": h + "." + p,
        "four parts": t + ".",
        "another token's signature": h + "." + p + "." + other,
        "truncated": h + "." + p + "." + s[:-2],
        "one bit flipped": h + "." + p + "." + flipped,
        "doubled": h + "." + p + "." + s + s,
        "empty header": "." + p + "." + s,
        "empty payload": h + ".." + s,
        "dots only": "..",
        "garbage": "not-a-token",
    }
    for what, bad in cases.items():
        refused(hs, bad, what=what)


def _canonical_token(hs, char_wanted):
    """A valid token whose encoding contains one of char_wanted (e.g. '-_')."""
    for i in range(2000):
        t = tok(hs, payload=ok_claims(jti=i))
        if any(ch in t for ch in char_wanted):
            return t
    raise AssertionError("no token with %r" % char_wanted)


def _bump_unused_bits(part):
    """Another spelling of the same bytes: set unused low bits of the last
    character (only possible when len % 4 is 2 or 3)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}[len(part) % 4]
    v = alphabet.index(part[-1])
    assert v % unused == 0
    return part[:-1] + alphabet[v + 1]


def test_base64url_padding_and_non_canonical_encodings(hs):
    t = _canonical_token(hs, "-_")
    h, p, s = t.split(".")
    accepted(hs, t)
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    cases = {
        "extra padding": h + "." + p + "." + s + "==",
        "one pad character": h + "." + p + "." + s + "=",
        "standard alphabet": t.replace("-", "+").replace("_", "/"),
        "whitespace inside": h + "." + p[:5] + " " + p[5:] + "." + s,
        "newline inside": h + "." + p[:5] + "\n" + p[5:] + "." + s,
        "standard alphabet, percent-encoded": t.replace("-", "%2B").replace("_", "%2F"),
    }
    for name, part in (("signature", s), ("header", h), ("payload", p)):
        if len(part) % 4:
            cases["padded " + name] = ".".join(pad(x) if x is part else x for x in (h, p, s))
    if len(s) % 4 in (2, 3):
        cases["signature, non-zero unused bits"] = h + "." + p + "." + _bump_unused_bits(s)
    if len(p) % 4 in (2, 3):
        # same payload bytes; the signature no longer matches the text, and
        # a lenient decoder must not be what saves us: recompute the HMAC
        p2 = _bump_unused_bits(p)
        assert b64url_decode(p2) == b64url_decode(p)
        si = h + "." + p2
        cases["payload, non-zero unused bits, re-signed"] = si + "." + b64url(hs256(hs.secret, si))
    if len(h) % 4 in (2, 3):
        h2 = _bump_unused_bits(h)
        si = h2 + "." + p
        cases["header, non-zero unused bits, re-signed"] = si + "." + b64url(hs256(hs.secret, si))
    assert len(cases) >= 9, "the token shapes did not allow the non-canonical cases"
    for what, bad in cases.items():
        r = upgrade(hs.chat_port, bad.replace(" ", "%20").replace("\n", "%0A"))
        if "\n" in bad and r.status == 400:
            # a control character in the decoded query: a malformed request
            assert_status(r, 400, "bad_request", what=what)
            continue
        assert_401(r, what=what)


# --------------------------------------------------------------------------
# size
# --------------------------------------------------------------------------

def _big_request(port, request, timeout=15):
    """Sends a huge request while reading; returns (response bytes, error)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setblocking(False)
    sent, got, err = 0, b"", None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            want_w = sent < len(request)
            r, w, _ = select.select([s], [s] if want_w else [], [], 0.5)
            if r:
                try:
                    chunk = s.recv(65536)
                except OSError as e:
                    err = e
                    break
                if not chunk:
                    break
                got += chunk
            if w:
                try:
                    sent += s.send(request[sent:sent + 262144])
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                        raise
                    want_w = False
                    sent = len(request)
    finally:
        s.close()
    return got, err


@pytest.mark.parametrize("where", ["query", "bearer"])
def test_token_of_several_megabytes_gets_a_clean_4xx(hs, where):
    big = tok(hs, payload=ok_claims(pad="A" * (4 << 20)))
    assert len(big) > 4 << 20
    if where == "query":
        head = "GET /ws?token=%s HTTP/1.1\r\nHost: x\r\n" % big
    else:
        head = "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % big
    head += ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    got, err = _big_request(hs.chat_port, head.encode())
    status_line = got.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), \
        "no clean 4xx for a %d-byte token (%s): got %r, error %r" % (len(big), where, got[:200], err)
    assert b"HTTP/1.1 101" not in got
    # the worker is the same process and still serves
    assert worker_pid(hs) == hs.pid0
    accepted(hs, good(hs), "a normal token afterwards")


def test_token_just_over_the_verifier_cap_is_401(hs):
    t = tok(hs, payload=ok_claims(pad="A" * 9000))
    assert 9000 < len(t) < 15000
    refused(hs, t, "malformed")


def test_hs_cluster_never_crashed(hs):
    assert worker_pid(hs) == hs.pid0
    assert_no_crash(hs)


# --------------------------------------------------------------------------
# RS256: algorithm confusion with the public key as an HMAC secret
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rs(rsa_key):
    d = key_dir()
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    path = write_file(d, "jwt-public.pem", pem)
    c = start("jwt-rs", **{"chat.jwt_secret": "''", "chat.jwt_public_key_file": "'%s'" % path})
    c.pem = pem
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def both(rsa_key):
    d = key_dir()
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    path = write_file(d, "jwt-public.pem", pem)
    c = start("jwt-both", **{"chat.jwt_public_key_file": "'%s'" % path})
    c.pem = pem
    yield c
    c.stop()


def rs_token(key, payload=None, headers=None, alg="RS256"):
    return jwt.encode(payload or claims(new_user("r")), key, algorithm=alg, headers=headers)


def pem_secrets(c, rsa_key):
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs1 = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.PKCS1)
    return {"pem file bytes": c.pem, "pem without final newline": c.pem.rstrip(b"\n"),
            "der": der, "pkcs1 pem": pkcs1}


def test_rs256_with_the_configured_key_is_accepted(rs, rsa_key):
    assert_status(upgrade(rs.chat_port, rs_token(rsa_key)), 101)


def test_hs_rs_confusion_public_key_as_hmac_secret(rs, rsa_key):
    for what, secret in pem_secrets(rs, rsa_key).items():
        t = hs_token({"alg": "HS256", "typ": "JWT"}, claims(new_user("conf")), secret)
        assert_401(upgrade(rs.chat_port, t), "algorithm", "HS256 keyed with the %s" % what)


def test_rs_cluster_refuses_other_keys_and_algorithms(rs, rsa_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    eck = ec.generate_private_key(ec.SECP256R1())
    payload = claims(new_user("r"))
    good_t = rs_token(rsa_key, payload)
    h, p, s = good_t.split(".")
    sig = b64url_decode(s)
    si = (h + "." + p).encode()
    pss = rsa_key.sign(si, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                       salt_length=32), hashes.SHA256())
    cases = {
        "another RSA key": rs_token(other, payload),
        "alg none": b64url_json({"alg": "none"}) + "." + p + ".",
        "ES256 with some EC key": rs_token(eck, payload, alg="ES256"),
        "RS512 by the right key": rs_token(rsa_key, payload, alg="RS512"),
        "PS256 by the right key (header PS256)":
            b64url_json({"alg": "PS256"}) + "." + p + "." + b64url(
                rsa_key.sign((b64url_json({"alg": "PS256"}) + "." + p).encode(),
                             padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                             hashes.SHA256())),
        "PSS signature under an RS256 header": h + "." + p + "." + b64url(pss),
        "signature one byte longer": h + "." + p + "." + b64url(sig + b"\0"),
        "signature with a leading zero byte": h + "." + p + "." + b64url(b"\0" + sig),
        "signature one byte shorter": h + "." + p + "." + b64url(sig[1:]),
        "stripped": h + "." + p + ".",
    }
    for what, t in cases.items():
        assert_401(upgrade(rs.chat_port, t), what=what)
    # kid cannot point elsewhere, and is ignored when the signature is right
    assert_status(upgrade(rs.chat_port, rs_token(rsa_key, headers={"kid": "../../x"})), 101)
    assert worker_pid(rs) == rs.pid0
    assert_no_crash(rs)


def test_both_keys_confusion_is_a_bad_signature(both, rsa_key):
    for what, secret in pem_secrets(both, rsa_key).items():
        t = hs_token({"alg": "HS256", "typ": "JWT"}, claims(new_user("conf")), secret)
        assert_401(upgrade(both.chat_port, t), "signature", "HS256 keyed with the %s" % what)
    assert_status(upgrade(both.chat_port, rs_token(rsa_key)), 101, what="RS256")
    assert_status(upgrade(both.chat_port, both.token(new_user("h"))), 101, what="HS256")
