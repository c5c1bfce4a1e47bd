#!/usr/bin/python3
# tls_probe.py - a record-level TLS 1.2/1.3 client of its own, for
# tests/host/wire_diff.c.  It runs a real handshake (ECDHE x25519, the key
# schedules of RFC 8446 7 and RFC 5246 5/RFC 7627, records sealed here with
# the AEADs of python3-cryptography), then sends adversarial but
# well-specified traffic, ends with an HTTP request, and prints one JSON line
# per probe with what the server did: responses (status, body length and
# sha256), alerts, KeyUpdates, how the connection ended.  Only behaviour a
# peer can observe goes into the line, so two servers that behave alike
# print identical lines.  Server certificates are not verified (a test
# client); the server's Finished is.
#
#   tls_probe.py --port P --version 1.3|1.2 --cipher aes128gcm|aes256gcm|chacha20
#                --probe NAME|all [--path /probe.bin] [--timeout S] [--list]
#   tls_probe.py --serve --cert PEM --key PEM --version ... --cipher ... --probe NAME|all
#
# --serve turns it around: it listens (printing "PORT n" first), runs the
# server's side of the handshake with the test certificate for each probe
# in turn, reads the client's request and answers with the probe's records,
# then reports what the client sent back (alerts, KeyUpdates, data).
import argparse
import errno
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CCS, ALERT, HANDSHAKE, DATA = 20, 21, 22, 23
MAX_PLAIN = 1 << 14

SUITES13 = {  # name: (suite, AEAD, key length, hash)
    'aes128gcm': ([0x1301], AESGCM, 16, 'sha256'),
    'aes256gcm': ([0x1302], AESGCM, 32, 'sha384'),
    'chacha20': ([0x1303], ChaCha20Poly1305, 32, 'sha256'),
}
SUITES12 = {  # ECDHE_RSA and ECDHE_ECDSA of each cipher: either certificate
    'aes128gcm': ([0xc02f, 0xc02b], AESGCM, 16, 'sha256'),
    'aes256gcm': ([0xc030, 0xc02c], AESGCM, 32, 'sha384'),
    'chacha20': ([0xcca8, 0xcca9], ChaCha20Poly1305, 32, 'sha256'),
}
SIGALGS = [0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0807]


class ProbeError(Exception):
    pass


# ---- key schedules ---------------------------------------------------------------

def hkdf_extract(h, salt, ikm):
    return hmac.new(salt, ikm, h).digest()


def hkdf_expand_label(h, secret, label, context, length):
    full = b'tls13 ' + label
    info = struct.pack('>HB', length, len(full)) + full + bytes([len(context)]) + context
    out, t, i = b'', b'', 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), h).digest()
        out, i = out + t, i + 1
    return out[:length]


def prf12(h, secret, label, seed, length):
    """RFC 5246 5: P_hash(secret, label + seed)."""
    seed = label + seed
    out, a = b'', seed
    while len(out) < length:
        a = hmac.new(secret, a, h).digest()
        out += hmac.new(secret, a + seed, h).digest()
    return out[:length]


# ---- the record layer --------------------------------------------------------------

class Keys:
    """One direction's AEAD key, IV and sequence number."""

    def __init__(self, tls13, aead, key, iv):
        self.tls13, self.aead, self.iv, self.seq = tls13, aead(key), iv, 0
        self.explicit = not tls13 and aead is AESGCM  # TLS 1.2 GCM: 4-byte salt + 8 on the wire

    def nonce(self):
        if self.explicit:
            return self.iv + struct.pack('>Q', self.seq)
        pad = b'\0' * (len(self.iv) - 8) + struct.pack('>Q', self.seq)
        return bytes(a ^ b for a, b in zip(self.iv, pad))

    def seal(self, ctype, content, pad=0, inner=None):
        """One protected record.  TLS 1.3: inner plaintext content||type||zeros,
        or exactly `inner` when given (e.g. padding only)."""
        if self.tls13:
            if inner is None:
                inner = content + bytes([ctype]) + b'\0' * pad
            hdr = struct.pack('>BHH', DATA, 0x0303, len(inner) + 16)
            body = self.aead.encrypt(self.nonce(), inner, hdr)
        else:
            aad = struct.pack('>QBHH', self.seq, ctype, 0x0303, len(content))
            body = self.aead.encrypt(self.nonce(), content, aad)
            if self.explicit:
                body = struct.pack('>Q', self.seq) + body
            hdr = struct.pack('>BHH', ctype, 0x0303, len(body))
        self.seq += 1
        return hdr + body

    def open(self, ctype, body):
        if self.tls13:
            hdr = struct.pack('>BHH', ctype, 0x0303, len(body))
            inner = self.aead.decrypt(self.nonce(), body, hdr).rstrip(b'\0')
            self.seq += 1
            if not inner:
                raise ProbeError('server record without a content type')
            return inner[-1], inner[:-1]
        if self.explicit:
            nonce, body = self.iv + body[:8], body[8:]
        else:
            nonce = self.nonce()
        aad = struct.pack('>QBHH', self.seq, ctype, 0x0303, len(body) - 16)
        out = self.aead.decrypt(nonce, body, aad)
        self.seq += 1
        return ctype, out


