"""
The example JWS/JWT of RFC 7515 (appendix A) and RFC 7519 (sections 3.1 and
6.1), against a worker configured with the RFC's own keys.

The examples' exp (1300819380, March 2011) is long past, so the verdict for
a correctly signed example must be an "expired" 401 (the signature and
algorithm checks come first, so that reason proves they passed).  Re-signed
with the same header and a future exp the example is accepted once it
carries the sub claim chat requires (the RFC examples have none: without
it the verdict is "lacks sub or exp").

The vectors below are data from the RFCs.  Each is first verified here with
the cryptography package, so a typo in this file cannot pass for a server
bug.
"""
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)

from seclib import (assert_401, assert_no_crash, assert_status, b64url, b64url_decode,
                    conf_string, hs256, key_dir, start, upgrade, worker_pid, write_file)

# RFC 7515 A.1 (also RFC 7519 3.1): HS256
A1_KEY = ("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9"
          "CAow")
A1_TOKEN = ("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19y"
            "b290Ijp0cnVlfQ"
            ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")

# RFC 7515 A.2: RS256
A2_JWK = {
    "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1"
         "Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"
         "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_"
         "I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
    "e": "AQAB",
    "d": "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwV"
         "ol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn"
         "439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5T"
         "w8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",
}
A2_TOKEN = ("eyJhbGciOiJSUzI1NiJ9"
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19y"
            "b290Ijp0cnVlfQ"
            ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"
            "O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIAR"
            "NPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ"
            "1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw")

# RFC 7515 A.3: ES256
A3_JWK = {"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
          "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
          "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}
A3_TOKEN = ("eyJhbGciOiJFUzI1NiJ9"
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19y"
            "b290Ijp0cnVlfQ"
            ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")

# RFC 7515 A.4: ES512 (P-521), which chat does not support
A4_TOKEN = ("eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA"
            ".AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_"
            "7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolL"
            "zeO_Jn")

# RFC 7515 A.5 and RFC 7519 6.1: the unsecured JWS
A5_TOKEN = ("eyJhbGciOiJub25lIn0"
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19y"
            "b290Ijp0cnVlfQ.")

# The examples' payload, byte for byte (CRLF and one leading space per line)
PAYLOAD_RFC = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'


def _int(s):
    return int.from_bytes(b64url_decode(s), "big")


def rsa_private():
    n, e, d = _int(A2_JWK["n"]), _int(A2_JWK["e"]), _int(A2_JWK["d"])
    p, q = rsa.rsa_recover_prime_factors(n, e, d)
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                 rsa.rsa_crt_iqmp(p, q),
                                 rsa.RSAPublicNumbers(e, n)).private_key()


def ec_private():
    pub = ec.EllipticCurvePublicNumbers(_int(A3_JWK["x"]), _int(A3_JWK["y"]), ec.SECP256R1())
    return ec.EllipticCurvePrivateNumbers(_int(A3_JWK["d"]), pub).private_key()


def pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def a1_key():
    return b64url_decode(A1_KEY)


def payload_with(exp, sub=None):
    """The RFC payload text with another exp (and a sub line), same layout."""
    text = PAYLOAD_RFC.replace(b"1300819380", str(exp).encode())
    if sub is not None:
        text = text.replace(b'{"iss":"joe",\r\n', b'{"iss":"joe",\r\n "sub":"%s",\r\n' % sub.encode())
    return b64url(text)


def sign_hs(si):
    return b64url(hs256(a1_key(), si))


def sign_rs(si):
    return b64url(rsa_private().sign(si.encode(), padding.PKCS1v15(), hashes.SHA256()))


def sign_es(si):
    r, s = decode_dss_signature(ec_private().sign(si.encode(), ec.ECDSA(hashes.SHA256())))
    return b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


VECTORS = {"A.1-HS256": (A1_TOKEN, sign_hs), "A.2-RS256": (A2_TOKEN, sign_rs),
           "A.3-ES256": (A3_TOKEN, sign_es)}


def test_vectors_verify_locally():
    """The data above is the RFCs': every example verifies with its key."""
    for name, (token, _) in VECTORS.items():
        h, p, s = token.split(".")
        assert b64url_decode(p) == PAYLOAD_RFC, name
        si, sig = (h + "." + p).encode(), b64url_decode(s)
        if name.startswith("A.1"):
            assert hs256(a1_key(), si.decode()) == sig
        elif name.startswith("A.2"):
            rsa_private().public_key().verify(sig, si, padding.PKCS1v15(), hashes.SHA256())
        else:
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                       int.from_bytes(sig[32:], "big"))
            ec_private().public_key().verify(der, si, ec.ECDSA(hashes.SHA256()))
    assert rsa_private().key_size == 2048


@pytest.fixture(scope="module")
def rfc_hs_rs():
    """chat.jwt_secret = the A.1 octets, chat.jwt_public_key_file = the A.2 key."""
    d = key_dir()
    path = write_file(d, "rfc7515-a2.pem", pem(rsa_private()))
    c = start("jwt-rfc-hs-rs", **{"chat.jwt_secret": conf_string(a1_key()),
                                  "chat.jwt_public_key_file": "'%s'" % path})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def rfc_es():
    d = key_dir()
    path = write_file(d, "rfc7515-a3.pem", pem(ec_private()))
    c = start("jwt-rfc-es", **{"chat.jwt_secret": "''",
                               "chat.jwt_public_key_file": "'%s'" % path})
    c.pid0 = worker_pid(c)
    yield c
    c.stop()


def cluster_for(name, rfc_hs_rs, rfc_es):
    return rfc_es if name.startswith("A.3") else rfc_hs_rs


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_rfc_example_is_refused_as_expired(name, rfc_hs_rs, rfc_es):
    c = cluster_for(name, rfc_hs_rs, rfc_es)
    token, _ = VECTORS[name]
    assert_401(upgrade(c.chat_port, token), "expired", "RFC 7515 %s as published" % name)
    assert_401(upgrade(c.chat_port, bearer=token), "expired", "RFC 7515 %s as Bearer" % name)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_rfc_example_resigned_with_a_future_exp(name, rfc_hs_rs, rfc_es):
    import time
    c = cluster_for(name, rfc_hs_rs, rfc_es)
    token, sign = VECTORS[name]
    h = token.split(".")[0]
    exp = int(time.time()) + 3600
    # same header, future exp, still no sub: refused for the missing claim only
    si = h + "." + payload_with(exp)
    assert_401(upgrade(c.chat_port, si + "." + sign(si)), "lacks", "%s, future exp, no sub" % name)
    # same header, future exp, with sub: accepted
    si = h + "." + payload_with(exp, sub="joe")
    r = upgrade(c.chat_port, si + "." + sign(si))
    assert_status(r, 101, what="%s re-signed with a future exp and sub" % name)
    assert b'"userId":"joe"' in r.raw
    # the published signature over the modified payload: a bad signature
    bad = si + "." + token.split(".")[2]
    assert_401(upgrade(c.chat_port, bad), "signature", "%s, payload changed" % name)


def test_rfc_unsupported_and_unsecured_examples(rfc_hs_rs, rfc_es):
    for c in (rfc_hs_rs, rfc_es):
        assert_401(upgrade(c.chat_port, A4_TOKEN), "algorithm", "RFC 7515 A.4 (ES512)")
        assert_401(upgrade(c.chat_port, A5_TOKEN), "algorithm", "RFC 7515 A.5 / RFC 7519 6.1 (none)")
    # the RS256 example against the EC key and the ES256 one against RSA + HMAC
    assert_401(upgrade(rfc_es.chat_port, A2_TOKEN), "algorithm", "A.2 on the ES256 cluster")
    assert_401(upgrade(rfc_es.chat_port, A1_TOKEN), "algorithm", "A.1 on the ES256 cluster")
    assert_401(upgrade(rfc_hs_rs.chat_port, A3_TOKEN), "algorithm", "A.3 on the HS+RS cluster")
    for c in (rfc_hs_rs, rfc_es):
        assert worker_pid(c) == c.pid0
        assert_no_crash(c)


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def test_es256_high_and_low_s_are_both_accepted(rfc_es):
    """ECDSA signatures are malleable: (r, s) and (r, n - s) both verify.
    RFC 7518 does not ask for low-S and common signers (OpenSSL, Go,
    Python's cryptography) do not normalise, so requiring it would refuse
    about half of the valid tokens they mint: both forms are accepted, as
    docs/security.md says.  chat never uses a token's bytes as an
    identifier, so a second spelling of the same token gains nothing."""
    import time
    h = A3_TOKEN.split(".")[0]
    si = h + "." + payload_with(int(time.time()) + 3600, sub="joe")
    r, s = decode_dss_signature(ec_private().sign(si.encode(), ec.ECDSA(hashes.SHA256())))
    forms = {"low-S": min(s, P256_N - s), "high-S": max(s, P256_N - s)}
    for name, s2 in forms.items():
        tok = si + "." + b64url(r.to_bytes(32, "big") + s2.to_bytes(32, "big"))
        assert_status(upgrade(rfc_es.chat_port, tok), 101, what="ES256 with %s" % name)
    # s = 0 and s = n are not signatures at all
    for bad in (0, P256_N):
        tok = si + "." + b64url(r.to_bytes(32, "big") + bad.to_bytes(32, "big"))
        assert_401(upgrade(rfc_es.chat_port, tok), what="ES256 with s = %#x" % bad)
