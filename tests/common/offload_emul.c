/* offload_emul.c - kTLS emulated in userspace (see offload_emul.h). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include <openssl/evp.h>

#include "kernel.h"
#include "keys.h"
#include "offload_emul.h"

struct emu_state emu;

static size_t emu_info_len(int cipher)
{
	switch (cipher) {
	case TLS_CIPHER_AES_GCM_128: return sizeof(struct tls12_crypto_info_aes_gcm_128);
	case TLS_CIPHER_AES_GCM_256: return sizeof(struct tls12_crypto_info_aes_gcm_256);
	case TLS_CIPHER_CHACHA20_POLY1305: return sizeof(struct tls12_crypto_info_chacha20_poly1305);
	default: return 0;
	}
}

/* Key, 12-byte nonce base (salt|iv, or the ChaCha iv) and EVP cipher. */
static const EVP_CIPHER *emu_parts(const union tls_crypto *ci, const unsigned char **key,
				   unsigned char nb[12])
{
	switch (ci->info.cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		*key = ci->g128.key;
		memcpy(nb, ci->g128.salt, 4);
		memcpy(nb + 4, ci->g128.iv, 8);
		return EVP_aes_128_gcm();
	case TLS_CIPHER_AES_GCM_256:
		*key = ci->g256.key;
		memcpy(nb, ci->g256.salt, 4);
		memcpy(nb + 4, ci->g256.iv, 8);
		return EVP_aes_256_gcm();
	default:
		*key = ci->chacha.key;
		memcpy(nb, ci->chacha.iv, 12);
		return EVP_chacha20_poly1305();
	}
}

uint64_t emu_get_seq(const union tls_crypto *ci)
{
	const unsigned char *p = ci->info.cipher_type == TLS_CIPHER_AES_GCM_128 ? ci->g128.rec_seq
			       : ci->info.cipher_type == TLS_CIPHER_AES_GCM_256 ? ci->g256.rec_seq
										 : ci->chacha.rec_seq;
	uint64_t s = 0;
	for (int i = 0; i < 8; i++)
		s = s << 8 | p[i];
	return s;
}

/* One AEAD operation; returns 0 or -1 (authentication failure on open). */
static int emu_aead(int enc, const EVP_CIPHER *c, const unsigned char *key,
		    const unsigned char nonce[12], const unsigned char *aad, size_t aadlen,
		    const unsigned char *in, size_t len, unsigned char *out, unsigned char tag[16])
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int l, ok;

	ok = x && EVP_CipherInit_ex(x, c, NULL, NULL, NULL, enc) &&
	     EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) &&
	     EVP_CipherInit_ex(x, NULL, NULL, key, nonce, enc) &&
	     EVP_CipherUpdate(x, NULL, &l, aad, (int)aadlen) &&
	     (len == 0 || EVP_CipherUpdate(x, out, &l, in, (int)len)) &&
	     (enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag)) &&
	     EVP_CipherFinal_ex(x, out + len, &l) > 0 &&
	     (!enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag));
	EVP_CIPHER_CTX_free(x);
	return ok ? 0 : -1;
}

