#!/usr/bin/python3
"""
Writes the seed corpus of the fuzz targets into test/fuzz/corpus/<target>/.

Seeds are small, named after what they show, and checked into the repo; run
this again after changing it (it overwrites the files it makes and leaves
every other file alone, so regression inputs kept in the corpus stay).

    /usr/bin/python3 test/fuzz/gen_corpus.py [target...]

The ES256 seeds change on every run (ECDSA signatures are randomised), so
regenerate only the targets whose seeds changed.

The constants match the targets: the HS256 secret and the fixed clock of
fuzz_jwt.c and fuzz_ws.c, the test-only keys in test/fuzz/keys, and the
canned channels and messages of fuzz_store.c.
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

SECRET = b"fuzz-hs256-secret-0123456789abcdef"
NOW = 1700000000                     # fuzz_jwt.c NOW and fuzz_ws.c T0_S
AUD, ISS = "chat", "https://issuer.example"
C1 = "c0000000-0000-4000-8000-000000000001"   # alice, bob (bob is admin)
C2 = "c0000000-0000-4000-8000-000000000002"   # direct alice/bob
C3 = "c0000000-0000-4000-8000-000000000003"   # bob only
UNKNOWN = "c0000000-0000-4000-8000-0000000000ff"
M_BOB = "a0000000-0000-4000-8000-000000000001"      # bob's, in C1
M_ALICE = "a0000000-0000-4000-8000-000000000002"    # alice's, attachments
M_DELETED = "a0000000-0000-4000-8000-000000000004"  # alice's, deleted
ATTACH = [{"url": "https://files.example/a.png", "name": "a.png",
           "size": 12, "mime": "image/png"}]


def key(name):
    with open(os.path.join(HERE, "keys", name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


RSA = key("rs256-private.pem")
EC = key("es256-private.pem")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- tokens

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jpart(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode()
                if not isinstance(obj, bytes) else obj)


def sign(signing_input, alg):
    if alg == "HS256":
        return hmac.new(SECRET, signing_input, hashlib.sha256).digest()
    if alg == "RS256":
        return RSA.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256":
        r, s = decode_dss_signature(EC.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return b""


def token(claims, alg="HS256", header=None):
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    si = jpart(hdr) + b"." + jpart(claims)
    return si + b"." + b64u(sign(si, alg))


def confused(payload):
    """HS256 keyed with the RSA public key's PEM: algorithm confusion."""
    pem = RSA.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    si = jpart({"alg": "HS256", "typ": "JWT"}) + b"." + jpart(payload)
    return si + b"." + b64u(hmac.new(pem, si, hashlib.sha256).digest())


def claims(**kw):
    c = {"sub": "alice", "iat": NOW, "exp": NOW + 3600}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


# ---------------------------------------------------------------- http