class Conn:
    def __init__(self, host, port, timeout, sock=None):
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b''
        self.eof = None  # 'fin', 'rst', 'timeout' once the transport ended
        self.rd = self.wr = None

    def fill(self, n):
        while len(self.buf) < n and self.eof is None:
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                self.eof = 'timeout'
                break
            except ConnectionResetError:
                self.eof = 'rst'
                break
            if not d:
                self.eof = 'fin'
                break
            self.buf += d
        return len(self.buf) >= n

    def record(self):
        """(type, body) of the next record, None at the end of the stream."""
        if not self.fill(5):
            return None
        ctype, _, n = struct.unpack('>BHH', self.buf[:5])
        if not self.fill(5 + n):
            return None
        body, self.buf = self.buf[5:5 + n], self.buf[5 + n:]
        if self.rd and ctype != CCS:
            return self.rd.open(ctype, body)
        return ctype, body

    def send(self, data):
        self.sock.sendall(data)


def hs_msg(mtype, body):
    return bytes([mtype]) + struct.pack('>I', len(body))[1:] + body


def ext(etype, body):
    return struct.pack('>HH', etype, len(body)) + body


def vec(lenbytes, body):
    return len(body).to_bytes(lenbytes, 'big') + body


def client_hello(tls13, suites, sni, pub):
    exts = ext(0, vec(2, b'\0' + vec(2, sni.encode())))
    exts += ext(10, vec(2, struct.pack('>HH', 0x1d, 0x17)))
    exts += ext(13, vec(2, b''.join(struct.pack('>H', s) for s in SIGALGS)))
    if tls13:
        exts += ext(43, vec(1, struct.pack('>H', 0x0304)))
        exts += ext(51, vec(2, struct.pack('>HH', 0x1d, len(pub)) + pub))
        exts += ext(45, vec(1, b'\x01'))
    else:
        exts += ext(11, vec(1, b'\0'))
        exts += ext(23, b'')
        exts += ext(0xff01, b'\0')
    body = struct.pack('>H', 0x0303) + os.urandom(32) + vec(1, os.urandom(32))
    body += vec(2, b''.join(struct.pack('>H', s) for s in suites)) + b'\x01\x00' + vec(2, exts)
    return hs_msg(1, body)


class Handshake:
    """Handshake messages reassembled from records, and the transcript."""

    def __init__(self, conn):
        self.conn, self.pending, self.transcript = conn, b'', b''

    def next(self):
        while True:
            if len(self.pending) >= 4:
                n = int.from_bytes(self.pending[1:4], 'big')
                if len(self.pending) >= 4 + n:
                    msg, self.pending = self.pending[:4 + n], self.pending[4 + n:]
                    return msg
            rec = self.conn.record()
            if rec is None:
                raise ProbeError('server closed during the handshake (%s)' % self.conn.eof)
            ctype, body = rec
            if ctype == CCS:
                continue
            if ctype == ALERT:
                raise ProbeError('server alert %r during the handshake' % (tuple(body),))
            if ctype != HANDSHAKE:
                raise ProbeError('record type %d during the handshake' % ctype)
            self.pending += body

    def add(self, msg):
        self.transcript += msg


def parse_exts(data):
    out = {}
    while data:
        t, n = struct.unpack('>HH', data[:4])
        out[t], data = data[4:4 + n], data[4 + n:]
    return out


def server_hello(msg):
    if msg[0] != 2:
        raise ProbeError('expected ServerHello, got %d' % msg[0])
    b = msg[4:]
    random, sid_len = b[2:34], b[34]
    p = 35 + sid_len
    suite = struct.unpack('>H', b[p:p + 2])[0]
    exts = parse_exts(b[p + 5:p + 5 + struct.unpack('>H', b[p + 3:p + 5])[0]])
    return random, suite, exts