static int emu_write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Seal one record of up to 16 KiB and write it. */
static int emu_seal(int fd, struct emu_dir *d, unsigned char type, const unsigned char *pt,
		    size_t len)
{
	static unsigned char rec[EMU_REC];
	unsigned char nb[12], nonce[12], aad[13], tag[16];
	const unsigned char *key;
	const EVP_CIPHER *c = emu_parts(&d->info, &key, nb);
	int tls13 = d->info.info.version == TLS_1_3_VERSION;
	int gcm12 = !tls13 && d->info.info.cipher_type != TLS_CIPHER_CHACHA20_POLY1305;
	size_t hdr = 5 + (gcm12 ? 8 : 0), ctlen;
	unsigned char inner[16385];

	memcpy(nonce, nb, 12);
	if (gcm12) {
		memcpy(nonce + 4, d->explicit_nonce, 8);
		memcpy(rec + 5, d->explicit_nonce, 8);
		for (int i = 7; i >= 0 && ++d->explicit_nonce[i] == 0; i--)
			;
	} else {
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= (unsigned char)(d->seq >> (56 - 8 * i));
	}
	if (tls13) {
		memcpy(inner, pt, len);
		inner[len] = type;
		ctlen = len + 1;
		rec[0] = 23;
		rec[1] = 3, rec[2] = 3;
		rec[3] = (unsigned char)((ctlen + 16) >> 8);
		rec[4] = (unsigned char)(ctlen + 16);
		memcpy(aad, rec, 5);
		if (emu_aead(1, c, key, nonce, aad, 5, inner, ctlen, rec + hdr, tag))
			return -1;
	} else {
		ctlen = len;
		for (int i = 0; i < 8; i++)
			aad[i] = (unsigned char)(d->seq >> (56 - 8 * i));
		aad[8] = type, aad[9] = 3, aad[10] = 3;
		aad[11] = (unsigned char)(len >> 8), aad[12] = (unsigned char)len;
		rec[0] = type;
		rec[1] = 3, rec[2] = 3;
		rec[3] = (unsigned char)((hdr - 5 + ctlen + 16) >> 8);
		rec[4] = (unsigned char)(hdr - 5 + ctlen + 16);
		if (emu_aead(1, c, key, nonce, aad, 13, pt, len, rec + hdr, tag))
			return -1;
	}
	memcpy(rec + hdr + ctlen, tag, 16);
	d->seq++;
	emu.records_tx++;
	if (type == 22 && len >= 1 && pt[0] == 24)
		emu.keyupdates_tx++;
	return emu_write_all(fd, rec, hdr + ctlen + 16);
}

static int emu_read_full(int fd, unsigned char *p, size_t n, int *got_any)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = recv(fd, p + done, n - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? (done || *got_any ? -1 : 0) : -1;
		done += (size_t)r;
		*got_any = 1;
	}
	return 1;
}

/* Read and open one record into s->pend.  1, 0 on EOF, -1 with errno. */
static int emu_open(int fd, struct emu_sock *s)
{
	static unsigned char rec[EMU_REC];
	struct emu_dir *d = &s->rx;
	unsigned char nb[12], nonce[12], aad[13], tag[16];
	const unsigned char *key;
	const EVP_CIPHER *c = emu_parts(&d->info, &key, nb);
	int tls13 = d->info.info.version == TLS_1_3_VERSION;
	int gcm12 = !tls13 && d->info.info.cipher_type != TLS_CIPHER_CHACHA20_POLY1305;
	size_t len, ctlen, off = 5;
	int any = 0, r;

	r = emu_read_full(fd, rec, 5, &any);
	if (r <= 0)
		return r;
	len = (size_t)rec[3] << 8 | rec[4];
	if (len > EMU_REC - 5 || len < 16 + (gcm12 ? 8u : 0u) + (tls13 ? 1u : 0u)) {
		errno = EMSGSIZE;
		return -1;
	}
	if (emu_read_full(fd, rec + 5, len, &any) <= 0) {
		errno = EIO;
		return -1;
	}
	if (emu.corrupt_next_rx) {
		emu.corrupt_next_rx = 0;
		rec[5 + len / 2] ^= 0x40;
	}
	memcpy(nonce, nb, 12);
	if (gcm12) {
		memcpy(nonce + 4, rec + 5, 8);
		off += 8;
	} else {
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= (unsigned char)(d->seq >> (56 - 8 * i));
	}
	ctlen = 5 + len - off - 16;
	memcpy(tag, rec + off + ctlen, 16);
	if (tls13) {
		memcpy(aad, rec, 5);
		r = emu_aead(0, c, key, nonce, aad, 5, rec + off, ctlen, s->pend, tag);
	} else {
		for (int i = 0; i < 8; i++)
			aad[i] = (unsigned char)(d->seq >> (56 - 8 * i));
		aad[8] = rec[0], aad[9] = 3, aad[10] = 3;
		aad[11] = (unsigned char)(ctlen >> 8), aad[12] = (unsigned char)ctlen;
		r = emu_aead(0, c, key, nonce, aad, 13, rec + off, ctlen, s->pend, tag);
	}
	if (r) {
		s->bad = 1;
		s->sk_err = EBADMSG;
		errno = EBADMSG;
		return -1;
	}
	d->seq++;
	if (tls13) {
		while (ctlen && s->pend[ctlen - 1] == 0)
			ctlen--;
		if (!ctlen) {
			errno = EBADMSG;
			return -1;
		}
		s->pend_type = s->pend[--ctlen];
		/* 6.14+: a KeyUpdate pauses RX until userspace sets the new key. */
		if (s->pend_type == 22 && ctlen && s->pend[0] == 24 && emu.rekey)
			s->pause_after = 1;
	} else {
		s->pend_type = rec[0];
	}
	s->pend_off = 0;
	s->pend_len = ctlen;
	return 1;
}

