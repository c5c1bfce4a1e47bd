#!/usr/bin/env python3
"""seeds.py - (re)writes tests/fuzz/corpus/ from tests/fixtures/ (real
kernels' captured replies) and the hand-written inputs below.  Run from
the repository root; the corpus is committed, so this is only needed when
the fixtures or the harnesses' input layout change."""
import os
import shutil
import struct

ROOT = "tests/fuzz/corpus"
NL = "tests/fixtures/netlink"
HS = "tests/fixtures/handshake"


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def nla(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)


def nlmsg(t, body, flags=0, seq=1):
    return struct.pack("=IHHII", 16 + len(body), t, flags, seq, 0) + body


def genl(t, cmd, attrs, flags=0):
    return nlmsg(t, struct.pack("=BBH", cmd, 1, 0) + attrs, flags)


def nlerr(code):
    return nlmsg(2, struct.pack("=i", code) + struct.pack("=IHHII", 20, 33, 5, 1, 0))


def main():
    shutil.rmtree(ROOT, ignore_errors=True)

    # ---- http_request: whole requests, pipelined ones too
    reqs = {
        "get": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "head10": "HEAD /index.html HTTP/1.0\r\n\r\n",
        "query": "GET /a/b.txt?x=1&y=2 HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n",
        "range": "GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=0-99\r\n\r\n",
        "suffix": "GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=-500\r\n\r\n",
        "open-range": "GET /f HTTP/1.1\r\nHost: x\r\nrange:   bytes=100-  \r\n\r\n",
        "ims": "GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
        "inm": "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\", W/\"2a-400-17d5a3c0e1f2b800\"\r\n\r\n",
        "inm-star": "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n",
        "if-range-etag": "GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\nIf-Range: \"2a-400-17d5a3c0e1f2b800\"\r\n\r\n",
        "if-range-date": "GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\nIf-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n",
        "pipelined": "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
        "keepalive10": "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        "encoded": "GET /%7Euser/a%20b/./c//d HTTP/1.1\r\nHost: x\r\n\r\n",
        "dotdot": "GET /a/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        "bare-lf": "GET / HTTP/1.1\nHost: x\n\n",
        "post": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        "http2": "GET / HTTP/2.0\r\n\r\n",
        "absolute": "GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n",
        "absolute-no-path": "GET http://x*y HTTP/1.1\r\nHost: x\r\n\r\n",
        "folded": "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "partial": "GET / HTTP/1.1\r\nHost: ",
        "te": "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    }
    for k, v in reqs.items():
        put("http_request", k, v)

    # ---- http_fields: raw header values
    fields = [
        "bytes=0-0", "bytes=0-", "bytes=-1", "bytes=10-5", "bytes=0-1,5-6",
        "bytes = 1-2", "BYTES=999999999999999999-", "items=0-1", "bytes=-0",
        "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994", "Thu, 31 Dec 9999 23:59:59 GMT",
        "Mon, 29 Feb 2021 00:00:00 GMT", "\"1-2-3\"", "W/\"1-2-3\"",
        "\"a\", W/\"1-2-3\" ,*", "*",
    ]
    for i, v in enumerate(fields):
        put("http_fields", "v%02d" % i, v)

    # ---- path_decode: request targets
    paths = ["/", "/index.html", "/a/b/c.txt", "/%41%42c", "/a%2fb", "/a/./b//c/",
             "/..", "/a/%2e%2e/b", "/%00", "/%zz", "/%4", "/" + "x" * 300,
             "/a/" * 40, "//././/", "/caf%C3%A9/%20space"]
    for i, v in enumerate(paths):
        put("path_decode", "p%02d" % i, v)

    # ---- ktlsd_config: --config files
    put("ktlsd_config", "full", """# ktlsd serve settings
root = /srv/www
listen = 0.0.0.0:443
listen = [::]:443
cert = /etc/ktlsd/cert.pem
key = /etc/ktlsd/key.pem
ca = /etc/ktlsd/ca.pem
verify = optional
ciphers = ECDHE-ECDSA-AES128-GCM-SHA256
ciphersuites = TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256
workers = 4
max-conns = 20000
user = www-data
access-log = -
foreground = yes
no-offload = no
handshake-timeout = 2.5
idle-timeout = 30
request-timeout = 10
grace-period = 5
tickets = 0
metrics = 127.0.0.1:9443
linger-time = 0.5
linger-bytes = 65536
""")
    put("ktlsd_config", "minimal", "workers = 1\n")
    put("ktlsd_config", "flags", "foreground\nno-offload = off   # trailing comment\n\n   \t\n")
    put("ktlsd_config", "verify-required", "verify = required\nca = /x.pem\n")
    put("ktlsd_config", "bad-number", "workers = 0x10\n")
    put("ktlsd_config", "bad-secs", "idle-timeout = 1e9\n")
    put("ktlsd_config", "nested", "config = /etc/other.conf\n")
    put("ktlsd_config", "no-value", "root\n")
    put("ktlsd_config", "listens", "".join("listen = 127.0.0.1:%d\n" % (8000 + i) for i in range(17)))
    put("ktlsd_config", "unknown", "colour = blue\n")
    put("ktlsd_config", "crlf", "workers = 2\r\nuser = nobody\r\n")

    # ---- agent_conf: `ktlsd agent` configuration
    put("agent_conf", "full", """# ktlsd agent
log_level = debug
handshake_timeout_ms = 5000
max_handshakes = 64
keyrings = .nvme, .nfs,.nfsd
x509.truststore = /etc/ssl/certs/ca.pem
x509.crl = /etc/ssl/crl.pem
x509.certificate = /etc/agent/cert.pem
x509.private_key = /etc/agent/key.pem
""")
    put("agent_conf", "empty", "")
    put("agent_conf", "comments", "\n# only\n   # comments\n\n")
    put("agent_conf", "bad-level", "log_level = loud\n")
    put("agent_conf", "range", "max_handshakes = 4097\nhandshake_timeout_ms = 99\n")
    put("agent_conf", "relative", "x509.truststore = certs/ca.pem\n")
    put("agent_conf", "half-pair", "x509.certificate = /c.pem\n")
    put("agent_conf", "keyrings-many", "keyrings = a b c d e f g h i\n")
    put("agent_conf", "no-eq", "log_level info\n")
    put("agent_conf", "no-value", "keyrings =\n")

    # ---- tls_stat: /proc/net/tls_stat
    for name in sorted(os.listdir(NL)):
        if name.endswith("tls_stat.txt"):
            put("tls_stat", name[:-4], read(os.path.join(NL, name)))
    put("tls_stat", "new-counters", "TlsCurrTxSw 1\nTlsRxRekeyOk   18446744073709551615\n")
    put("tls_stat", "overflow", "TlsTxSw 18446744073709551616\n")
    put("tls_stat", "no-value", "TlsTxSw\n")
    put("tls_stat", "long-name", "T" * 60 + " 1\n")
    put("tls_stat", "blank-lines", "\n\n  \nTlsTxSw\t\t7  \n")

    # ---- ethtool: STRSET_GET then FEATURES_GET, and stats string sets
    strsets = {}
    for name in sorted(os.listdir(NL)):
        if not name.endswith(".bin"):
            continue
        data = read(os.path.join(NL, name))
        if "strset" in name or "features" in name:
            put("ethtool", name[:-4], data)
        if "strset-features" in name:
            strsets[name.split("-")[0]] = data
    for name in sorted(os.listdir(NL)):
        src = name.split("-")[0]
        if "features-" in name and name.endswith(".bin"):
            key = src if src in strsets else "host"
            put("ethtool", "chain-" + name[:-4], strsets[key] + read(os.path.join(NL, name)))

    # ---- sock_diag: dumps
    for name in sorted(os.listdir(NL)):
        if "sock-diag" in name:
            put("sock_diag", name[:-4], read(os.path.join(NL, name)))

    # ---- agent_nl: first byte picks the parser (see agent_nl.c)
    for name in sorted(os.listdir(HS)):
        data = read(os.path.join(HS, name))
        mode = 0 if "accept" in name else 1 if "ready" in name else 2 if "family" in name else 3
        put("agent_nl", name[:-4], bytes([mode]) + data)
    # every policy-dump message of one capture, as one stream
    for g in ("guest612", "guest73"):
        parts = [read(os.path.join(HS, "%s-policy-done-%d.bin" % (g, i))) for i in range(1, 5)]
        put("agent_nl", g + "-policy-dump", bytes([3]) + b"".join(parts))
    put("agent_nl", "accept-x509", bytes([0]) + genl(33, 2,
        nla(1, struct.pack("=I", 7)) + nla(3, struct.pack("=I", 1)) + nla(5, struct.pack("=I", 3)) +
        nla(4, struct.pack("=I", 10000)) + nla(6, struct.pack("=I", 0x1234)) +
        nla(7, nla(1, struct.pack("=I", 11)) + nla(2, struct.pack("=I", 12))) +
        nla(8, b"nvme.example.com\0") + nla(9, struct.pack("=I", 99)) + nla(42, b"new")))
    put("agent_nl", "accept-refused", bytes([0]) + nlerr(-11))
    put("agent_nl", "family-noent", bytes([2]) + nlerr(-2))
    put("agent_nl", "ready-hand", bytes([1]) + genl(33, 1, nla(2, struct.pack("=I", 1))))
    # netlink sock_diag reply: netlink_diag_msg (28 bytes), then a groups bitmap
    body = struct.pack("=BBBBIIIIII", 16, 3, 16, 0, 1234, 0, 0, 4242, 0, 0)
    put("agent_nl", "ndiag-groups", bytes([4]) + nlmsg(20, body + nla(1, struct.pack("=Q", 0x100000001))))
    put("agent_nl", "ndiag-none", bytes([4]) + nlmsg(20, body))
    put("agent_nl", "nlerr-ack", bytes([5]) + nlerr(0))
    put("agent_nl", "nlerr-eagain", bytes([5]) + nlerr(-11))
    put("agent_nl", "nlerr-max", bytes([5]) + nlerr(-4095))


if __name__ == "__main__":
    main()
