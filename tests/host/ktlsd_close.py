#!/usr/bin/python3
# ktlsd_close.py PORT CA ROOT CHECK - how ktlsd ends connections and what
# it lets clients resume, seen by independent clients (raw sockets, Python
# ssl, openssl s_client).  Run by tests/host/ktlsd_serve.c; prints PASS.
#
#   refused_alert  a client that keeps writing after its ClientHello was
#                  refused reads the handshake_failure alert and a clean
#                  EOF, never a reset (lingering close)
#   linger_slot    a client lingering after that holds no --max-conns slot
#   pipelined_400  the same for a 400 in the middle of pipelined requests:
#                  the whole 400 response, then close_notify and EOF
#   resume         openssl s_client -sess_out/-sess_in and Python
#                  SSLSession, TLS 1.2 (tickets, session IDs) and 1.3;
#                  KTLSD_TICKETS says what the server was given
#   records        application-data records per response, counted on the
#                  wire: a response that fits one record is one record
#   slow_reader    12 pipelined 1 MiB responses, the last one read slowly
#                  through a 4 KiB window: it arrives whole (Connection: close)
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

port, ca, root, check = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def fail(msg):
    print('FAIL:', msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def data(name):
    with open(os.path.join(root, name), 'rb') as f:
        return f.read()


def context(version=None, no_ticket=False):
    ctx = ssl.create_default_context(cafile=ca)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if no_ticket:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


def connect():
    return socket.create_connection(('127.0.0.1', port), timeout=20)


def read_to_eof(sock):
    """Everything until EOF; the error instead of EOF, if any."""
    out = b''
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return out, None
            out += d
    except (OSError, ssl.SSLError) as e:
        return out, e


def cbc_only_client_hello():
    """A well-formed TLS 1.2 ClientHello offering only CBC suites."""
    suites = [0x002f, 0x0035, 0xc013, 0xc014, 0xc009, 0xc00a]
    groups = struct.pack('!HHH', 4, 0x001d, 0x0017)
    sigalgs = struct.pack('!HHHH', 6, 0x0403, 0x0804, 0x0401)
    ext = struct.pack('!HH', 10, len(groups)) + groups
    ext += struct.pack('!HH', 11, 2) + b'\x01\x00'
    ext += struct.pack('!HH', 13, len(sigalgs)) + sigalgs
    body = b'\x03\x03' + os.urandom(32) + b'\x00'
    body += struct.pack('!H', 2 * len(suites)) + b''.join(struct.pack('!H', c) for c in suites)
    body += b'\x01\x00' + struct.pack('!H', len(ext)) + ext
    hs = b'\x01' + struct.pack('!I', len(body))[1:] + body
    return b'\x16\x03\x01' + struct.pack('!H', len(hs)) + hs


def keep_writing(send, chunk, times):
    """The client goes on writing after the server's last word."""
    for _ in range(times):
        send(chunk)
        time.sleep(0.02)


def refused_alert():
    s = connect()
    s.sendall(cbc_only_client_hello())
    try:
        keep_writing(s.sendall, b'\x00' * 4096, 16)
    except OSError as e:
        fail('writing after the refused ClientHello: %r (a reset, not a lingering close)' % e)
    out, err = read_to_eof(s)
    s.close()
    print('read %d bytes: %s, then %s' % (len(out), out[:7].hex(), err or 'EOF'))
    expect(len(out) >= 7 and out[0] == 21 and out[1] == 3 and out[3:5] == b'\x00\x02',
           'no alert record: %r' % out[:16])
    expect(out[5] == 2 and out[6] == 40, 'alert %d/%d, wanted fatal handshake_failure' % (out[5], out[6]))
    expect(err is None, 'after the alert: %r instead of EOF' % err)


def linger_frees_slot():
    """A client lingering after its refusal holds no --max-conns slot."""
    s = connect()
    s.sendall(cbc_only_client_hello())
    alert = s.recv(7)
    expect(alert[:1] == b'\x15', 'no alert: %r' % alert)
    try:  # s stays open: the server lingers on it
        t = context().wrap_socket(connect(), server_hostname='localhost')
        t.sendall(b'GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        out, err = read_to_eof(t)
        t.close()
    except (OSError, ssl.SSLError) as e:
        out, err = b'', e
    s.close()
    expect(err is None and out.startswith(b'HTTP/1.1 200'), 'second client: %r %r' % (err, out[:40]))


def pipelined_400():
    good = b'GET /one HTTP/1.1\r\nHost: x\r\n\r\n'
    s = context().wrap_socket(connect(), server_hostname='localhost')
    s.sendall(good + b'NOT HTTP AT ALL\r\n\r\n' + good * 64)
    try:
        keep_writing(s.sendall, good * 32, 16)
    except (OSError, ssl.SSLError) as e:
        fail('writing after the 400: %r (a reset, not a lingering close)' % e)
    out, err = read_to_eof(s)
    s.close()
    first = b'HTTP/1.1 200 OK\r\n'
    expect(out.startswith(first), 'first response: %r' % out[:40])
    i = out.find(b'HTTP/1.1 400 ')
    expect(i > 0, 'no 400 in %r' % out[:200])
    head, _, body = out[i:].partition(b'\r\n\r\n')
    length = [int(h.split(b':')[1]) for h in head.split(b'\r\n') if h.lower().startswith(b'content-length:')]
    print('400 head %d bytes, body %r, then %s' % (len(head), body, err or 'close_notify + EOF'))
    expect(length and len(body) == length[0] and body.startswith(b'400 '),
           'incomplete 400 response: %r' % out[i:])
    expect(err is None, 'after the 400: %r instead of close_notify' % err)


def get_one(ctx, session=None):
    """GET /one on a fresh connection: (session afterwards, resumed?)."""
    s = ctx.wrap_socket(connect(), server_hostname='localhost', session=session)
    s.sendall(b'GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    out, err = read_to_eof(s)
    expect(err is None and out.startswith(b'HTTP/1.1 200') and out.endswith(data('one')),
           'GET /one: %r %r' % (err, out[:40]))
    sess, reused = s.session, s.session_reused
    s.close()
    return sess, reused


def python_resumes(ctx):
    """A second connection offering the first one's session: resumed?"""
    return get_one(ctx, get_one(ctx)[0])[1]


def s_client_resumes(flags):
    """Two s_client runs sharing a session file: was the second 'Reused'?
    No file means the server offered nothing to resume (no ticket, and an
    empty session id: it keeps no cache)."""
    with tempfile.TemporaryDirectory() as d:
        sess = os.path.join(d, 'sess.pem')
        outs = []
        for io in (['-sess_out', sess], ['-sess_in', sess]):
            if io[0] == '-sess_in' and not os.path.exists(sess):
                return False
            p = subprocess.run(['openssl', 's_client', '-connect', '127.0.0.1:%d' % port,
                                '-servername', 'localhost', '-CAfile', ca, '-ign_eof'] + flags + io,
                               input=b'GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            outs.append(p.stdout.decode('latin1'))
        lines = [l for l in outs[1].splitlines() if l.startswith(('New, ', 'Reused, '))]
        expect(lines, 's_client %s: no New/Reused line:\n%s' % (flags, outs[1][-800:]))
        return lines[0].startswith('Reused, ')


def resume():
    tickets = int(os.environ['KTLSD_TICKETS'])
    v12, v13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
    cases = [  # (what, resumed with s_client, resumed with Python)
        ('TLS 1.2 ticket', ['-tls1_2'], context(v12)),
        ('TLS 1.2 session id', ['-tls1_2', '-no_ticket'], context(v12, no_ticket=True)),
        ('TLS 1.3 ticket', ['-tls1_3'], context(v13)),
    ]
    want = {'TLS 1.2 ticket': tickets > 0, 'TLS 1.2 session id': False, 'TLS 1.3 ticket': tickets > 0}
    for what, flags, ctx in cases:
        sc, pr = s_client_resumes(flags), python_resumes(ctx)
        print('--tickets %d, %s: s_client %s, Python %s' % (tickets, what, sc and 'Reused' or 'New',
                                                           pr and 'resumed' or 'full handshake'))
        expect(sc == want[what] and pr == want[what],
               '%s: resumed s_client=%s python=%s, wanted %s' % (what, sc, pr, want[what]))


def records_for(path, version):
    """(application-data records carrying the response, the response)."""
    ctx = context(version)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outb, server_hostname='localhost')
    sock = connect()

    def flush():
        d = outb.read()
        if d:
            sock.sendall(d)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            d = sock.recv(65536)
            expect(d, 'EOF during the handshake')
            inc.write(d)
    flush()
    tls.write(b'GET ' + path.encode() + b' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    flush()
    raw, err = read_to_eof(sock)
    sock.close()
    expect(err is None, 'reading %s: %r' % (path, err))
    response, n, off = b'', 0, 0
    while off + 5 <= len(raw):  # one record at a time into OpenSSL
        size = struct.unpack('!H', raw[off + 3:off + 5])[0]
        inc.write(raw[off:off + 5 + size])
        off += 5 + size
        got, closed = b'', False
        try:
            while True:
                d = tls.read(1 << 20)
                if not d:  # close_notify
                    closed = True
                    break
                got += d
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            closed = True
        if got:
            n += 1
            response += got
        if closed:
            break
    return n, response


def records():
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        for path, name, want in (('/one', 'one', 1), ('/empty', 'empty', 1), ('/nope', None, 1),
                                 ('/r16384', 'r16384', 2)):
            n, resp = records_for(path, version)
            head, _, body = resp.partition(b'\r\n\r\n')
            print('%s %s: %d record(s), %d bytes' % (version.name, path, n, len(resp)))
            expect(name is None or body == data(name), '%s: body differs' % path)
            expect(n == want, '%s %s: %d records, wanted %d' % (version.name, path, n, want))


def slow_reader():
    """The last response of a connection, read slowly through a small
    window, arrives whole: ktlsd's close waits for what it still holds
    (OpenSSL's last record on a full socket) before its FIN."""
    import hashlib
    want = data('m1.bin')
    n = 12  # more than the server's socket buffer can take (tcp_wmem: 4 MiB)
    reqs = b''.join(('GET /m1.bin HTTP/1.1\r\nHost: localhost\r\n%s\r\n' %
                     ('Connection: close\r\n' if i == n - 1 else '')).encode() for i in range(n))
    for attempt in range(3):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(20)
        raw.connect(('127.0.0.1', port))
        s = context().wrap_socket(raw, server_hostname='localhost')
        s.sendall(reqs)
        got, end = b'', 'clean EOF'
        while True:
            try:
                d = s.recv(4096)
            except (OSError, ssl.SSLError) as e:
                end = '%s: %s' % (e.__class__.__name__, e)
                break
            if not d:
                break
            got += d
            if len(got) > (n - 1) * len(want):
                time.sleep(0.0005)  # slow over the last response only
        s.close()
        bodies = []
        rest = got
        while b'\r\n\r\n' in rest:
            head, rest = rest.split(b'\r\n\r\n', 1)
            bodies.append(rest[:len(want)])
            rest = rest[len(want):]
        print('slow reader %d: %d bytes, %d responses, %s' % (attempt, len(got), len(bodies), end))
        expect(len(bodies) == n and all(b == want for b in bodies),
               'slow reader: %d of %d responses whole (%d bytes; %s)' %
               (sum(1 for b in bodies if b == want), n, len(got), end))


checks = {'refused_alert': refused_alert, 'linger_slot': linger_frees_slot,
          'pipelined_400': pipelined_400, 'resume': resume, 'records': records,
          'slow_reader': slow_reader}
if check not in checks:
    fail('unknown check ' + check)
checks[check]()
print('PASS')
