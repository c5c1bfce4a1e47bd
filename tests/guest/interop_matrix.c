/*
 * interop_matrix.c - our kTLS connections against real third-party peers.
 *
 *   our client  <->  openssl s_server, gnutls-serv --echo, Python ssl server
 *   our server  <->  openssl s_client, gnutls-cli, Python ssl client, curl
 *   x TLS 1.2 / TLS 1.3 x AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305
 *
 * Each cell moves small messages and 4 MiB each way, compares SHA-256 on
 * both ends, ends with close_notify, and (in the rig's guest) requires both
 * directions in the kernel with /proc/net/tls_stat TlsTxSw/TlsRxSw moving.
 * Outside the guest the same cells must run in userspace with the
 * "kernel has no kTLS" reason.  Peers are run as processes; our side is
 * libktls in this process.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "../common/offload_peer.h"
#include "../common/testutil.h"

#define CHUNK (64 * 1024)
#define BULK (4 * 1024 * 1024)
#define PY "/usr/bin/python3"

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(interop_matrix, .init = init, .timeout = 900);

/* ---- the byte streams: small messages, then 4 MiB --------------------------- */

/* Every piece ends in a newline: gnutls-serv --echo answers per line. */
static const char *smalls[] = { "a\n", "bc\n", "hello kTLS\n", "0123456789abcdef\n" };
#define NSMALL 4

static size_t stream_len(void)
{
	size_t n = BULK;
	for (int i = 0; i < NSMALL; i++)
		n += strlen(smalls[i]);
	return n;
}

/* Piece i of stream seed (small ones first), into buf; its length. */
static size_t piece(unsigned seed, int i, unsigned char *buf)
{
	if (i < NSMALL) {
		size_t n = strlen(smalls[i]);
		memcpy(buf, smalls[i], n);
		return n;
	}
	tu_fill(buf, CHUNK, seed * 7919u + (unsigned)i);
	/* Printable: gnutls-serv --echo treats what it reads as C strings. */
	for (size_t k = 0; k < CHUNK; k++)
		buf[k] = (unsigned char)(0x21 + buf[k] % 94);
	buf[CHUNK - 1] = '\n';
	return CHUNK;
}

#define NPIECES (NSMALL + BULK / CHUNK)

static void hash_hex(EVP_MD_CTX *h, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_DigestFinal_ex(h, md, &n);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void stream_hash(unsigned seed, char out[65])
{
	unsigned char *b = malloc(CHUNK);
	EVP_MD_CTX *h = EVP_MD_CTX_new();

	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	for (int i = 0; i < NPIECES; i++)
		EVP_DigestUpdate(h, b, piece(seed, i, b));
	hash_hex(h, out);
	EVP_MD_CTX_free(h);
	free(b);
}

/* ---- pipes to and from peer processes ---------------------------------------- */

struct feed {
	int fd;
	unsigned seed;
	int close_after;
	pthread_t th;
};

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	unsigned char *b = malloc(CHUNK);

	for (int i = 0; i < NPIECES; i++)
		if (tu_write_full(f->fd, b, piece(f->seed, i, b)))
			break;
	if (f->close_after) {
		close(f->fd);
		f->fd = -1;
	}
	free(b);
	return NULL;
}

struct drain {
	int fd;
	size_t n;
	char hex[65];
	pthread_mutex_t mu;
	pthread_t th;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	unsigned char *b = malloc(CHUNK);
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	ssize_t r;

	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	while ((r = read(d->fd, b, CHUNK)) > 0) {
		EVP_DigestUpdate(h, b, (size_t)r);
		pthread_mutex_lock(&d->mu);
		d->n += (size_t)r;
		pthread_mutex_unlock(&d->mu);
	}
	hash_hex(h, d->hex);
	EVP_MD_CTX_free(h);
	free(b);
	return NULL;
}

static size_t drained(struct drain *d)
{
	size_t n;
	pthread_mutex_lock(&d->mu);
	n = d->n;
	pthread_mutex_unlock(&d->mu);
	return n;
}

static void drain_start(struct drain *d, int fd)
{
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	pthread_mutex_init(&d->mu, NULL);
	cr_assert_eq(pthread_create(&d->th, NULL, drain_main, d), 0);
}