int emu_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	struct emu_sock *s = fd >= 0 && fd < EMU_MAXFD ? &emu.s[fd] : NULL;
	const union tls_crypto *ci = val;
	struct emu_dir *d;

	if (!s)
		return kernel_ops_default.setsockopt(fd, level, opt, val, len);
	if (level == SOL_TCP && opt == TCP_ULP) {
		if (emu.ulp_errno) {
			errno = emu.ulp_errno;
			return -1;
		}
		memset(s, 0, sizeof(*s)); /* a new socket on a reused fd number */
		s->ulp = 1;
		return 0;
	}
	if (level != SOL_TLS)
		return kernel_ops_default.setsockopt(fd, level, opt, val, len);
	if (!s->ulp || (opt != TLS_TX && opt != TLS_RX)) {
		errno = ENOPROTOOPT;
		return -1;
	}
	if (opt == TLS_TX && emu.tx_errno) {
		errno = emu.tx_errno;
		return -1;
	}
	if (opt == TLS_RX && emu.rx_errno) {
		errno = emu.rx_errno;
		return -1;
	}
	if (len < sizeof(struct tls_crypto_info) || emu_info_len(ci->info.cipher_type) != len ||
	    (ci->info.version != TLS_1_2_VERSION && ci->info.version != TLS_1_3_VERSION)) {
		errno = EINVAL;
		return -1;
	}
	d = opt == TLS_TX ? &s->tx : &s->rx;
	if (d->set) {
		if (!emu.rekey || d->info.info.version != TLS_1_3_VERSION) {
			errno = EBUSY;
			return -1;
		}
		if (ci->info.version != d->info.info.version ||
		    ci->info.cipher_type != d->info.info.cipher_type) {
			errno = EINVAL;
			return -1;
		}
	}
	memset(d, 0, sizeof(*d));
	memcpy(&d->info, ci, len);
	d->set = 1;
	d->seq = emu_get_seq(ci);
	if (ci->info.cipher_type != TLS_CIPHER_CHACHA20_POLY1305)
		memcpy(d->explicit_nonce, ci->info.cipher_type == TLS_CIPHER_AES_GCM_128 ? ci->g128.iv
											  : ci->g256.iv, 8);
	if (opt == TLS_TX) {
		if (!emu.n_tx++)
			memcpy(&emu.first_tx, ci, len);
	} else {
		if (!emu.n_rx++)
			memcpy(&emu.first_rx, ci, len);
		s->paused = 0;
	}
	return 0;
}