def handshake13(c, args, suite, first=b''):
    """TLS 1.3 (RFC 8446 7.1).  first: records sent in the same write as Finished."""
    suites, aead, klen, hname = suite
    h = getattr(hashlib, hname)
    hlen = h().digest_size
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    hs = Handshake(c)
    ch = client_hello(True, suites, args.sni, pub)
    c.send(struct.pack('>BHH', HANDSHAKE, 0x0301, len(ch)) + ch)
    hs.add(ch)
    sh = hs.next()
    srandom, _, exts = server_hello(sh)
    if srandom == hashlib.sha256(b'HelloRetryRequest').digest():
        raise ProbeError('HelloRetryRequest: not supported by this probe')
    hs.add(sh)
    ks = exts[51]
    shared = priv.exchange(X25519PublicKey.from_public_bytes(ks[4:4 + struct.unpack('>H', ks[2:4])[0]]))
    zero = b'\0' * hlen
    early = hkdf_extract(h, zero, zero)
    derived = hkdf_expand_label(h, early, b'derived', h(b'').digest(), hlen)
    hsec = hkdf_extract(h, derived, shared)
    th = h(hs.transcript).digest()
    c_hs = hkdf_expand_label(h, hsec, b'c hs traffic', th, hlen)
    s_hs = hkdf_expand_label(h, hsec, b's hs traffic', th, hlen)
    c.rd = keys13(aead, klen, h, s_hs)
    c.wr = keys13(aead, klen, h, c_hs)
    cert_req = False
    while True:
        msg = hs.next()
        if msg[0] == 20:
            fk = hkdf_expand_label(h, s_hs, b'finished', b'', hlen)
            if msg[4:] != hmac.new(fk, h(hs.transcript).digest(), h).digest():
                raise ProbeError('server Finished does not verify: key schedule bug')
            hs.add(msg)
            break
        cert_req = cert_req or msg[0] == 13
        hs.add(msg)
    th_sf = h(hs.transcript).digest()
    msec = hkdf_extract(h, hkdf_expand_label(h, hsec, b'derived', h(b'').digest(), hlen), zero)
    out = b''
    if cert_req:  # an empty Certificate: the server decides whether that is enough
        cert = hs_msg(11, b'\0' + vec(3, b''))
        hs.add(cert)
        out += c.wr.seal(HANDSHAKE, cert)
    fk = hkdf_expand_label(h, c_hs, b'finished', b'', hlen)
    fin = hs_msg(20, hmac.new(fk, h(hs.transcript).digest(), h).digest())
    out += c.wr.seal(HANDSHAKE, fin)
    st = Session(c, True, aead, klen, h)
    st.c_secret = hkdf_expand_label(h, msec, b'c ap traffic', th_sf, hlen)
    st.s_secret = hkdf_expand_label(h, msec, b's ap traffic', th_sf, hlen)
    c.rd = keys13(aead, klen, h, st.s_secret)
    c.wr = keys13(aead, klen, h, st.c_secret)
    c.send(out + first(st) if callable(first) else out)
    return st


def keys13(aead, klen, h, secret):
    return Keys(True, aead, hkdf_expand_label(h, secret, b'key', b'', klen),
                hkdf_expand_label(h, secret, b'iv', b'', 12))


def handshake12(c, args, suite):
    """TLS 1.2 ECDHE with the extended master secret (RFC 5246, 7627)."""
    suites, aead, klen, hname = suite
    h = getattr(hashlib, hname)
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    hs = Handshake(c)
    ch = client_hello(False, suites, args.sni, pub)
    c.send(struct.pack('>BHH', HANDSHAKE, 0x0301, len(ch)) + ch)
    hs.add(ch)
    sh = hs.next()
    srandom, _, exts = server_hello(sh)
    crandom = ch[6:38]
    ems = 23 in exts
    hs.add(sh)
    spub, cert_req = None, False
    while True:
        msg = hs.next()
        hs.add(msg)
        if msg[0] == 12:  # ServerKeyExchange: named_curve x25519, then the signature (unchecked)
            b = msg[4:]
            if b[0] != 3 or struct.unpack('>H', b[1:3])[0] != 0x1d:
                raise ProbeError('server chose a curve other than x25519')
            spub = b[4:4 + b[3]]
        cert_req = cert_req or msg[0] == 13
        if msg[0] == 14:
            break
    shared = priv.exchange(X25519PublicKey.from_public_bytes(spub))
    out = []
    if cert_req:
        cert = hs_msg(11, vec(3, b''))
        hs.add(cert)
        out.append(cert)
    cke = hs_msg(16, vec(1, pub))
    hs.add(cke)
    out.append(cke)
    if ems:
        master = prf12(h, shared, b'extended master secret', h(hs.transcript).digest(), 48)
    else:
        master = prf12(h, shared, b'master secret', crandom + srandom, 48)
    ivlen = 4 if aead is AESGCM else 12
    kb = prf12(h, master, b'key expansion', srandom + crandom, 2 * klen + 2 * ivlen)
    ck, sk = kb[:klen], kb[klen:2 * klen]
    civ, siv = kb[2 * klen:2 * klen + ivlen], kb[2 * klen + ivlen:]
    fin = hs_msg(20, prf12(h, master, b'client finished', h(hs.transcript).digest(), 12))
    hs.add(fin)
    flight = b''.join(struct.pack('>BHH', HANDSHAKE, 0x0303, len(m)) + m for m in out)
    flight += struct.pack('>BHHB', CCS, 0x0303, 1, 1)
    c.wr = Keys(False, aead, ck, civ)
    c.send(flight + c.wr.seal(HANDSHAKE, fin))
    # the server's (NewSessionTicket,) ChangeCipherSpec, Finished
    while True:
        rec = c.record()
        if rec is None:
            raise ProbeError('server closed before its Finished (%s)' % c.eof)
        ctype, body = rec
        if ctype == CCS:
            c.rd = Keys(False, aead, sk, siv)
            continue
        if ctype == ALERT:
            raise ProbeError('server alert %r during the handshake' % (tuple(body),))
        hs.pending += body
        msg = hs.next()
        if msg[0] == 20:
            want = prf12(h, master, b'server finished', h(hs.transcript).digest(), 12)
            if msg[4:] != want:
                raise ProbeError('server Finished does not verify: key schedule bug')
            break
        hs.add(msg)
    return Session(c, False, aead, klen, h)