/* Wait until the drain has seen want bytes (or timeout). */
static int drain_wait(struct drain *d, size_t want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms / 10; t++) {
		if (drained(d) >= want)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* ---- our side --------------------------------------------------------------- */

static void our_send(ktls_conn *c, unsigned seed)
{
	unsigned char *b = malloc(CHUNK);

	for (int i = 0; i < NPIECES; i++) {
		size_t n = piece(seed, i, b);
		ssize_t w = ktls_conn_write(c, b, n);
		cr_assert_eq(w, (ssize_t)n, "write piece %d: %zd %s", i, w, ktls_conn_error(c));
	}
	free(b);
}

/* Read until close_notify (0); bytes and hash.  -1 on a read error. */
static ssize_t our_recv_all(ktls_conn *c, char hex[65], char *err, size_t elen)
{
	unsigned char *b = malloc(CHUNK);
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	size_t total = 0;
	ssize_t r;

	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	while ((r = ktls_conn_read(c, b, CHUNK)) > 0) {
		EVP_DigestUpdate(h, b, (size_t)r);
		total += (size_t)r;
	}
	if (r < 0)
		snprintf(err, elen, "read after %zu bytes: %s", total, ktls_conn_error(c));
	hash_hex(h, hex);
	EVP_MD_CTX_free(h);
	free(b);
	return r < 0 ? -1 : (ssize_t)total;
}

/* Read exactly n bytes into the hash h. */
static void our_recv_n(ktls_conn *c, size_t n, EVP_MD_CTX *h)
{
	unsigned char *b = malloc(CHUNK);

	while (n) {
		ssize_t r = ktls_conn_read(c, b, n < CHUNK ? n : CHUNK);
		cr_assert_gt(r, 0, "read (%zu left): %zd %s", n, r, ktls_conn_error(c));
		EVP_DigestUpdate(h, b, (size_t)r);
		n -= (size_t)r;
	}
	free(b);
}

/*
 * Send the stream piece by piece and read each echo back, one piece ahead
 * so both ends encrypt at once (gnutls-serv drops connections older than
 * 30 s, which a 4 MiB echo under TCG can otherwise approach).
 */
static void our_echo_client(ktls_conn *c, unsigned seed)
{
	unsigned char *b = malloc(CHUNK), *e = malloc(CHUNK);

	for (int i = 0; i <= NPIECES; i++) {
		size_t n, got = 0;

		if (i < NPIECES) {
			n = piece(seed, i, b);
			cr_assert_eq(ktls_conn_write(c, b, n), (ssize_t)n, "write piece %d: %s", i,
				     ktls_conn_error(c));
		}
		if (i == 0)
			continue;
		n = piece(seed, i - 1, b);
		while (got < n) {
			ssize_t r = ktls_conn_read(c, e + got, n - got);
			cr_assert_gt(r, 0, "echo of piece %d: %zd %s%s", i - 1, r, ktls_conn_error(c),
				     r == 0 ? " (the peer closed: gnutls-serv drops connections "
					      "older than 30 s)" : "");
			got += (size_t)r;
		}
		cr_assert_arr_eq(e, b, n, "echo of piece %d differs", i - 1);
	}
	free(b);
	free(e);
}

/* Echo until the peer's close_notify; bytes echoed. */
static size_t our_echo_server(ktls_conn *c)
{
	unsigned char *b = malloc(CHUNK);
	size_t total = 0;
	ssize_t r;

	while ((r = ktls_conn_read(c, b, CHUNK)) > 0) {
		cr_assert_eq(ktls_conn_write(c, b, (size_t)r), r, "%s", ktls_conn_error(c));
		total += (size_t)r;
	}
	cr_assert_eq(r, 0, "echo ended with %zd: %s", r, ktls_conn_error(c));
	free(b);
	return total;
}

/* ---- cells --------------------------------------------------------------------- */

enum peer_kind { SSERVER, GSERV, PYSERVER, SCLIENT, GCLI, PYCLIENT, CURL, NPEERS };
static const char *peer_names[NPEERS] = { "openssl s_server", "gnutls-serv", "python server",
					  "openssl s_client", "gnutls-cli", "python client", "curl" };

static char *gnutls_priority(const struct suite *s, char *buf, size_t n)
{
	const char *c = s->tls_cipher == 51 ? "AES-128-GCM" : s->tls_cipher == 52 ? "AES-256-GCM"
										   : "CHACHA20-POLY1305";
	snprintf(buf, n, "NORMAL:-VERS-ALL:+VERS-TLS1.%d:-CIPHER-ALL:+%s", s->version == KTLS_TLS1_3 ? 3 : 2,
		 c);
	return buf;
}

/* One line from a peer's stdout (up to and including '\n'); its length. */
static ssize_t read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = 0;
	return (ssize_t)n;
}