def http_seeds():
    tok = token(claims()).decode()
    up = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          "Sec-WebSocket-Version: 13\r\n")
    s = {
        "upgrade-query-token": "GET /ws?token=%s HTTP/1.1\r\nHost: a\r\n%s"
                               "Origin: http://localhost\r\n\r\n" % (tok, up),
        "upgrade-bearer": "GET /ws HTTP/1.1\r\nHost: a\r\n%sAuthorization: Bearer %s\r\n\r\n"
                          % (up, tok),
        "upgrade-both-tokens": "GET /ws?a=1&token=%s&b HTTP/1.1\r\n%s"
                               "authorization: bearer   %s\r\n\r\n" % (tok, up, tok),
        "upgrade-tokens-differ": "GET /ws?token=x HTTP/1.1\r\n%sAuthorization: Bearer y\r\n\r\n" % up,
        "upgrade-list-headers": "GET /ws HTTP/1.1\r\nUpgrade: h2c, WebSocket\r\n"
                                "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
        "upgrade-bad-key": "GET /ws HTTP/1.1\r\n" + up.replace("dGhlIHNhbXBsZSBub25jZQ==",
                                                                "dGhlIHNhbXBsZSBub25jZR==") + "\r\n",
        "upgrade-version-8": "GET /ws HTTP/1.1\r\n" + up.replace(": 13", ": 8") + "\r\n",
        "upgrade-then-frames": ("GET /ws?token=%s HTTP/1.1\r\n%s\r\n" % (tok, up)).encode()
                               + b"\x81\x80\x00\x00\x00\x00",
        "healthz": "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        "healthz-head-lf": "HEAD /healthz HTTP/1.0\nHost: a\n\n",
        "metrics": "GET /metrics HTTP/1.1\r\n\r\n",
        "post-404": "POST /nope HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "absolute-form": "GET http://chat.example:8080/ws?token=abc#frag HTTP/1.1\r\n\r\n",
        "absolute-no-path": "GET https://chat.example?token=abc HTTP/1.9\r\n\r\n",
        "empty-lines-first": "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n",
        "pct-path-token": "GET /w%73?token=a%2Eb%2ec HTTP/1.1\r\n\r\n",
        "pct-broken": "GET /ws?token=%4 HTTP/1.1\r\n\r\n",
        "pct-nul": "GET /ws%00 HTTP/1.1\r\n\r\n",
        "forwarded-for": "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7 ,  198.51.100.9\r\n\r\n",
        "obs-fold": "GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
        "space-before-colon": "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "bare-cr": "GET / HTTP/1.1\rHost: a\r\n\r\n",
        "dup-key": "GET /ws HTTP/1.1\r\n" + up + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        "dup-origin": "GET /ws HTTP/1.1\r\nOrigin: a\r\nOrigin: b\r\n\r\n",
        "content-length": "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "chunked": "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "http2": "GET / HTTP/2.0\r\n\r\n",
        "double-space": "GET  / HTTP/1.1\r\n\r\n",
        "control-in-value": "GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n",
        "incomplete": "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n",
        "long-origin": "GET / HTTP/1.1\r\nOrigin: " + "o" * 300 + "\r\n\r\n",
        "many-headers": "GET / HTTP/1.1\r\n" + "X-A: 1\r\n" * 101 + "\r\n",
    }
    for name, data in s.items():
        write("http", name, data)
    # past HTTP_MAX_HEAD without an end: 431
    write("http", "too-large", "GET /ws HTTP/1.1\r\nX-Pad: " + "p" * 16500 + "\r\n\r\n")


# ---------------------------------------------------------------- jwt