# ---- server mode: our handshake as the server, for probing a TLS client ----------

class ServerCreds:
    """The test certificate (ECDSA P-256) and its key, for signing our flight."""

    def __init__(self, cert, key):
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        with open(cert, 'rb') as f:
            pems = f.read().split(b'-----BEGIN CERTIFICATE-----')[1:]
        self.chain = [x509.load_pem_x509_certificate(b'-----BEGIN CERTIFICATE-----' + p)
                      .public_bytes(Encoding.DER) for p in pems]
        with open(key, 'rb') as f:
            self.key = load_pem_private_key(f.read(), None)

    def sign(self, data):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def parse_client_hello(msg):
    if msg[0] != 1:
        raise ProbeError('expected ClientHello, got %d' % msg[0])
    b = msg[4:]
    crandom, p = b[2:34], 35 + b[34]
    sid = b[35:p]
    n = struct.unpack('>H', b[p:p + 2])[0]
    suites = [struct.unpack('>H', b[p + 2 + i:p + 4 + i])[0] for i in range(0, n, 2)]
    p += 2 + n
    p += 1 + b[p]
    return crandom, sid, suites, parse_exts(b[p + 2:p + 2 + struct.unpack('>H', b[p:p + 2])[0]])


def pick(offered, ours):
    for s in ours:
        if s in offered:
            return s
    raise ProbeError('client offered none of %r' % ours)


def server_handshake13(c, creds, suite):
    suites, aead, klen, hname = suite
    h = getattr(hashlib, hname)
    hlen = h().digest_size
    hs = Handshake(c)
    ch = hs.next()
    _, sid, offered, exts = parse_client_hello(ch)
    chosen = pick(offered, suites)
    shares, p, client_pub = exts.get(51, b'')[2:], 0, None
    while p + 4 <= len(shares):
        g, n = struct.unpack('>HH', shares[p:p + 4])
        if g == 0x1d:
            client_pub = shares[p + 4:p + 4 + n]
        p += 4 + n
    if client_pub is None:
        raise ProbeError('client sent no x25519 key share')
    hs.add(ch)
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sh_exts = ext(43, struct.pack('>H', 0x0304)) + ext(51, struct.pack('>HH', 0x1d, 32) + pub)
    sh = hs_msg(2, struct.pack('>H', 0x0303) + os.urandom(32) + vec(1, sid) +
                struct.pack('>HB', chosen, 0) + vec(2, sh_exts))
    hs.add(sh)
    shared = priv.exchange(X25519PublicKey.from_public_bytes(client_pub))
    zero = b'\0' * hlen
    early = hkdf_extract(h, zero, zero)
    hsec = hkdf_extract(h, hkdf_expand_label(h, early, b'derived', h(b'').digest(), hlen), shared)
    th = h(hs.transcript).digest()
    c_hs = hkdf_expand_label(h, hsec, b'c hs traffic', th, hlen)
    s_hs = hkdf_expand_label(h, hsec, b's hs traffic', th, hlen)
    out = struct.pack('>BHH', HANDSHAKE, 0x0303, len(sh)) + sh
    c.wr, c.rd = keys13(aead, klen, h, s_hs), keys13(aead, klen, h, c_hs)
    flight = [hs_msg(8, vec(2, b''))]
    flight.append(hs_msg(11, b'\0' + vec(3, b''.join(vec(3, d) + b'\0\0' for d in creds.chain))))
    for m in flight:
        hs.add(m)
    tbs = b' ' * 64 + b'TLS 1.3, server CertificateVerify\0' + h(hs.transcript).digest()
    cv = hs_msg(15, struct.pack('>H', 0x0403) + vec(2, creds.sign(tbs)))
    hs.add(cv)
    fk = hkdf_expand_label(h, s_hs, b'finished', b'', hlen)
    fin = hs_msg(20, hmac.new(fk, h(hs.transcript).digest(), h).digest())
    hs.add(fin)
    out += c.wr.seal(HANDSHAKE, b''.join(flight) + cv + fin)
    c.send(out)
    th_sf = h(hs.transcript).digest()
    msec = hkdf_extract(h, hkdf_expand_label(h, hsec, b'derived', h(b'').digest(), hlen), zero)
    cfin = hs.next()
    fk = hkdf_expand_label(h, c_hs, b'finished', b'', hlen)
    if cfin[0] != 20 or cfin[4:] != hmac.new(fk, h(hs.transcript).digest(), h).digest():
        raise ProbeError('client Finished does not verify')
    st = Session(c, True, aead, klen, h, server=True)
    st.c_secret = hkdf_expand_label(h, msec, b's ap traffic', th_sf, hlen)  # ours: we write
    st.s_secret = hkdf_expand_label(h, msec, b'c ap traffic', th_sf, hlen)  # theirs
    c.wr = keys13(aead, klen, h, st.c_secret)
    c.rd = keys13(aead, klen, h, st.s_secret)
    return st