static int connect_retry(int port)
{
	for (int i = 0; i < 600; i++) {
		int fd = tu_connect(port);
		if (fd >= 0)
			return fd;
		usleep(50000);
	}
	return -1;
}

/* Offload and check who encrypts, for the guest or for a host without kTLS. */
static void check_offload(ktls_conn *c, const char *cell)
{
	struct ktls_info info;

	cr_assert_eq(ktls_conn_offload(c), 0, "%s: %s", cell, ktls_conn_error(c));
	cr_assert_eq(ktls_conn_info(c, &info), 0);
	if (tu_expect_ktls()) {
		cr_expect_eq(info.tx, KTLS_MODE_SW, "%s: %s", cell, info.fallback_reason);
		cr_expect_eq(info.rx, KTLS_MODE_SW, "%s: %s", cell, info.fallback_reason);
		cr_expect_null(info.fallback_reason, "%s", cell);
	} else {
		cr_expect_eq(info.tx, KTLS_MODE_USER, "%s", cell);
		cr_expect(info.fallback_reason && strstr(info.fallback_reason, "kernel has no kTLS"),
			  "%s: %s", cell, info.fallback_reason);
	}
}

static void run_cell(enum peer_kind pk, const struct suite *s)
{
	char cell[128], prio[128], port_s[16], want1[65], want2[65], got[65], err[256] = "";
	const char *ver = s->version == KTLS_TLS1_3 ? "-tls1_3" : "-tls1_2";
	const char *csel = s->version == KTLS_TLS1_3 ? "-ciphersuites" : "-cipher";
	const char *pyver = s->version == KTLS_TLS1_3 ? "1.3" : "1.2";
	int server_side = pk >= SCLIENT; /* we are the server */
	int port, ls = -1, fd = -1, to = -1, from = -1;
	long long tx0 = tu_tls_stat("TlsTxSw"), rx0 = tu_tls_stat("TlsRxSw");
	struct drain d;
	struct feed f = { 0 };
	struct ours o;
	pid_t pid;
	int st;

	snprintf(cell, sizeof(cell), "%s TLS1.%d %s", peer_names[pk], s->version == KTLS_TLS1_3 ? 3 : 2,
		 s->name);
	stream_hash(1, want1);
	stream_hash(2, want2);
	if (server_side) {
		ls = tu_listen(&port);
		cr_assert_geq(ls, 0);
	} else {
		port = tu_free_port();
	}
	snprintf(port_s, sizeof(port_s), "%d", port);
	gnutls_priority(s, prio, sizeof(prio));

	switch (pk) {
	case SSERVER: {
		char acc[32];
		snprintf(acc, sizeof(acc), "127.0.0.1:%d", port);
		char *argv[] = { "openssl", "s_server", "-accept", acc, "-naccept", "1", "-quiet",
				 "-cert", (char *)tu_cert("server-ec.pem"), "-key",
				 (char *)tu_cert("server-ec.key"), (char *)ver, (char *)csel,
				 (char *)s->name, NULL };
		pid = tu_spawn(argv, &to, &from);
		break;
	}
	case GSERV: {
		char pa[160];
		snprintf(pa, sizeof(pa), "--priority=%s", prio);
		/* Its stderr echoes every line it gets: 4 MiB on the guest console. */
		char *argv[] = { "sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null", "gnutls-serv", "--quiet",
				 "-p", port_s, "--echo", "--crlf", "--x509certfile",
				 (char *)tu_cert("server-ec.pem"), "--x509keyfile",
				 (char *)tu_cert("server-ec.key"), pa, NULL };
		pid = tu_spawn(argv, NULL, &from);
		break;
	}
	case PYSERVER: {
		char *argv[] = { PY, "-c",
			"import ssl,socket,sys,hashlib\n"
			"p,v,crt,key=int(sys.argv[1]),sys.argv[2],sys.argv[3],sys.argv[4]\n"
			"c=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER);c.load_cert_chain(crt,key)\n"
			"c.minimum_version=c.maximum_version=getattr(ssl.TLSVersion,'TLSv1_'+v[2])\n"
			"l=socket.socket();l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
			"l.bind(('127.0.0.1',p));l.listen(1);print('ready',flush=True)\n"
			"s=c.wrap_socket(l.accept()[0],server_side=True);h=hashlib.sha256();n=0\n"
			"while True:\n"
			" d=s.recv(65536)\n"
			" if not d: break\n"
			" h.update(d);n+=len(d);s.sendall(d)\n"
			"s.unwrap();print(n,h.hexdigest(),flush=True)\n",
			port_s, (char *)pyver, (char *)tu_cert("server-ec.pem"),
			(char *)tu_cert("server-ec.key"), NULL };
		pid = tu_spawn(argv, NULL, &from);
		break;
	}
	case SCLIENT: {
		char con[32];
		snprintf(con, sizeof(con), "127.0.0.1:%d", port);
		char *argv[] = { "openssl", "s_client", "-connect", con, "-servername", "localhost",
				 "-CAfile", (char *)tu_cert("ca.pem"), "-verify_return_error", "-quiet",
				 "-no_ign_eof", "-nocommands", (char *)ver, (char *)csel, (char *)s->name, NULL };
		pid = tu_spawn(argv, &to, &from);
		break;
	}
	case GCLI: {
		char pa[160];
		snprintf(pa, sizeof(pa), "--priority=%s", prio);
		char *argv[] = { "gnutls-cli", "-p", port_s, "--x509cafile", (char *)tu_cert("ca.pem"),
				 pa, "--logfile=/dev/null", "localhost", NULL };
		pid = tu_spawn(argv, &to, &from);
		break;
	}
	case PYCLIENT: {
		char *argv[] = { PY, "-c",
			"import ssl,socket,sys,hashlib,random\n"
			"p,v,ca=int(sys.argv[1]),sys.argv[2],sys.argv[3]\n"
			"c=ssl.create_default_context(cafile=ca)\n"
			"c.minimum_version=c.maximum_version=getattr(ssl.TLSVersion,'TLSv1_'+v[2])\n"
			"s=c.wrap_socket(socket.create_connection(('127.0.0.1',p)),server_hostname='localhost')\n"
			"hs=hashlib.sha256();hr=hashlib.sha256();r=random.Random(5)\n"
			"msgs=[b'a\\n',b'bc\\n',b'hello kTLS\\n']+[r.randbytes(65536) for i in range(64)]\n"
			"for m in msgs:\n"
			" s.sendall(m);hs.update(m);g=b''\n"
			" while len(g)<len(m): g+=s.recv(len(m)-len(g))\n"
			" hr.update(g)\n"
			"s.unwrap();print(hs.hexdigest(),hr.hexdigest(),flush=True)\n",
			port_s, (char *)pyver, (char *)tu_cert("ca.pem"), NULL };
		pid = tu_spawn(argv, NULL, &from);
		break;
	}
	default: {
		char url[64], in[] = "/tmp/ktls-curl-in-XXXXXX", out[] = "/tmp/ktls-curl-out-XXXXXX";
		int ifd = mkstemp(in), ofd = mkstemp(out);
		unsigned char *b = malloc(CHUNK);

		cr_assert(ifd >= 0 && ofd >= 0);
		for (int i = 0; i < NPIECES; i++)
			tu_write_full(ifd, b, piece(1, i, b));
		close(ifd);
		close(ofd);
		free(b);
		snprintf(url, sizeof(url), "https://localhost:%d/echo", port);
		char data[64];
		snprintf(data, sizeof(data), "@%s", in);
		char *argv[] = { "curl", "-sS", "--cacert", (char *)tu_cert("ca.pem"),
				 s->version == KTLS_TLS1_3 ? "--tlsv1.3" : "--tlsv1.2", "--tls-max",
				 (char *)pyver, "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
				 "--data-binary", data, "-o", out, url, NULL };
		pid = tu_spawn(argv, NULL, NULL);
		cr_assert_gt(pid, 0);
		fd = accept(ls, NULL, NULL);
		cr_assert_geq(fd, 0);
		cr_assert_eq(ours_open(&o, KTLS_SERVER, s, 2, fd, NULL), 0, "%s: %s", cell, o.err);
		check_offload(o.c, cell);
		/* Request: headers, then Content-Length bytes. */
		char hdr[4096] = "";
		size_t hl = 0, clen = 0;
		while (!strstr(hdr, "\r\n\r\n")) {
			ssize_t r = ktls_conn_read(o.c, hdr + hl, 1);
			cr_assert_eq(r, 1, "%s: request headers: %s", cell, ktls_conn_error(o.c));
			hl++;
			hdr[hl] = 0;
			cr_assert_lt(hl, sizeof(hdr) - 1);
		}
		char *cl = strcasestr(hdr, "content-length:");
		cr_assert(cl, "%s: %s", cell, hdr);
		clen = strtoul(cl + 15, NULL, 10);
		cr_expect_eq(clen, stream_len());
		EVP_MD_CTX *h = EVP_MD_CTX_new();
		EVP_DigestInit_ex(h, EVP_sha256(), NULL);
		our_recv_n(o.c, clen, h);
		hash_hex(h, got);
		EVP_MD_CTX_free(h);
		cr_expect_str_eq(got, want1, "%s: request body hash", cell);
		snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: "
			 "close\r\n\r\n", stream_len());
		cr_assert_eq(ktls_conn_write(o.c, hdr, strlen(hdr)), (ssize_t)strlen(hdr));
		our_send(o.c, 2);
		cr_expect_eq(ktls_conn_shutdown(o.c), 0, "%s: %s", cell, ktls_conn_error(o.c));
		st = tu_wait(pid, 60000);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: curl status %d", cell, st);
		ofd = open(out, O_RDONLY);
		struct drain od;
		drain_start(&od, ofd);
		pthread_join(od.th, NULL);
		close(ofd);
		cr_expect_eq(od.n, stream_len(), "%s", cell);
		cr_expect_str_eq(od.hex, want2, "%s: response hash at curl", cell);
		unlink(in);
		unlink(out);
		goto done;
	}
	}
	cr_assert_gt(pid, 0, "%s: spawn failed", cell);

	if (server_side) {
		if (pk == SCLIENT || pk == GCLI) {
			/*
			 * Its stdin is full before the handshake ends, so its first
			 * data follows its Finished at once: none may be lost.
			 */
			f.fd = to;
			f.seed = 1;
			pthread_create(&f.th, NULL, feed_main, &f);
		}
		fd = accept(ls, NULL, NULL);
		cr_assert_geq(fd, 0);
		cr_assert_eq(ours_open(&o, KTLS_SERVER, s, 2, fd, NULL), 0, "%s: %s", cell, o.err);
	} else {
		if (pk == PYSERVER) {
			char line[16] = "";
			cr_assert_gt(read_line(from, line, sizeof(line)), 0, "%s: python server did not "
				     "start", cell);
		}
		fd = connect_retry(port);
		cr_assert_geq(fd, 0, "%s: cannot connect", cell);
		cr_assert_eq(ours_open(&o, KTLS_CLIENT, s, 2, fd, NULL), 0, "%s: %s", cell, o.err);
	}
	check_offload(o.c, cell);

	switch (pk) {
	case SSERVER:
		/* Us -> s_server's stdout, then its stdin -> us, then its close_notify. */
		drain_start(&d, from);
		our_send(o.c, 1);
		cr_expect_eq(drain_wait(&d, stream_len(), 120000), 0, "%s: s_server got %zu", cell,
			     drained(&d));
		f.fd = to;
		f.seed = 2;
		f.close_after = 1; /* stdin EOF: s_server sends close_notify */
		pthread_create(&f.th, NULL, feed_main, &f);
		cr_expect_eq(our_recv_all(o.c, got, err, sizeof(err)), (ssize_t)stream_len(), "%s: %s",
			     cell, err);
		cr_expect_str_eq(got, want2, "%s: hash of what s_server sent", cell);
		pthread_join(f.th, NULL);
		ktls_conn_shutdown(o.c); /* s_server may already be gone */
		st = tu_wait(pid, 30000);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: s_server status %d", cell, st);
		pthread_join(d.th, NULL);
		cr_expect_str_eq(d.hex, want1, "%s: hash at s_server", cell);
		break;
	case GSERV:
		drain_start(&d, from); /* its chatter */
		our_echo_client(o.c, 1);
		cr_expect_eq(ktls_conn_shutdown(o.c), 0, "%s: %s", cell, ktls_conn_error(o.c));
		tu_stop(pid, 2000);
		pthread_join(d.th, NULL);
		break;
	case PYSERVER: {
		char line[256] = "", want[128];
		our_echo_client(o.c, 1);
		cr_expect_eq(ktls_conn_shutdown(o.c), 0, "%s: %s", cell, ktls_conn_error(o.c));
		cr_expect_eq(ktls_conn_read(o.c, line, sizeof(line)), 0, "%s: python's close_notify: %s",
			     cell, ktls_conn_error(o.c));
		read_line(from, line, sizeof(line));
		snprintf(want, sizeof(want), "%zu %s\n", stream_len(), want1);
		cr_expect_str_eq(line, want, "%s: python server said '%s', want '%s'", cell, line, want);
		st = tu_wait(pid, 30000);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: python status %d", cell, st);
		break;
	}
	case SCLIENT:
	case GCLI: {
		/* Its stdin -> us, us -> its stdout, then stdin EOF -> its close_notify. */
		EVP_MD_CTX *h = EVP_MD_CTX_new();
		unsigned char b[64];
		ssize_t r;

		drain_start(&d, from);
		EVP_DigestInit_ex(h, EVP_sha256(), NULL);
		our_recv_n(o.c, stream_len(), h);
		hash_hex(h, got);
		EVP_MD_CTX_free(h);
		cr_expect_str_eq(got, want1, "%s: hash of what the client sent", cell);
		pthread_join(f.th, NULL);
		our_send(o.c, 2);
		cr_expect_eq(drain_wait(&d, stream_len(), 120000), 0, "%s: client got %zu", cell,
			     drained(&d));
		close(to);
		to = -1;
		r = ktls_conn_read(o.c, b, sizeof(b));
		cr_expect_eq(r, 0, "%s: expected the client's close_notify: %zd %s", cell, r,
			     ktls_conn_error(o.c));
		ktls_conn_shutdown(o.c);
		st = tu_wait(pid, 30000);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: client status %d", cell, st);
		pthread_join(d.th, NULL);
		cr_expect_str_eq(d.hex, want2, "%s: hash at the client", cell);
		break;
	}
	case PYCLIENT: {
		char line[256] = "";
		ssize_t n;
		size_t echoed = our_echo_server(o.c);
		cr_expect_eq(ktls_conn_shutdown(o.c), 0, "%s: %s", cell, ktls_conn_error(o.c));
		n = read_line(from, line, sizeof(line));
		cr_expect_eq(echoed, 2 + 3 + 11 + BULK, "%s", cell);
		cr_expect(n == 130 && line[64] == ' ' && !memcmp(line, line + 65, 64), "%s: python client said (%zd) '%s'",
			  cell, n, line);
		st = tu_wait(pid, 30000);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: python status %d", cell, st);
		break;
	}
	default:
		break;
	}
