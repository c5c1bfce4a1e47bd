#!/usr/bin/python3
"""nic_offload.py CASE - the SmartNIC path on the rig's test NIC (issue 13).

Run by tests/guest/nic_offload.c inside a guest booted with
KTLS_VM_NICSIM=1 (tests/vm/nicsim): ktsim0 10.77.0.1 offloads TLS TX,
ktsim1 10.77.0.2 sits in network namespace "peer".  ktlsd serves on
10.77.0.1; clients (Python ssl, curl) run in "peer", so every byte crosses
the device.  Each case prints what it checked and exits non-zero on the
first broken expectation.  Cases share the device and the kernel's global
counters, so they take a lock and run one at a time.

Cases: download, sockets, toggle, refused, zerocopy, device_down, loss, bench.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BUILD = os.environ.get("KTLS_TEST_BUILD", os.path.abspath("build"))
CERTS = os.environ.get("KTLS_TEST_CERTS", os.path.join(BUILD, "tests", "certs"))
KTLSD = os.path.join(BUILD, "ktlsd")
KTLSCTL = os.path.join(BUILD, "ktlsctl")
ADDR = "10.77.0.1"
DEV = "ktsim0"
AES128 = "ECDHE-ECDSA-AES128-GCM-SHA256"
AES256 = "ECDHE-ECDSA-AES256-GCM-SHA384"
CHACHA = "ECDHE-ECDSA-CHACHA20-POLY1305"
AES256_PARAM = "/sys/module/ktls_nicsim/parameters/aes256"


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok:", what, flush=True)


def run(*argv, ns=None, check_rc=True, **kw):
    if ns:
        argv = ("ip", "netns", "exec", ns) + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    if check_rc and p.returncode != 0:
        raise Fail("%s: exit %d: %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p


def tls_stat():
    out = {}
    with open("/proc/net/tls_stat") as f:
        for line in f:
            k, v = line.split()
            out[k] = int(v)
    return out


def nic():
    return json.loads(run(KTLSCTL, "nic", DEV, "--json").stdout)["interfaces"][0]


def nic_counter(name):
    return nic()["counters"].get(name, -1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- files --------------------------------------------------------------------------

SIZES = {"0B": 0, "1B": 1, "16K-1": 16383, "16K": 16384, "16K+1": 16385,
         "1M": 1 << 20, "64M": 64 << 20}


def make_files(root, names):
    digests = {}
    for n in names:
        path = os.path.join(root, n)
        size = SIZES[n]
        h = hashlib.sha256()
        with open(path, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                f.write(chunk)
                h.update(chunk)
                left -= len(chunk)
        digests[n] = h.hexdigest()
    return digests


# ---- the server ---------------------------------------------------------------------

class Ktlsd:
    """ktlsd serve on 10.77.0.1 with metrics on loopback; log kept."""

    def __init__(self, root, extra=()):
        self.port = free_port()
        self.mport = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", prefix="ktlsd-nic-", suffix=".log", delete=False)
        argv = [KTLSD, "serve", "--root", root, "--listen", "%s:%d" % (ADDR, self.port),
                "--cert", os.path.join(CERTS, "server-ec.pem"),
                "--key", os.path.join(CERTS, "server-ec.key"),
                "--metrics", "127.0.0.1:%d" % self.mport, "--workers", "1",
                "--foreground", "--access-log", "-", "--idle-timeout", "120",
                "--request-timeout", "120"] + list(extra)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "listening on" in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise Fail("ktlsd did not start:\n" + self.text())

    def text(self):
        with open(self.log.name) as f:
            return f.read()

    def handshakes(self):
        """The per-connection log lines, in order."""
        return [l for l in self.text().splitlines() if re.search(r"10\.77\.0\.2:\d+: TLSv", l)]

    def line_for(self, cport):
        # The client may finish its side of the handshake a moment before
        # ktlsd logs its own.
        deadline = time.time() + 20
        while time.time() < deadline:
            for l in self.handshakes():
                if "10.77.0.2:%d: " % cport in l:
                    return l
            time.sleep(0.1)
        raise Fail("no handshake line for client port %d in ktlsd's log:\n%s" % (cport, self.text()))

    def metric(self, name, labels):
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.mport, timeout=10).read().decode()
        for line in body.splitlines():
            if line.startswith(name + "{" + labels + "}"):
                return float(line.split()[-1])
        return 0.0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.log.name)


# ---- clients (they run in namespace "peer") -------------------------------------------

def client_main(argv):
    """In "peer": GET one file, print {"port":..., "len":..., "sha256":..., "status":...}.
    argv: port path maxver cipher [hold_seconds] [rate_bytes_per_s]"""
    port, path, maxver, cipher = int(argv[0]), argv[1], argv[2], argv[3]
    hold = float(argv[4]) if len(argv) > 4 else 0
    rate = int(argv[5]) if len(argv) > 5 else 0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(CERTS, "ca.pem"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3 if maxver == "1.3" else ssl.TLSVersion.TLSv1_2
    if maxver == "1.2":
        ctx.set_ciphers(cipher)
    raw = socket.create_connection((ADDR, port), timeout=120)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    cport = s.getsockname()[1]
    print(json.dumps({"handshake": cport, "cipher": s.cipher()[0], "version": s.version()}), flush=True)
    if hold:
        time.sleep(hold)
    s.sendall(("GET /%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    want = int(m.group(1)) if m else -1
    h = hashlib.sha256(body)
    n = len(body)
    t0 = time.time()
    try:
        while n < want:
            d = s.recv(min(65536, want - n))
            if not d:
                break
            h.update(d)
            n += len(d)
            if rate:
                ahead = n / rate - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError as e:
        print(json.dumps({"port": cport, "error": str(e), "len": n}), flush=True)
        return 0
    print(json.dumps({"port": cport, "status": status, "len": n, "want": want,
                      "sha256": h.hexdigest()}), flush=True)
    return 0


class Client:
    """A Python ssl client in "peer", in the background."""

    def __init__(self, port, path, maxver="1.2", cipher=AES128, hold=0, rate=0):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", "peer", sys.executable, os.path.abspath(__file__), "client",
             str(port), path, maxver, cipher, str(hold), str(rate)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        if not first:
            raise Fail("client for /%s did not complete a handshake: %s" % (path, self.proc.stderr.read()))
        hs = json.loads(first)
        self.cport, self.cipher, self.version = hs["handshake"], hs["cipher"], hs["version"]

    def result(self, timeout=600):
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0 or not out.strip():
            raise Fail("client failed (exit %s): %s" % (self.proc.returncode, err.strip()))
        return json.loads(out.strip().splitlines()[-1])


def fetch_py(port, name, digests, **kw):
    c = Client(port, name, **kw)
    r = c.result()
    check(r.get("status") == 200 and r["len"] == SIZES[name] and r["sha256"] == digests[name],
          "python ssl %s %s: /%s %d bytes, sha256 matches" % (c.version, c.cipher, name, SIZES[name]))
    return c.cport


def fetch_curl(port, name, digests, cipher=AES128):
    with tempfile.NamedTemporaryFile(prefix="curl-body-") as body_file:
        out = subprocess.run(["ip", "netns", "exec", "peer", "curl", "-sS", "--fail", "--cacert",
                              os.path.join(CERTS, "ca.pem"), "--resolve",
                              "localhost:%d:%s" % (port, ADDR), "--tls-max", "1.2", "--ciphers", cipher,
                              "-o", body_file.name, "-w", "%{local_port}",
                              "https://localhost:%d/%s" % (port, name)],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise Fail("curl /%s: exit %d: %s" % (name, out.returncode, out.stderr.strip()))
        body = body_file.read()
    check(len(body) == SIZES[name] and hashlib.sha256(body).hexdigest() == digests[name],
          "curl TLS 1.2 %s: /%s %d bytes, sha256 matches (got %d)" % (cipher, name, SIZES[name], len(body)))
    return int(out.stdout)


def expect_mode(srv, cport, tx, also=None):
    line = srv.line_for(cport)
    check(" tx=%s " % tx in line + " " and (also is None or also in line),
          "ktlsd's log: tx=%s%s (%s)" % (tx, "" if also is None else ", says " + also, line.split(": ", 1)[1]))
    return line


# ---- cases ---------------------------------------------------------------------------

def case_download(root):
    names = list(SIZES)
    digests = make_files(root, names)
    feats = nic()["features"]["tls-hw-tx-offload"]
    check(feats["active"] and feats["hw"], "ktlsctl nic %s: tls-hw-tx-offload supported and active" % DEV)
    srv = Ktlsd(root)
    try:
        st0, add0 = tls_stat(), nic_counter("tls_tx_ctx_add")
        hw0 = srv.metric("ktls_served_bytes_total", 'tx="hw"')
        conns = body = 0
        for n in names:
            expect_mode(srv, fetch_py(srv.port, n, digests), "hw")
            expect_mode(srv, fetch_curl(srv.port, n, digests), "hw")
            conns += 2
            body += 2 * SIZES[n]
        st1 = tls_stat()
        check(st1["TlsTxDevice"] - st0["TlsTxDevice"] == conns,
              "/proc/net/tls_stat TlsTxDevice +%d (one per connection)" % conns)
        check(st1["TlsTxSw"] == st0["TlsTxSw"], "TlsTxSw did not move (%d)" % st1["TlsTxSw"])
        check(nic_counter("tls_tx_ctx_add") - add0 == conns,
              "the device's tls_tx_ctx_add +%d (ktlsctl nic counters)" % conns)
        check(nic_counter("tls_tx_encrypted_bytes") > body,
              "the device encrypted more than the %d body bytes" % body)
        hw1 = srv.metric("ktls_served_bytes_total", 'tx="hw"')
        check(hw1 - hw0 == body, "ktlsd metrics: ktls_served_bytes_total{tx=\"hw\"} +%d" % body)
        check(srv.metric("ktls_connections_total", 'tx="hw",rx="sw"') >= conns,
              "ktlsd metrics: ktls_connections_total{tx=\"hw\",rx=\"sw\"} >= %d" % conns)
    finally:
        srv.stop()


def ss_line(cport):
    out = run("ss", "-tni", "sport = :%d or dport = :%d" % (cport, cport)).stdout
    return " ".join(out.split())


def case_sockets(root):
    digests = make_files(root, ["1M"])
    srv = Ktlsd(root)
    try:
        c = Client(srv.port, "1M", hold=3)
        time.sleep(1)
        socks = json.loads(run(KTLSCTL, "sockets", "--json", "dport=%d" % c.cport).stdout)["sockets"]
        check(len(socks) == 1, "ktlsctl sockets dport=%d: the server's socket of the open connection" % c.cport)
        s = socks[0]
        check(s["txconf"] == "hw" and s["rxconf"] == "sw" and s["version"] == "1.2" and
              s["cipher"] == "aes-gcm-128", "ktlsctl sockets: txconf hw, rxconf sw, 1.2 aes-gcm-128")
        ss = ss_line(c.cport)
        check("txconf: hw" in ss and "rxconf: sw" in ss and "cipher: aes-gcm-128" in ss,
              "ss -tni agrees: %s" % re.search(r"tcp-ulp-tls.*?txconf: \w+", ss).group(0))
        hw_only = json.loads(run(KTLSCTL, "sockets", "--json", "conf=hw").stdout)["sockets"]
        check(any(x["peer"].endswith(":%d" % c.cport) for x in hw_only), "ktlsctl sockets conf=hw lists it")
        r = c.result()
        check(r["sha256"] == digests["1M"], "and the download completes, sha256 matches")
    finally:
        srv.stop()


def case_toggle(root):
    digests = make_files(root, ["1M", "64M"])
    srv = Ktlsd(root)
    try:
        # An open connection on the device, reading slowly through the change.
        slow = Client(srv.port, "64M", rate=8 << 20)
        expect_mode(srv, slow.cport, "hw")
        time.sleep(1)
        out = run(KTLSCTL, "nic", DEV, "tx", "off", "--json").stdout
        check(json.loads(out)["changed"] and not nic()["features"]["tls-hw-tx-offload"]["active"],
              "ktlsctl nic %s tx off: the feature is off" % DEV)
        expect_mode(srv, fetch_py(srv.port, "1M", digests), "sw")
        r = slow.result()
        check(r.get("sha256") == digests["64M"],
              "the connection opened before tx off kept working: 64 MiB, sha256 matches")
        run(KTLSCTL, "nic", DEV, "tx", "on")
        check(nic()["features"]["tls-hw-tx-offload"]["active"], "ktlsctl nic %s tx on: active again" % DEV)
        expect_mode(srv, fetch_py(srv.port, "1M", digests), "hw")
    finally:
        run(KTLSCTL, "nic", DEV, "tx", "on", check_rc=False)
        srv.stop()


def set_aes256(on):
    with open(AES256_PARAM, "w") as f:
        f.write("1" if on else "0")


def case_refused(root):
    digests = make_files(root, ["1M"])
    srv = Ktlsd(root)
    try:
        set_aes256(False)
        st0, ref0 = tls_stat(), nic_counter("tls_tx_ctx_refused")
        expect_mode(srv, fetch_py(srv.port, "1M", digests, cipher=AES256), "sw",
                    "ktsim0 has tls-hw-tx-offload on but declined this TLS 1.2 AES-256-GCM context")
        check(nic_counter("tls_tx_ctx_refused") == ref0 + 1, "the device counted the refusal")
        expect_mode(srv, fetch_py(srv.port, "1M", digests, maxver="1.3", cipher=""), "sw",
                    "the kernel hands devices TLS 1.2 only")
        expect_mode(srv, fetch_py(srv.port, "1M", digests, cipher=CHACHA), "sw",
                    "the kernel hands devices AES-GCM only")
        st1 = tls_stat()
        check(st1["TlsTxSw"] - st0["TlsTxSw"] == 3 and st1["TlsTxDevice"] == st0["TlsTxDevice"],
              "all three in kernel software (TlsTxSw +3), not userspace, not the device")
        set_aes256(True)
        expect_mode(srv, fetch_py(srv.port, "1M", digests, cipher=AES256), "hw")
    finally:
        set_aes256(False)
        srv.stop()


def case_zerocopy(root):
    digests = make_files(root, ["1M", "64M"])
    srv = Ktlsd(root, ["--zerocopy-sendfile"])
    try:
        c = Client(srv.port, "64M", rate=16 << 20)
        expect_mode(srv, c.cport, "hw", "zerocopy")
        socks = json.loads(run(KTLSCTL, "sockets", "--json", "dport=%d" % c.cport).stdout)["sockets"]
        check(len(socks) == 1 and socks[0]["zc_ro_tx"], "ktlsctl sockets: zc_ro_tx on the device connection")
        check("zc_ro_tx" in ss_line(c.cport), "ss -tni shows zc_ro_tx too")
        r = c.result()
        check(r.get("sha256") == digests["64M"], "64 MiB with zero-copy sendfile, sha256 matches")
        expect_mode(srv, fetch_curl(srv.port, "1M", digests), "hw", "zerocopy")
    finally:
        srv.stop()


def case_device_down(root):
    digests = make_files(root, ["1M", "64M"])
    srv = Ktlsd(root)
    try:
        c = Client(srv.port, "64M", rate=8 << 20)
        expect_mode(srv, c.cport, "hw")
        time.sleep(2)
        del0 = nic_counter("tls_tx_ctx_del")
        run("ip", "link", "set", DEV, "down")
        time.sleep(1)
        check(nic_counter("tls_tx_ctx_del") > del0,
              "device down: the kernel released the device's context (tls_tx_ctx_del moved)")
        run("ip", "link", "set", DEV, "up")
        r = c.result()
        if "error" in r:
            check(True, "the download across the device going down failed cleanly: %s" % r["error"])
        else:
            check(r["sha256"] == digests["64M"],
                  "the download across the device going down completed (kernel SW fallback), sha256 matches")
        check(srv.alive(), "ktlsd survived")
        expect_mode(srv, fetch_py(srv.port, "1M", digests), "hw")
    finally:
        run("ip", "link", "set", DEV, "up", check_rc=False)
        srv.stop()


def retrans():
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("RetransSegs")])


def case_loss(root):
    digests = make_files(root, ["1M", "64M"])
    srv = Ktlsd(root)
    try:
        run("tc", "qdisc", "add", "dev", DEV, "root", "netem", "loss", "1%")
        run("tc", "qdisc", "add", "dev", "ktsim1", "root", "netem", "loss", "1%", ns="peer")
        r0 = retrans()
        for n in ("1M", "64M"):
            expect_mode(srv, fetch_py(srv.port, n, digests), "hw")
            expect_mode(srv, fetch_curl(srv.port, n, digests), "hw")
        check(retrans() > r0, "TCP retransmitted %d segments of offloaded records" % (retrans() - r0))
        check(nic_counter("tls_tx_encrypt_errors") == 0, "the device never failed to encrypt")
    finally:
        run("tc", "qdisc", "del", "dev", DEV, "root", check_rc=False)
        run("tc", "qdisc", "del", "dev", "ktsim1", "root", ns="peer", check_rc=False)
        srv.stop()


def case_bench(root):
    out = os.path.join(root, "bench.json")
    p = run(os.path.join(BUILD, "ktls-bench"), "serve", "--quick", "--configs", "2,6",
            "--sizes", "16K,1M", "--json", out, timeout=900)
    with open(out) as f:
        rows = json.load(f)
    nic_rows = [r for r in rows if r.get("configuration") == "ktlsd-nic"]
    check(len(nic_rows) == 2, "ktls-bench has a ktlsd-nic row per size")
    for r in nic_rows:
        what = "ktlsd-nic %d B" % r["file_size"]
        check(r["measured"] and not r["error"] and not r["skipped"], "%s measured (%s)" % (what, r["error"]))
        check(r["tls_version"] == "TLSv1.2" and "AES128-GCM" in r["cipher"],
              "%s: %s %s" % (what, r["tls_version"], r["cipher"]))
        check(r["bytes"] > 0 and r["bytes"] == r["server_bytes"],
              "%s: %d bytes verified by the client = the access log's" % (what, r["bytes"]))
        check(r["ktls_tx_installs"] >= r["conns"], "%s: a kTLS TX install per connection" % what)
        # (rchar also counts ktlsd's few small reads of its own, e.g. /proc)
        check(0 <= r["userspace_copy_bytes_per_byte"] < 0.001,
              "%s: no body bytes copied through ktlsd (%.6f per byte)" % (what, r["userspace_copy_bytes_per_byte"]))
        check(r["syscalls_per_request"] > 0, "%s: %.1f syscalls per request, %.1f per connection"
              % (what, r["syscalls_per_request"], r["syscalls_per_connection"]))
    check("emulated" in run(os.path.join(BUILD, "ktls-bench"), "--help", check_rc=False).stdout +
          p.stdout + p.stderr, "the row is labelled emulated")


CASES = {"download": case_download, "sockets": case_sockets, "toggle": case_toggle,
         "refused": case_refused, "zerocopy": case_zerocopy, "device_down": case_device_down,
         "loss": case_loss, "bench": case_bench}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        return client_main(sys.argv[2:])
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: nic_offload.py %s" % "|".join(CASES), file=sys.stderr)
        return 2
    if not os.path.isdir("/sys/class/net/" + DEV):
        print("FAIL: no %s: the guest was booted without the test NIC (KTLS_VM_NICSIM=1)" % DEV,
              file=sys.stderr)
        return 1
    with open("/run/ktls-nic.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with tempfile.TemporaryDirectory(prefix="nic-") as root:
            try:
                CASES[sys.argv[1]](root)
            except Fail as e:
                print("FAIL:", e, file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