def server_handshake12(c, creds, suite):
    suites, aead, klen, hname = suite
    h = getattr(hashlib, hname)
    hs = Handshake(c)
    ch = hs.next()
    crandom, _, offered, exts = parse_client_hello(ch)
    chosen = pick(offered, suites[1:])  # the ECDSA suite: our certificate is EC
    if 23 not in exts:
        raise ProbeError('client did not offer the extended master secret')
    hs.add(ch)
    srandom = os.urandom(32)
    sh = hs_msg(2, struct.pack('>H', 0x0303) + srandom + vec(1, os.urandom(32)) +
                struct.pack('>HB', chosen, 0) + vec(2, ext(23, b'') + ext(0xff01, b'\0') +
                                                    ext(11, vec(1, b'\0'))))
    cert = hs_msg(11, vec(3, b''.join(vec(3, d) for d in creds.chain)))
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    params = struct.pack('>BHB', 3, 0x1d, 32) + pub
    ske = hs_msg(12, params + struct.pack('>H', 0x0403) +
                 vec(2, creds.sign(crandom + srandom + params)))
    done = hs_msg(14, b'')
    for m in (sh, cert, ske, done):
        hs.add(m)
    flight = sh + cert + ske + done
    c.send(struct.pack('>BHH', HANDSHAKE, 0x0303, len(flight)) + flight)
    cke = hs.next()
    if cke[0] != 16:
        raise ProbeError('expected ClientKeyExchange, got %d' % cke[0])
    hs.add(cke)
    shared = priv.exchange(X25519PublicKey.from_public_bytes(cke[5:5 + cke[4]]))
    master = prf12(h, shared, b'extended master secret', h(hs.transcript).digest(), 48)
    ivlen = 4 if aead is AESGCM else 12
    kb = prf12(h, master, b'key expansion', srandom + crandom, 2 * klen + 2 * ivlen)
    ck, sk = kb[:klen], kb[klen:2 * klen]
    civ, siv = kb[2 * klen:2 * klen + ivlen], kb[2 * klen + ivlen:]
    rec = c.record()  # ChangeCipherSpec
    if rec is None or rec[0] != CCS:
        raise ProbeError('expected ChangeCipherSpec')
    c.rd = Keys(False, aead, ck, civ)
    want = prf12(h, master, b'client finished', h(hs.transcript).digest(), 12)
    cfin = hs.next()
    if cfin[0] != 20 or cfin[4:] != want:
        raise ProbeError('client Finished does not verify')
    hs.add(cfin)
    c.wr = Keys(False, aead, sk, siv)
    fin = hs_msg(20, prf12(h, master, b'server finished', h(hs.transcript).digest(), 12))
    c.send(struct.pack('>BHHB', CCS, 0x0303, 1, 1) + c.wr.seal(HANDSHAKE, fin))
    return Session(c, False, aead, klen, h, server=True)

class Session:
    """After the handshake: what we send, and what we saw.  c_secret is
    always the secret of what we write (the client's in client mode)."""

    def __init__(self, conn, tls13, aead, klen, h, server=False):
        self.c, self.tls13, self.aead, self.klen, self.h = conn, tls13, aead, klen, h
        self.server = server
        self.c_secret = self.s_secret = None
        self.alerts, self.keyupdates, self.requested, self.tickets = [], 0, 0, 0
        self.data, self.owe_update = b'', False

    # our side
    def rec(self, ctype, content, **kw):
        return self.c.wr.seal(ctype, content, **kw)

    def key_update(self, request, body=None):
        """A KeyUpdate record; our TX key moves on right after it."""
        r = self.rec(HANDSHAKE, hs_msg(24, bytes([request]) if body is None else body))
        self.c_secret = hkdf_expand_label(self.h, self.c_secret, b'traffic upd', b'',
                                          self.h().digest_size)
        self.c.wr = keys13(self.aead, self.klen, self.h, self.c_secret)
        return r

    # their side
    def read_all(self):
        hsbuf = b''
        while True:
            try:
                rec = self.c.record()
            except Exception as e:  # noqa: BLE001 - a record we cannot open is a finding
                return 'undecryptable(%s)' % type(e).__name__
            if rec is None:
                return self.c.eof
            ctype, body = rec
            if ctype == DATA:
                self.data += body
            elif ctype == ALERT:
                self.alerts.append([body[0], body[1]] if len(body) == 2 else list(body))
            elif ctype == HANDSHAKE:
                hsbuf += body
                while len(hsbuf) >= 4 and len(hsbuf) >= 4 + int.from_bytes(hsbuf[1:4], 'big'):
                    n = int.from_bytes(hsbuf[1:4], 'big')
                    msg, hsbuf = hsbuf[:4 + n], hsbuf[4 + n:]
                    self.server_msg(msg)

    def server_msg(self, msg):
        if msg[0] == 4:
            self.tickets += 1
        elif msg[0] == 24 and self.tls13:
            self.keyupdates += 1
            self.s_secret = hkdf_expand_label(self.h, self.s_secret, b'traffic upd', b'',
                                              self.h().digest_size)
            self.c.rd = keys13(self.aead, self.klen, self.h, self.s_secret)
            if msg[4] == 1:
                self.requested += 1
                try:  # RFC 8446 4.6.3: answer before any more data of ours
                    self.c.send(self.key_update(0))
                except OSError:
                    pass


