#!/usr/bin/python3
"""ktlsd_soak.py PORT CA ROOT PID SECONDS [THREADS [rss|no-rss]] - ktlsd under mixed load.

Well-formed traffic (keep-alive, pipelining, ranges, conditionals) must be
answered correctly, by SHA-256 of every body, all the time, while other
clients abort downloads mid-body, trickle headers (slowloris), send
garbage and truncated ClientHellos, tampered records, alerts and oversize
records (tls_probe.py), and SIGHUP reloads the certificate every 3 s.
Afterwards ktlsd's open fds (a connection is one) return to the level of a
warmed-up baseline, its pipes stay within libktls's per-thread cache of
empty splice pipes, and its RSS stays near it.  Prints one summary line and
PASS, or FAIL with the reasons.
"""
import hashlib
import http.client
import os
import random
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
import tls_probe  # noqa: E402

PORT, CA, ROOT, PID, SECONDS = (int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                float(sys.argv[5]))
THREADS = int(sys.argv[6]) if len(sys.argv) > 6 else 8
CHECK_RSS = (sys.argv[7] if len(sys.argv) > 7 else 'rss') == 'rss'  # not under ASan
TIMEOUT = 30  # a well-formed request that takes longer is a failure
CTX = ssl.create_default_context(cafile=CA)
OUT = sys.stdout
sys.stderr = open(os.devnull, 'w')  # tls_probe narrates each probe there

FILES = {}
for name in sorted(os.listdir(ROOT)):
    p = os.path.join(ROOT, name)
    if not name.startswith('.') and os.path.isfile(p) and not os.path.islink(p):
        FILES[name] = open(p, 'rb').read()
BIG = max(FILES, key=lambda n: len(FILES[n]))

lock = threading.Lock()
counts = {}
failures = []
stop = threading.Event()


def count(what, n=1):
    with lock:
        counts[what] = counts.get(what, 0) + n


def fail(msg):
    with lock:
        if len(failures) < 20:
            failures.append(msg)


def tls():
    s = socket.create_connection(('127.0.0.1', PORT), timeout=TIMEOUT)
    return CTX.wrap_socket(s, server_hostname='localhost')


def read_to_eof(s, why=None):
    """Everything until EOF; why (a list) gets what ended it otherwise."""
    out = b''
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError, socket.timeout, OSError) as e:
            if why is not None:
                why.append('%s after %d bytes' % (e.__class__.__name__ + ': ' + str(e), len(out)))
            break
        if not d:
            break
        out += d
    return out


# ---- well-formed: every answer checked --------------------------------------

def keepalive(rng):
    c = http.client.HTTPSConnection('localhost', PORT, context=CTX, timeout=TIMEOUT)
    for _ in range(5):
        name = rng.choice(list(FILES))
        c.request('GET', '/' + name)
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or hashlib.sha256(body).digest() != hashlib.sha256(FILES[name]).digest():
            fail('keep-alive GET /%s: %d, %d bytes' % (name, r.status, len(body)))
            break
        count('keepalive')
    c.close()


def pipelined(rng):
    names = [rng.choice(list(FILES)) for _ in range(8)]
    reqs = b''.join(('GET /%s HTTP/1.1\r\nHost: localhost\r\n%s\r\n' %
                     (n, 'Connection: close\r\n' if i == len(names) - 1 else '')).encode()
                    for i, n in enumerate(names))
    s = tls()
    s.sendall(reqs)
    why = []
    raw = read_to_eof(s, why)
    got = tls_probe.http_responses(raw)
    s.close()
    want = [[200, len(FILES[n]), hashlib.sha256(FILES[n]).hexdigest()] for n in names]
    if got != want:
        fail('pipelined %s: %d of %d responses right (%d parsed from %d bytes; %s)' %
             (names, sum(1 for a, b in zip(got, want) if a == b), len(want), len(got),
              len(raw), why[0] if why else 'clean EOF'))
    else:
        count('pipelined', len(names))


def ranged(rng):
    data = FILES[BIG]
    a = rng.randrange(len(data))
    b = rng.randrange(a, len(data))
    c = http.client.HTTPSConnection('localhost', PORT, context=CTX, timeout=TIMEOUT)
    c.request('GET', '/' + BIG, headers={'Range': 'bytes=%d-%d' % (a, b)})
    r = c.getresponse()
    body = r.read()
    etag = r.getheader('ETag')
    if r.status != 206 or body != data[a:b + 1]:
        fail('range %d-%d of /%s: %d, %d bytes' % (a, b, BIG, r.status, len(body)))
    else:
        count('range')
    c.request('GET', '/' + BIG, headers={'If-None-Match': etag or '"x"'})
    r = c.getresponse()
    r.read()
    if r.status != 304:
        fail('If-None-Match %s: %d' % (etag, r.status))
    else:
        count('conditional')
    c.close()


# ---- adversarial: only the server's survival counts -------------------------

def aborted(rng):
    s = tls()
    s.sendall(('GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n' % BIG).encode())
    s.recv(rng.randrange(1, 65536))
    if rng.random() < 0.5:  # a reset, or a plain close mid-body
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()
    count('aborted')


def slowloris(rng):
    s = tls()
    s.sendall(b'GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ')
    end = time.time() + 3
    try:
        while time.time() < end and not stop.is_set():
            s.sendall(b'y')
            time.sleep(0.5)
    except OSError:
        pass
    s.close()
    count('slowloris')