static ssize_t emu_sendmsg(int fd, const struct msghdr *m, int flags)
{
	struct emu_sock *s = fd >= 0 && fd < EMU_MAXFD ? &emu.s[fd] : NULL;
	static unsigned char flat[1 << 20];
	unsigned char type = 23;
	struct cmsghdr *cm;
	size_t n = 0, off;

	if (!s || !s->tx.set)
		return kernel_ops_default.sendmsg(fd, m, flags);
	if (s->sk_err) { /* tls_sw_sendmsg fails while the RX error sits in sk_err */
		errno = s->sk_err;
		return -1;
	}
	if (flags & ~(MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL | MSG_EOR)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	for (cm = CMSG_FIRSTHDR((struct msghdr *)m); cm; cm = CMSG_NXTHDR((struct msghdr *)m, cm))
		if (cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_SET_RECORD_TYPE)
			type = *CMSG_DATA(cm);
	for (size_t i = 0; i < m->msg_iovlen; i++) {
		size_t l = m->msg_iov[i].iov_len;
		if (n + l > sizeof(flat))
			l = sizeof(flat) - n;
		memcpy(flat + n, m->msg_iov[i].iov_base, l);
		n += l;
	}
	for (off = 0; off < n || (n == 0 && off == 0); ) {
		size_t l = n - off > 16384 ? 16384 : n - off;
		if (emu_seal(fd, &s->tx, type, flat + off, l)) {
			errno = EPIPE;
			return off ? (ssize_t)off : -1;
		}
		off += l;
		if (n == 0)
			break;
	}
	return (ssize_t)n;
}

static ssize_t emu_recvmsg(int fd, struct msghdr *m, int flags)
{
	struct emu_sock *s = fd >= 0 && fd < EMU_MAXFD ? &emu.s[fd] : NULL;
	struct cmsghdr *cm;
	size_t n;
	int r;

	if (!s || !s->rx.set)
		return kernel_ops_default.recvmsg(fd, m, flags);
	if (s->bad) {
		errno = EBADMSG;
		return -1;
	}
	if (s->paused) {
		errno = EKEYEXPIRED;
		return -1;
	}
	if (s->pend_off == s->pend_len) {
		r = emu_open(fd, s);
		if (r <= 0) {
			m->msg_controllen = 0;
			return r;
		}
	}
	if (s->pend_type != 23 && (!m->msg_control || m->msg_controllen < CMSG_SPACE(1))) {
		errno = EIO;
		return -1;
	}
	if (m->msg_control && m->msg_controllen >= CMSG_SPACE(1)) {
		cm = CMSG_FIRSTHDR(m);
		cm->cmsg_level = SOL_TLS;
		cm->cmsg_type = TLS_GET_RECORD_TYPE;
		cm->cmsg_len = CMSG_LEN(1);
		*CMSG_DATA(cm) = s->pend_type;
		m->msg_controllen = CMSG_SPACE(1);
	}
	n = s->pend_len - s->pend_off;
	if (n > m->msg_iov[0].iov_len)
		n = m->msg_iov[0].iov_len;
	memcpy(m->msg_iov[0].iov_base, s->pend + s->pend_off, n);
	s->pend_off += n;
	if (s->pend_off == s->pend_len && s->pause_after) {
		s->pause_after = 0;
		s->paused = 1;
	}
	return (ssize_t)n;
}

static ssize_t emu_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	static unsigned char buf[65536];
	struct iovec iov;
	struct msghdr m;
	ssize_t got;

	if (count > sizeof(buf))
		count = sizeof(buf);
	got = offset ? pread(in_fd, buf, count, *offset) : read(in_fd, buf, count);
	if (got <= 0)
		return got;
	iov.iov_base = buf;
	iov.iov_len = (size_t)got;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	got = emu_sendmsg(out_fd, &m, MSG_NOSIGNAL);
	if (got > 0 && offset)
		*offset += got;
	return got;
}

/* SO_ERROR reads and clears the error a bad record left, as sock_error() does. */
static int emu_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	struct emu_sock *s = fd >= 0 && fd < EMU_MAXFD ? &emu.s[fd] : NULL;

	if (s && s->sk_err && level == SOL_SOCKET && opt == SO_ERROR && *len >= sizeof(int)) {
		*(int *)val = s->sk_err;
		*len = sizeof(int);
		s->sk_err = 0;
		return 0;
	}
	return kernel_ops_default.getsockopt(fd, level, opt, val, len);
}

void emu_on(int rekey)
{
	memset(&emu, 0, sizeof(emu));
	emu.rekey = rekey;
	kernel_ops.setsockopt = emu_setsockopt;
	kernel_ops.getsockopt = emu_getsockopt;
	kernel_ops.sendmsg = emu_sendmsg;
	kernel_ops.recvmsg = emu_recvmsg;
	kernel_ops.sendfile = emu_sendfile;
}

void emu_off(void)
{
	kernel_ops = kernel_ops_default;
	kernel_gcm_record_limit = KTLS_GCM_RECORD_LIMIT;
}