def http_responses(data):
    out = []
    while b'\r\n\r\n' in data:
        head, rest = data.split(b'\r\n\r\n', 1)
        lines = head.split(b'\r\n')
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(b':')
            if k.strip().lower() == b'content-length':
                length = int(v)
        body, data = rest[:length], rest[length:]
        out.append([status, len(body), hashlib.sha256(body).hexdigest()])
    return out


# ---- probes: each returns the writes to make after the handshake -----------------

def request(args):
    return ('GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' % args.path).encode()


def p_baseline(s, a):
    return [s.rec(DATA, request(a))]


def p_split_bytes(s, a):
    r = s.rec(DATA, request(a))
    return [r[i:i + 1] for i in range(len(r))]


def p_split_header(s, a):
    r = s.rec(DATA, request(a))
    return [r[:3], r[3:15], r[15:]]


def p_coalesce(s, a):
    q = request(a)
    return [s.rec(DATA, q[:10]) + s.rec(DATA, q[10:30]) + s.rec(DATA, q[30:])]


def p_zero_len(s, a):
    return [s.rec(DATA, b'') + s.rec(DATA, request(a))]


def flip(rec, pos):
    b = bytearray(rec)
    b[pos] ^= 0x01
    return bytes(b)


def p_tamper_ciphertext(s, a):
    r = s.rec(DATA, request(a))
    return [flip(r, 5 + (len(r) - 5) // 2)]


def p_tamper_tag(s, a):
    r = s.rec(DATA, request(a))
    return [flip(r, len(r) - 1)]


def p_tamper_type(s, a):
    r = bytearray(s.rec(DATA, request(a)))
    r[0] = HANDSHAKE
    return [bytes(r)]


def p_tamper_version(s, a):
    r = bytearray(s.rec(DATA, request(a)))
    r[1:3] = b'\x03\x01'
    return [bytes(r)]


def p_oversize_ciphertext(s, a):
    n = MAX_PLAIN + (256 if s.tls13 else 2048) + 1
    return [struct.pack('>BHH', DATA, 0x0303, n) + os.urandom(n)]


def p_oversize_plaintext(s, a):
    return [s.rec(DATA, b'x' * (MAX_PLAIN + 1))]


def p_alert_fatal(s, a):
    return [s.rec(ALERT, b'\x02\x28'), s.rec(DATA, request(a))]


def p_close_notify_inflight(s, a):
    return [s.rec(DATA, request(a)) + s.rec(ALERT, b'\x01\x00')]


def p_unexpected_ccs(s, a):
    return [struct.pack('>BHHB', CCS, 0x0303, 1, 1) + s.rec(DATA, request(a))]


def p_zero_len_padded(s, a):
    return [s.rec(DATA, b'', pad=1000) + s.rec(DATA, request(a))]


def p_zero_len_padded_max(s, a):
    return [s.rec(DATA, b'', pad=MAX_PLAIN) + s.rec(DATA, request(a))]


def p_oversize_padding(s, a):
    return [s.rec(DATA, b'x', pad=MAX_PLAIN) + s.rec(DATA, request(a))]


def p_padding_only(s, a):
    return [s.rec(DATA, b'', inner=b'\0' * 16) + s.rec(DATA, request(a))]


def p_keyupdate(s, a):
    r = s.key_update(0)
    return [r + s.rec(DATA, request(a))]


def p_keyupdate_requested(s, a):
    r = s.key_update(1)
    return [r + s.rec(DATA, request(a))]


def p_keyupdate_x3(s, a):
    r = s.key_update(0) + s.key_update(0) + s.key_update(0)
    return [r + s.rec(DATA, request(a))]


def p_keyupdate_invalid(s, a):
    return [s.rec(HANDSHAKE, hs_msg(24, b'\x02')) + s.rec(DATA, request(a))]


def p_keyupdate_badlen(s, a):
    return [s.rec(HANDSHAKE, hs_msg(24, b'\x00\x00')) + s.rec(DATA, request(a))]


def p_keyupdate_with_data(s, a):
    return [s.rec(HANDSHAKE, hs_msg(24, b'\x00') + hs_msg(24, b'\x00')[:2]) + s.rec(DATA, request(a))]


def p_unexpected_hs(s, a):
    msg = hs_msg(20, b'\0' * 32) if s.tls13 else hs_msg(0, b'')
    return [s.rec(HANDSHAKE, msg) + s.rec(DATA, request(a))]


def p_alert_warning(s, a):
    al = b'\x01\x5a' if s.tls13 else b'\x01\x64'
    return [s.rec(ALERT, al) + s.rec(DATA, request(a))]


def p_newsessionticket_from_client(s, a):
    return [s.rec(HANDSHAKE, hs_msg(4, b'\0' * 16)) + s.rec(DATA, request(a))]


def p_renegotiate(s, a):
    pub = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return [s.rec(HANDSHAKE, client_hello(False, [0xc02f, 0xc02b], a.sni, pub)) +
            s.rec(DATA, request(a))]


COMMON = ['baseline', 'split_bytes', 'split_header', 'coalesce', 'zero_len', 'tamper_ciphertext',
          'tamper_tag', 'tamper_type', 'tamper_version', 'oversize_ciphertext',
          'oversize_plaintext', 'alert_fatal', 'close_notify_inflight', 'unexpected_ccs',
          'unexpected_hs', 'alert_warning']
ONLY13 = ['zero_len_padded', 'zero_len_padded_max', 'oversize_padding', 'padding_only',
          'keyupdate', 'keyupdate_requested', 'keyupdate_x3', 'keyupdate_early',
          'keyupdate_invalid', 'keyupdate_badlen', 'keyupdate_with_data',
          'newsessionticket_from_client']
ONLY12 = ['renegotiate']


def probes(version):
    return COMMON + (ONLY13 if version == '1.3' else ONLY12)


# ---- server-mode probes: what we send a client after its request -----------------

BODY = bytes(range(256)) * 160  # 40960 bytes the client hashes


def response(s, size=MAX_PLAIN):
    """The response to the client's request, as records of at most size bytes."""
    data = b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % len(BODY) + BODY
    return [s.rec(DATA, data[i:i + size]) for i in range(0, len(data), size)]


def close_notify(s):
    return s.rec(ALERT, b'\x01\x00')


def s_baseline(s, a):
    return [b''.join(response(s)) + close_notify(s)]


def s_split_bytes(s, a):
    r = b''.join(response(s)) + close_notify(s)
    return [r[i:i + 1] for i in range(64)] + [r[64:]]


def s_coalesce(s, a):
    return [b''.join(response(s, 100)) + close_notify(s)]


def s_zero_len(s, a):
    return [s.rec(DATA, b'') + b''.join(response(s)) + close_notify(s)]


def s_zero_len_padded(s, a):
    return [s.rec(DATA, b'', pad=1000) + b''.join(response(s)) + close_notify(s)]


def s_zero_len_padded_max(s, a):
    return [s.rec(DATA, b'', pad=MAX_PLAIN) + b''.join(response(s)) + close_notify(s)]


def s_tamper_ciphertext(s, a):
    r = response(s)
    return [flip(r[0], 5 + (len(r[0]) - 5) // 2) + b''.join(r[1:]) + close_notify(s)]


def s_tamper_tag(s, a):
    r = response(s)
    return [flip(r[0], len(r[0]) - 1) + b''.join(r[1:]) + close_notify(s)]


def s_tamper_version(s, a):
    r = response(s)
    return [r[0][:1] + b'\x03\x01' + r[0][3:] + b''.join(r[1:]) + close_notify(s)]


def s_oversize_ciphertext(s, a):
    return p_oversize_ciphertext(s, a)


def s_oversize_plaintext(s, a):
    return [s.rec(DATA, b'x' * (MAX_PLAIN + 1))]


def s_oversize_padding(s, a):
    return [s.rec(DATA, b'x', pad=MAX_PLAIN) + b''.join(response(s)) + close_notify(s)]


def s_padding_only(s, a):
    return [s.rec(DATA, b'', inner=b'\0' * 16) + b''.join(response(s)) + close_notify(s)]


def s_tickets(s, a):
    nst = hs_msg(4, struct.pack('>IIB', 7200, 1, 8) + b'\0' * 8 + vec(2, os.urandom(32)) + vec(2, b''))
    return [s.rec(HANDSHAKE, nst + nst) + b''.join(response(s)) + close_notify(s)]


def s_keyupdate(s, a):
    return [s.key_update(0) + b''.join(response(s)) + close_notify(s)]


def s_keyupdate_requested(s, a):
    return [s.key_update(1) + b''.join(response(s)) + close_notify(s)]


def s_keyupdate_invalid(s, a):
    return [s.rec(HANDSHAKE, hs_msg(24, b'\x02')) + b''.join(response(s)) + close_notify(s)]


def s_hello_request(s, a):
    return [s.rec(HANDSHAKE, hs_msg(0, b'')) + b''.join(response(s)) + close_notify(s)]


def s_unexpected_hs(s, a):
    return [s.rec(HANDSHAKE, hs_msg(20, b'\0' * 32)) + b''.join(response(s)) + close_notify(s)]


def s_unexpected_ccs(s, a):
    return [struct.pack('>BHHB', CCS, 0x0303, 1, 1) + b''.join(response(s)) + close_notify(s)]


def s_alert_warning(s, a):
    al = b'\x01\x5a' if s.tls13 else b'\x01\x31'  # user_canceled; access_denied as a 1.2 warning
    return [s.rec(ALERT, al) + b''.join(response(s)) + close_notify(s)]


def s_alert_fatal(s, a):
    return [s.rec(ALERT, b'\x02\x28')]


SERVE_COMMON = ['baseline', 'split_bytes', 'coalesce', 'zero_len', 'tamper_ciphertext',
                'tamper_tag', 'tamper_version', 'oversize_ciphertext', 'oversize_plaintext',
                'unexpected_ccs', 'alert_warning', 'alert_fatal']
SERVE13 = ['zero_len_padded', 'zero_len_padded_max', 'oversize_padding', 'padding_only',
           'tickets', 'keyupdate', 'keyupdate_requested', 'keyupdate_invalid', 'unexpected_hs']
SERVE12 = ['hello_request']


def serve_probes(version):
    return SERVE_COMMON + (SERVE13 if version == '1.3' else SERVE12)


def serve_one(args, lsock, creds, name):
    """Accept one client, handshake, read its request, answer with the probe."""
    tls13 = args.version == '1.3'
    sock, _ = lsock.accept()
    c = Conn(None, None, args.timeout, sock)
    try:
        suite = (SUITES13 if tls13 else SUITES12)[args.cipher]
        s = server_handshake13(c, creds, suite) if tls13 else server_handshake12(c, creds, suite)
        while b'\r\n\r\n' not in s.data:  # the client's request
            rec = c.record()
            if rec is None:
                raise ProbeError('client closed before its request (%s)' % c.eof)
            if rec[0] == DATA:
                s.data += rec[1]
        s.data = b''
        for w in globals()['s_' + name](s, args):
            try:
                c.send(w)
            except OSError:
                break
        transport = s.read_all()
    finally:
        c.sock.close()
    closing = 'close_notify+' if [1, 0] in s.alerts else \
        'alert+' if any(al[0] == 2 for al in s.alerts) else ''
    return {'probe': name, 'version': args.version, 'cipher': args.cipher, 'side': 'server',
            'client_alerts': s.alerts, 'client_keyupdates': s.keyupdates,
            'client_data': len(s.data), 'end': closing + transport}


def serve(args):
    creds = ServerCreds(args.cert, args.key)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, 0))
    lsock.listen(8)
    lsock.settimeout(60)
    print('PORT %d' % lsock.getsockname()[1], flush=True)
    names = serve_probes(args.version)
    for name in names if args.probe == 'all' else args.probe.split(','):
        try:
            print(json.dumps(serve_one(args, lsock, creds, name), sort_keys=True), flush=True)
        except (ProbeError, OSError) as e:
            print(json.dumps({'probe': name, 'error': str(e)}, sort_keys=True), flush=True)
    return 0


def run_one(args, name):
    tls13 = args.version == '1.3'
    suite = (SUITES13 if tls13 else SUITES12)[args.cipher]
    c = Conn(args.host, args.port, args.timeout)
    writes = []
    try:
        if name == 'keyupdate_early':  # behind our Finished, before the server's tickets
            def first(st):
                return st.key_update(1) + st.rec(DATA, request(args))
            s = handshake13(c, args, suite, first)
        else:
            s = handshake13(c, args, suite) if tls13 else handshake12(c, args, suite)
            writes = globals()['p_' + name](s, args)
        send_error = None
        for i, w in enumerate(writes):
            try:
                c.send(w)
            except OSError as e:
                send_error = errno.errorcode.get(e.errno, str(e.errno))
                break
            if len(writes) > 1 and i + 1 < len(writes):
                time.sleep(0.001 if name == 'split_bytes' else 0.05)
        transport = s.read_all()
    finally:
        c.sock.close()
    closing = ''
    if [1, 0] in s.alerts:
        closing = 'close_notify+'
    elif any(al[0] == 2 for al in s.alerts):
        closing = 'alert+'
    print('%s: tickets %d, send_error %s' % (name, s.tickets, send_error), file=sys.stderr)
    return {'probe': name, 'version': args.version, 'cipher': args.cipher,
            'responses': http_responses(s.data), 'alerts': s.alerts,
            'keyupdates': s.keyupdates, 'keyupdate_requested': s.requested,
            'end': closing + transport}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int)
    ap.add_argument('--sni', default='localhost')
    ap.add_argument('--version', choices=['1.2', '1.3'], required=True)
    ap.add_argument('--cipher', choices=sorted(SUITES13), default='aes128gcm')
    ap.add_argument('--probe', default='all')
    ap.add_argument('--path', default='/probe.bin')
    ap.add_argument('--timeout', type=float, default=5)
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--serve', action='store_true', help='be the server: probe a TLS client')
    ap.add_argument('--cert')
    ap.add_argument('--key')
    args = ap.parse_args()
    names = serve_probes(args.version) if args.serve else probes(args.version)
    if args.serve and not args.list:
        return serve(args)
    if args.list:
        print('\n'.join(names))
        return 0
    todo = names if args.probe == 'all' else args.probe.split(',')
    for name in todo:
        if name not in names:
            print('unknown probe %s for TLS %s' % (name, args.version), file=sys.stderr)
            return 2
        try:
            print(json.dumps(run_one(args, name), sort_keys=True), flush=True)
        except (ProbeError, OSError) as e:
            print(json.dumps({'probe': name, 'error': str(e)}, sort_keys=True), flush=True)
            return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