done:
	if (tu_expect_ktls()) {
		cr_expect_geq(tu_tls_stat("TlsTxSw") - tx0, 1, "%s: TlsTxSw did not move", cell);
		cr_expect_geq(tu_tls_stat("TlsRxSw") - rx0, 1, "%s: TlsRxSw did not move", cell);
	}
	tu_stop(pid, 1000);
	ours_close(&o);
	close(fd);
	if (ls >= 0)
		close(ls);
	if (to >= 0)
		close(to);
	if (from >= 0)
		close(from);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void run_peer(enum peer_kind pk)
{
	long long t0 = now_ms();

	for (int i = 0; i < 6; i++)
		run_cell(pk, &suites[i]);
	cr_log_info("%s: 6 cells in %lld ms", peer_names[pk], now_ms() - t0);
}

Test(interop_matrix, client_vs_openssl_s_server) { run_peer(SSERVER); }
Test(interop_matrix, client_vs_gnutls_serv) { run_peer(GSERV); }
Test(interop_matrix, client_vs_python_server) { run_peer(PYSERVER); }
Test(interop_matrix, server_vs_openssl_s_client) { run_peer(SCLIENT); }
Test(interop_matrix, server_vs_gnutls_cli) { run_peer(GCLI); }
Test(interop_matrix, server_vs_python_client) { run_peer(PYCLIENT); }
Test(interop_matrix, server_vs_curl) { run_peer(CURL); }