def client_hello():
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = CTX.wrap_bio(inc, out, server_hostname='localhost')
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


HELLO = client_hello()


def garbage(rng):
    s = socket.create_connection(('127.0.0.1', PORT), timeout=10)
    if rng.random() < 0.5:
        s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000))))
        count('garbage')
    else:
        s.sendall(HELLO[:rng.randrange(1, len(HELLO))])
        count('truncated_hello')
    read_to_eof(s)
    s.close()


PROBES = ['tamper_ciphertext', 'tamper_tag', 'tamper_type', 'alert_fatal',
          'close_notify_inflight', 'oversize_plaintext', 'zero_len_padded', 'split_bytes']


def probe(rng):
    args = types.SimpleNamespace(host='127.0.0.1', port=PORT, sni='localhost',
                                 version=rng.choice(['1.2', '1.3']),
                                 cipher=rng.choice(['aes128gcm', 'chacha20']),
                                 path='/' + rng.choice(list(FILES)), timeout=TIMEOUT)
    name = rng.choice(PROBES)
    if name == 'zero_len_padded' and args.version == '1.2':
        name = 'tamper_tag'
    try:
        tls_probe.run_one(args, name)
    except (tls_probe.ProbeError, OSError, ValueError):
        pass
    count('probe')


WELL = [keepalive, keepalive, pipelined, ranged]
BAD = [aborted, slowloris, garbage, probe]


def worker(seed, adversarial):
    rng = random.Random(seed)
    while not stop.is_set():
        act = rng.choice(BAD if adversarial else WELL)
        try:
            act(rng)
        except Exception as e:  # noqa: BLE001
            if adversarial:
                count('adversarial_error')
            else:
                fail('%s: %s: %s' % (act.__name__, type(e).__name__, e))


def reloader():
    while not stop.wait(3):
        os.kill(PID, signal.SIGHUP)
        count('reload')


def rss_kib():
    for line in open('/proc/%d/status' % PID):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    return -1


# libktls keeps up to this many empty splice pipes per thread between
# transfers (lib/src/uring.c, PIPE_CACHE): pipes are bounded, not exact.
PIPE_CACHE = 8


def fds():
    """ktlsd's open fds: (everything but pipes, pipes)."""
    other = pipes = 0
    for f in os.listdir('/proc/%d/fd' % PID):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (PID, f))
        except OSError:
            continue
        if target.startswith('pipe:'):
            pipes += 1
        else:
            other += 1
    return other, pipes


def nthreads():
    return len(os.listdir('/proc/%d/task' % PID))


def settle(limit, seconds):
    """Wait until ktlsd holds at most limit non-pipe fds (lingering closes end)."""
    end = time.time() + seconds
    while fds()[0] > limit and time.time() < end:
        time.sleep(0.2)
    return fds()


def main():
    # warm-up: every path once, so that the baseline has its buffers
    rng = random.Random(1)
    for act in WELL + BAD:
        try:
            act(rng)
        except Exception:  # noqa: BLE001
            pass
    time.sleep(8)  # lingering closes (5 s) and slowloris (3 s) of the warm-up end
    fds0, pipes0 = fds()
    rss0 = rss_kib()
    t0 = time.time()
    ths = [threading.Thread(target=worker, args=(i, i % 2 == 1)) for i in range(THREADS)]
    ths.append(threading.Thread(target=reloader))
    for t in ths:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in ths:
        t.join()
    dur = time.time() - t0
    fds1, pipes1 = settle(fds0, 20)
    rss1 = rss_kib()
    alive = os.path.exists('/proc/%d' % PID)
    ok = sum(counts.get(k, 0) for k in ('keepalive', 'pipelined', 'range', 'conditional'))
    bad = sum(counts.get(k, 0) for k in ('aborted', 'slowloris', 'garbage', 'truncated_hello',
                                         'probe'))
    print('soak: %.0f s, %d well-formed requests answered right (%s), %d adversarial '
          'connections (%s), %d reloads; ktlsd fds %d -> %d (pipes %d -> %d), RSS %d -> %d KiB' %
          (dur, ok, ', '.join('%s %d' % (k, counts.get(k, 0))
                              for k in ('keepalive', 'pipelined', 'range', 'conditional')),
           bad, ', '.join('%s %d' % (k, counts.get(k, 0))
                          for k in ('aborted', 'slowloris', 'garbage', 'truncated_hello', 'probe')),
           counts.get('reload', 0), fds0, fds1, pipes0, pipes1, rss0, rss1), file=OUT)
    if not alive:
        failures.append('ktlsd died')
    if fds1 > fds0:
        failures.append('ktlsd holds %d fds (pipes aside), %d before the load' % (fds1, fds0))
    if pipes1 > pipes0 + 2 * PIPE_CACHE * nthreads():
        failures.append('ktlsd holds %d pipe fds, %d before the load: more than %d cached per '
                        'thread' % (pipes1, pipes0, PIPE_CACHE))
    if CHECK_RSS and rss1 > rss0 + max(16384, rss0 // 4):
        failures.append('RSS grew from %d to %d KiB' % (rss0, rss1))
    if ok == 0 or bad == 0:
        failures.append('no load ran')
    if failures:
        print('FAIL: ' + '; '.join(failures), file=OUT)
        return 1
    print('PASS', file=OUT)
    return 0


if __name__ == '__main__':
    sys.exit(main())