def jwt_seeds():
    raw = {  # mode 0: a token against every configuration
        "hs256-valid": token(claims()),
        "rs256-valid": token(claims(aud=AUD, iss=ISS), "RS256"),
        "es256-valid": token(claims(aud=[AUD, "x"], iss=ISS), "ES256"),
        "es256-nbf-leeway": token(claims(aud=AUD, iss=ISS, nbf=NOW + 20), "ES256"),
        "alg-none": jpart({"alg": "none"}) + b"." + jpart(claims()) + b".",
        "stripped-signature": token(claims()).rsplit(b".", 1)[0] + b".",
        "rs-pem-as-hs-secret": confused(claims()),
        "kid-jku-ignored": token(claims(), header={"alg": "HS256", "kid": "../../x",
                                                   "jku": "https://evil.example"}),
        "crit": token(claims(), header={"alg": "HS256", "crit": ["exp"]}),
        "typ-other": token(claims(), header={"alg": "HS256", "typ": "at+jwt"}),
        "expired": token(claims(exp=NOW - 1)),
        "exp-boundary": token(claims(exp=NOW)),
        "nbf-future": token(claims(nbf=NOW + 1)),
        "missing-exp": token(claims(exp=None)),
        "missing-sub": token(claims(sub=None)),
        "empty-sub": token(claims(sub="")),
        "sub-not-string": token(claims(sub=7)),
        "sub-with-nul": token(claims(sub="a\u0000b")),
        "exp-real": token(claims(exp=1700003600.5)),
        "exp-huge": token(json.dumps(claims()).replace(str(NOW + 3600), "1e300").encode()),
        "exp-string": token(claims(exp="1700003600")),
        "exp-max": token(claims(exp=253402300799)),
        "exp-over-max": token(claims(exp=253402300800)),
        "dup-exp": token(b'{"sub":"alice","exp":1700003600,"exp":1}'),
        "wrong-aud-iss": token(claims(aud="other", iss="nobody"), "ES256"),
        "aud-not-strings": token(claims(aud=[1, AUD], iss=ISS), "RS256"),
        "padded-b64": token(claims()).replace(b".", b"=.", 1),
        "std-alphabet": token(claims(sub="??>>")).replace(b"_", b"/").replace(b"-", b"+"),
        "two-dots-only": b"a.b",
        "four-parts": token(claims()) + b".x",
        "header-not-object": jpart(b"[1]") + b"." + jpart(claims()) + b".AAAA",
        # RFC 7519 section 3.1 (signed with the RFC 7515 A.1 key, not ours)
        "rfc7519-example": b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                           b"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
                           b"cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
                           b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    }
    for name, tok in raw.items():
        write("jwt", "raw-" + name, b"\x00" + tok)
    write("jwt", "raw-oversized", b"\x00" + token(claims(pad="p" * 9000)))
    # modes 3-6: header NUL payload, signed by the target
    signed = {
        "hs-payload-only": (3, None, claims()),
        "hs-header-payload": (3, {"alg": "HS256"}, claims(nbf=NOW, aud="x")),
        "hs-wrong-alg": (4, {"alg": "RS256"}, claims()),
        "hs-nested": (3, {"alg": "HS256", "x": {"y": [1, {"z": None}]}},
                      claims(extra={"a": [1, 2, 3]})),
        "es-payload": (5, None, claims(aud=AUD, iss=ISS)),
        "es-no-iss": (5, None, claims(aud=AUD)),
        "rs-payload": (6, None, claims(aud=AUD, iss=ISS, nbf=NOW - 5)),
    }
    for name, (mode, hdr, payload) in signed.items():
        body = json.dumps(payload, separators=(",", ":")).encode()
        if hdr is not None:
            body = json.dumps(hdr).encode() + b"\x00" + body
        write("jwt", "signed-" + name, bytes([mode]) + body)
    # mode 7: mint; iat, exp (big endian), buffer size / 4 (255 = large), sub
    mint = {
        "ok": (NOW, NOW + 3600, 255, "alice"),
        "unicode-sub": (NOW, NOW + 60, 255, "ålïce ☃ \"q\" \\ \t"),
        "long-sub": (0, 253402300799, 255, "s" * 200),
        "sub-too-long": (NOW, NOW + 60, 255, "s" * 201),
        "expired": (NOW, NOW, 255, "bob"),
        "small-buffer": (NOW, NOW + 60, 20, "alice"),
        "exact-ish-buffer": (NOW, NOW + 60, 36, "alice"),
    }
    for name, (iat, exp, sel, sub) in mint.items():
        write("jwt", "mint-" + name,
              b"\x07" + struct.pack(">QQB", iat, exp, sel) + sub.encode())
    write("jwt", "mint-bad-utf8", b"\x07" + struct.pack(">QQB", NOW, NOW + 9, 255) + b"a\xff\xfe")
    write("jwt", "mint-negative-time", b"\x07" + b"\xff" * 8 + struct.pack(">QB", NOW, 255) + b"a")


# ---------------------------------------------------------------- proto

def frames_proto():
    cid = "11111111-2222-4333-8444-555555555555"
    j = lambda o: json.dumps(o, separators=(",", ":"))  # noqa: E731
    return {
        "send-full": j({"type": "send", "ref": {"n": 1, "s": "x"}, "clientId": cid,
                        "channelId": C1, "content": "hi ☃ \"there\"\n", "kind": "text.v2",
                        "replyTo": M_BOB, "attachments": ATTACH * 2}),
        "send-min": j({"type": "send", "clientId": cid, "channelId": C1, "content": "x"}),
        "send-nulls": j({"type": "send", "clientId": cid, "channelId": C1, "content": "x",
                         "kind": None, "replyTo": None, "attachments": None, "ref": None}),
        "send-upper-uuid": j({"type": "send", "clientId": cid.upper(), "channelId": C1.upper(),
                              "content": "x"}),
        "send-nul-content": '{"type":"send","clientId":"%s","channelId":"%s","content":"a\\u0000b"}'
                            % (cid, C1),
        "send-too-large": j({"type": "send", "clientId": cid, "channelId": C1, "content": "y" * 1025}),
        "send-bad-client-id": j({"type": "send", "clientId": "{" + cid + "}", "channelId": C1,
                                 "content": "x", "ref": 5}),
        "send-bad-kind": j({"type": "send", "clientId": cid, "channelId": C1, "content": "x",
                            "kind": "Text"}),
        "send-11-attachments": j({"type": "send", "clientId": cid, "channelId": C1,
                                  "content": "x", "attachments": ATTACH * 11}),
        "send-bad-attachment": j({"type": "send", "clientId": cid, "channelId": C1, "content": "x",
                                  "attachments": [{"url": "ftp://x", "name": "n", "size": -1,
                                                   "mime": "a/b;c=d"}]}),
        "dup-keys": '{"type":"ping","type":"send"}',
        "sync": j({"type": "sync", "ref": "r", "channels": {C1: 0, C2: 5},
                   "changes": {C1: 1}}),
        "sync-empty": j({"type": "sync", "channels": {}}),
        "sync-same-channel": j({"type": "sync", "channels": {C1: 1, C1.upper(): 2}}),
        "sync-changes-unlisted": j({"type": "sync", "channels": {C1: 1}, "changes": {C2: 1}}),
        "history": j({"type": "history", "channelId": C1, "before": 4, "limit": 2, "ref": [1]}),
        "history-limit-0": j({"type": "history", "channelId": C1, "limit": 0}),
        "history-limit-real": '{"type":"history","channelId":"%s","limit":1.0}' % C1,
        "typing": j({"type": "typing", "channelId": C1}),
        "read": j({"type": "read", "channelId": C1, "seq": 3, "ref": True}),
        "read-2pow53": j({"type": "read", "channelId": C1, "seq": 2 ** 53}),
        "read-2pow53-plus-1": j({"type": "read", "channelId": C1, "seq": 2 ** 53 + 1}),
        "read-huge": '{"type":"read","channelId":"%s","seq":99999999999999999999}' % C1,
        "presence": j({"type": "presence", "channelId": C1}),
        "edit": j({"type": "edit", "messageId": M_ALICE, "content": "new"}),
        "delete": j({"type": "delete", "messageId": M_BOB, "ref": None}),
        "refresh": j({"type": "refresh", "token": token(claims()).decode()}),
        "ping-ref-string": '{"type":"ping","ref":"\\u0000\\ud83d\\ude00</script>"}',
        "ping-ref-long": j({"type": "ping", "ref": "r" * 300}),
        "ping-ref-deep": '{"type":"ping","ref":' + "[" * 15 + "]" * 15 + "}",
        "too-deep": "[" * 17 + "]" * 17,
        "lone-surrogate": '{"type":"ping","ref":"\\ud800"}',
        "bad-utf8": b'{"type":"ping","ref":"\xc3\x28"}',
        "number-overflow": '{"type":"ping","ref":1e400}',
        "trailing": '{"type":"ping"} x',
        "not-object": "[1,2]",
        "unknown-type": '{"type":"subscribe"}',
        "type-not-string": '{"type":1}',
        "empty": "",
    }


def proto_seeds():
    for name, data in frames_proto().items():
        write("proto", name, data)


# ---------------------------------------------------------------- ws

def wsframe(opcode, payload=b"", fin=True, mask=b"\0\0\0\0", rsv=0, length=None,
            form=None):
    """A client frame; mask None sends it unmasked, form forces 126/127."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask is not None else 0
    if form is None:
        form = 0 if n < 126 else 126 if n < 65536 else 127
    if form == 0:
        head = bytes([b0, mbit | n])
    elif form == 126:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text(obj, **kw):
    return wsframe(1, obj if isinstance(obj, (str, bytes))
                   else json.dumps(obj, separators=(",", ":")), **kw)


def send(channel, content, cid="11111111-2222-4333-8444-000000000001", **extra):
    f = {"type": "send", "clientId": cid, "channelId": channel, "content": content}
    f.update(extra)
    return text(f)


def ws_seeds():
    alice_tok = token(claims(exp=NOW + 3600)).decode()
    bob_tok = token(claims(sub="bob")).decode()
    close = lambda code, reason=b"": wsframe(8, struct.pack(">H", code) + reason)  # noqa: E731
    s = {
        "ping-json": text({"type": "ping", "ref": 1}),
        "send-ack-broadcast": send(C1, "hello bob", ref="r1", kind="text",
                                   replyTo=M_BOB, attachments=ATTACH),
        "send-direct": send(C2, "psst"),
        "send-not-member": send(C3, "let me in"),
        "send-twice-same-client-id": send(C1, "once") + send(C1, "once"),
        "send-batch": b"".join(send(C1, "m%d" % i, cid="11111111-2222-4333-8444-%012d" % i)
                               for i in range(12)),
        "send-store-fail": send(C1, "/fail") + send(C1, "ok",
                                                    cid="11111111-2222-4333-8444-000000000002"),
        "send-batch-fail": send(C1, "/failbatch") + send(C1, "lost",
                                                         cid="11111111-2222-4333-8444-000000000002"),
        "join-send-leave": send(C1, "/join") + text({"type": "typing", "channelId": C3})
                           + send(C3, "now in", cid="11111111-2222-4333-8444-000000000002")
                           + send(C1, "/leave", cid="11111111-2222-4333-8444-000000000003"),
        "kicked-then-send": send(C1, "/kick") + send(C1, "still?",
                                                     cid="11111111-2222-4333-8444-000000000002"),
        "resync": send(C2, "/resync"),
        "faults-then-reads": send(C1, "/faults") + text({"type": "history", "channelId": C1})
                             + text({"type": "sync", "channels": {C1: 0}})
                             + text({"type": "presence", "channelId": C1}),
        "sync-with-changes": text({"type": "sync", "ref": "s", "channels": {C1: 0, C2: 0},
                                   "changes": {C1: 0}}),
        "sync-ahead": text({"type": "sync", "channels": {C1: 100}}),
        "sync-unknown-channel": text({"type": "sync", "channels": {UNKNOWN: 0}}),
        "history": text({"type": "history", "channelId": C1, "before": 4, "limit": 2})
                   + text({"type": "history", "channelId": C1, "limit": 200}),
        "typing-debounce": text({"type": "typing", "channelId": C1}) * 3
                           + text({"type": "typing", "channelId": C2}),
        "read": text({"type": "read", "channelId": C1, "seq": 3})
                + text({"type": "read", "channelId": C1, "seq": 2 ** 53}),
        "presence": text({"type": "presence", "channelId": C1, "ref": {"a": 1}}),
        "edit-own": text({"type": "edit", "messageId": M_ALICE, "content": "fixed"}),
        "edit-others": text({"type": "edit", "messageId": M_BOB, "content": "mine now"}),
        "delete-own-twice": text({"type": "delete", "messageId": M_ALICE}) * 2,
        "delete-deleted": text({"type": "delete", "messageId": M_DELETED}),
        "refresh-valid": text({"type": "refresh", "token": alice_tok}),
        "refresh-other-user": text({"type": "refresh", "token": bob_tok}),
        "refresh-garbage": text({"type": "refresh", "token": "a.b.c"}),
        "bad-json": text("{not json"),
        "too-large-content": send(C1, "z" * 1025),
        "binary": wsframe(2, b"\x00\x01\x02"),
        "fragmented-text": text('{"type":"pi', fin=False) + wsframe(0, 'ng","ref":2}'),
        "fragmented-with-ping": text('{"type":', fin=False) + wsframe(9, b"mid")
                                + wsframe(0, '"ping"', fin=False) + wsframe(0, "}"),
        "continuation-first": wsframe(0, "x"),
        "text-inside-fragment": text("{", fin=False) + text("{}"),
        "unmasked": text({"type": "ping"}, mask=None),
        "real-mask": text({"type": "ping", "ref": "masked"}, mask=b"\x37\xfa\x21\x3d"),
        "rsv-bits": text({"type": "ping"}, rsv=4),
        "reserved-opcode": wsframe(3, b"x") + wsframe(0xB, b""),
        "ping-pong": wsframe(9, b"p" * 125) + wsframe(10, b"unsolicited"),
        "ping-too-long": wsframe(9, b"p" * 126),
        "ping-fragmented": wsframe(9, b"p", fin=False),
        "close-normal": close(1000, b"bye"),
        "close-empty": wsframe(8),
        "close-one-byte": wsframe(8, b"\x03"),
        "close-1005": close(1005),
        "close-bad-utf8": close(1000, b"\xff\xfe"),
        "close-then-more": close(1001) + text({"type": "ping"}),
        "invalid-utf8-text": text(b'{"type":"ping","ref":"\xed\xa0\x80"}'),
        "length-16bit-small": text({"type": "ping"}, form=126),
        "length-64bit-small": text({"type": "ping"}, form=127),
        "length-over-max-frame": wsframe(1, b"", length=9000) + b"x" * 64,
        "length-2pow32": wsframe(1, b"", length=1 << 32),
        "length-2pow63": wsframe(1, b"", length=1 << 63),
        "fragments-over-max-message": text("a" * 5000, fin=False) + wsframe(0, "b" * 5000),
        "ping-flood": wsframe(9, b"") * 200,
        # past the 64 unsent control frames a connection may have (conn.c)
        "ping-flood-125": wsframe(9, b"p" * 125) * 200,
        # past the 128 fragments a message may have: closed with 1008
        "fragments-over-cap": text('{"type":"ping"', fin=False)
        + wsframe(0, b" ", fin=False) * 130 + wsframe(0, b"}"),
    }
    # one session touching most of the protocol, in three lengths so that
    # every arrival mode of fuzz_ws.c (size % 3) starts from it
    session = (text({"type": "sync", "channels": {C1: 1}, "changes": {C1: 0}})
               + send(C1, "first", ref="a")
               + text({"type": "typing", "channelId": C1})
               + text({"type": "read", "channelId": C1, "seq": 5})
               + text({"type": "edit", "messageId": M_ALICE, "content": "again"})
               + wsframe(9, b"hb")
               + text({"type": "history", "channelId": C2, "limit": 1})
               + close(1000))
    for extra in range(3):
        s["session-%d" % ((len(session) + extra) % 3)] = session + b"\x89\x80\x00"[:extra]
    for name, data in s.items():
        write("ws", name, data)


# ---------------------------------------------------------------- conn

def upgrade(tok=None, extra="", path="/ws", version="13",
            key="dGhlIHNhbXBsZSBub25jZQ==", origin="http://localhost"):
    tok = token(claims()).decode() if tok is None else tok
    return ("GET %s?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n"
            "Origin: %s\r\n%s\r\n" % (path, tok, key, version, origin, extra)).encode()


def conn_seeds():
    """The whole byte stream of a client, from the request head on."""
    for name in os.listdir(os.path.join(CORPUS, "http")):
        if not name.startswith("regress-"):
            with open(os.path.join(CORPUS, "http", name), "rb") as f:
                write("conn", "http-" + name, f.read())
    s = {
        "upgrade-alone": upgrade(),
        "upgrade-then-session": upgrade() + text({"type": "sync", "channels": {C1: 0}})
                                + send(C1, "hi") + text({"type": "ping", "ref": 1}) + wsframe(8),
        "upgrade-then-ping-frame": upgrade() + wsframe(9, b"early"),
        # resume: channels held until the first sync; a send releases its own
        "upgrade-resume-then-sync": upgrade(tok=token(claims()).decode() + "&resume=1")
                                    + text({"type": "sync", "channels": {C1: 0},
                                            "changes": {C1: 0}})
                                    + send(C1, "hi") + text({"type": "sync", "channels": {C1: 0}}),
        "upgrade-resume-send-first": upgrade(tok=token(claims()).decode() + "&resume=true")
                                     + send(C2, "before any sync")
                                     + text({"type": "sync", "channels": {}}),
        "upgrade-bearer": upgrade(tok="", extra="Authorization: Bearer %s\r\n"
                                  % token(claims()).decode()),
        "upgrade-expired-token": upgrade(tok=token(claims(exp=NOW - 60)).decode()),
        "upgrade-bad-signature": upgrade(tok=token(claims())[:-2].decode() + "AA"),
        "upgrade-no-token": upgrade(tok=""),
        "upgrade-bob-second-device": upgrade(tok=token(claims(sub="bob")).decode()),
        "upgrade-stranger": upgrade(tok=token(claims(sub="carol")).decode()),
        "upgrade-origin-refused": upgrade(origin="https://evil.example"),
        "upgrade-version-8": upgrade(version="8"),
        "upgrade-no-version": upgrade().replace(b"Sec-WebSocket-Version: 13\r\n", b""),
        "upgrade-bad-key": upgrade(key="c2hvcnQ="),
        "upgrade-post": upgrade().replace(b"GET ", b"POST ", 1),
        "upgrade-other-path": upgrade(path="/chat"),
        "healthz-head": b"HEAD /healthz HTTP/1.1\r\n\r\n",
        "index-page": b"GET / HTTP/1.1\r\n\r\n",
        "chat-js": b"GET /chat.js HTTP/1.1\r\n\r\n",
        "two-requests": b"GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
        "slow-head": b"GET /ws?token=",
    }
    for name, data in s.items():
        write("conn", name, data)


if __name__ == "__main__":
    makers = {"http": http_seeds, "jwt": jwt_seeds, "proto": proto_seeds,
              "ws": ws_seeds, "conn": conn_seeds}
    for t in sys.argv[1:] or list(makers):   # conn copies http: keep that order
        makers[t]()
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        size = sum(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files)
        print("%-6s %3d seeds, %6d bytes" % (t, len(files), size))
