/*
 * agent_netlink.c - unit tests of the agent's handshake-netlink code on
 * bytes: messages captured from real kernels in the rig's guest
 * (tests/fixtures/handshake/guest612-*, guest73-*: made with
 * KTLS_AGENT_CAPTURE=DIR during the agent_nvme guest suite) and
 * hand-built ones, malformed included; the builders byte by byte; the
 * status mapping; the configuration parser.  The daemon's code comes
 * from its internal archive (build/libktlsd.a).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <criterion/criterion.h>

#include "../../daemon/ktlsd/agent.h"
#include "ktls.h"

static size_t load(const char *name, unsigned char *buf, size_t cap)
{
	const char *dir = getenv("KTLS_TEST_FIXTURES_HANDSHAKE");
	char path[512];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/fixtures/handshake", name);
	fp = fopen(path, "rb");
	cr_assert_not_null(fp, "fixture %s missing", path);
	n = fread(buf, 1, cap, fp);
	fclose(fp);
	cr_assert_gt(n, 0);
	return n;
}

/* ---- captured messages ------------------------------------------------------ */

Test(agent_netlink, family_reply_612_and_73)
{
	unsigned char b[512];
	size_t n;
	uint16_t id = 0;
	uint32_t grp = 0;
	int kerr = -1;
	char err[200];

	n = load("guest612-family.bin", b, sizeof(b));
	cr_assert_eq(hs_parse_family(b, n, "tlshd", &id, &grp, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(id, 33);
	cr_expect_eq(grp, 14);
	cr_expect_eq(hs_parse_family(b, n, "none", &id, &grp, &kerr, err, sizeof(err)), 0);
	cr_expect_eq(grp, 13);
	cr_expect_eq(hs_parse_family(b, n, "nfsd", &id, &grp, &kerr, err, sizeof(err)), -1);
	cr_expect(strstr(err, "no multicast group \"nfsd\""), "%s", err);
	n = load("guest73-family.bin", b, sizeof(b));
	cr_assert_eq(hs_parse_family(b, n, "tlshd", &id, &grp, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(id, 35);
	cr_expect_eq(grp, 15);
}

Test(agent_netlink, ready_notification)
{
	unsigned char b[128];
	size_t n = load("guest612-ready.bin", b, sizeof(b));
	uint32_t cls = 0;
	char err[200];

	cr_assert_eq(hs_parse_ready(b, n, 33, &cls, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cls, HS_CLASS_TLSHD);
	/* Another family's message on our socket is refused, not trusted. */
	cr_expect_eq(hs_parse_ready(b, n, 34, &cls, err, sizeof(err)), -1);
	cr_expect(strstr(err, "family 33, expected 34"), "%s", err);
}

Test(agent_netlink, accept_client_psk_612)
{
	unsigned char b[256];
	size_t n = load("guest612-accept-client-psk.bin", b, sizeof(b));
	struct hs_accept a;
	int kerr = -1;
	char err[200];

	cr_assert_eq(hs_parse_accept(b, n, 33, &a, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(a.sockfd, 5);
	cr_expect_eq(a.msg_type, HS_MSG_CLIENTHELLO);
	cr_expect_eq(a.auth_mode, HS_AUTH_PSK);
	cr_expect_eq(a.timeout_ms, 10000);
	cr_expect_eq(a.npeerids, 1);
	cr_expect_eq(a.peerids[0], 278672657);
	cr_expect_eq(a.keyring, 0, "6.12 has no KEYRING attribute");
	cr_expect_str_eq(a.peername, "");
	cr_expect_eq(a.ncerts, 0);
	cr_expect_eq(a.unknown, 0);
}

Test(agent_netlink, accept_server_psk_73_with_keyring)
{
	unsigned char b[256];
	size_t n = load("guest73-accept-server-psk.bin", b, sizeof(b));
	struct hs_accept a;
	int kerr;
	char err[200];

	cr_assert_eq(hs_parse_accept(b, n, 35, &a, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(a.msg_type, HS_MSG_SERVERHELLO);
	cr_expect_eq(a.keyring, 459979857, "7.3 passes the consumer's keyring");
	cr_expect_eq(a.npeerids, 1);
	cr_expect_eq(a.peerids[0], 0, "nvmet passes an empty peer id");
}

Test(agent_netlink, policy_dump_says_done_takes_remote_auth)
{
	const char *k[] = { "guest612", "guest73" };

	for (int i = 0; i < 2; i++) {
		struct hs_policy p;
		unsigned char b[256];
		char name[64], err[200];

		hs_policy_init(&p);
		for (int m = 1; m <= 4; m++) {
			size_t n;
			snprintf(name, sizeof(name), "%s-policy-done-%d.bin", k[i], m);
			n = load(name, b, sizeof(b));
			cr_assert_eq(hs_policy_feed(&p, b, n, err, sizeof(err)), 0, "%s: %s", name, err);
		}
		cr_expect_eq(p.do_idx, 0);
		cr_expect_eq(hs_policy_has(&p, HS_A_DONE_STATUS), 1);
		cr_expect_eq(hs_policy_has(&p, HS_A_DONE_SOCKFD), 1);
		cr_expect_eq(hs_policy_has(&p, HS_A_DONE_REMOTE_AUTH), 1, "%s", k[i]);
		cr_expect_eq(hs_policy_has(&p, 4), 0, "no DONE_TAG upstream");
	}
}

Test(agent_netlink, policy_without_the_op_is_unknown)
{
	struct hs_policy p;
	unsigned char b[256];
	size_t n = load("guest612-policy-done-2.bin", b, sizeof(b));
	char err[200];

	hs_policy_init(&p);
	cr_assert_eq(hs_policy_feed(&p, b, n, err, sizeof(err)), 0);
	cr_expect_eq(hs_policy_has(&p, HS_A_DONE_REMOTE_AUTH), -1);
}

/* ---- malformed, from the captured ACCEPT ------------------------------------ */

static size_t accept612(unsigned char *b)
{
	return load("guest612-accept-client-psk.bin", b, 256);
}

static void expect_refused(const unsigned char *b, size_t n, const char *why)
{
	struct hs_accept a;
	int kerr;
	char err[200] = "";

	cr_expect_eq(hs_parse_accept(b, n, 33, &a, &kerr, err, sizeof(err)), -1, "accepted: %s", why);
	cr_expect(strstr(err, why), "want '%s', got '%s'", why, err);
}

Test(agent_netlink, malformed_accept_replies)
{
	unsigned char b[256], c[256];
	size_t n = accept612(b);

	/*
	 * Every truncation is refused, except at 52: the message then ends
	 * cleanly before PEER_IDENTITY and is a valid reply without one
	 * (agent_hs.c answers such a PSK request with EIO).
	 */
	for (size_t cut = 0; cut < n; cut++) {
		struct hs_accept a;
		int kerr;
		char err[200];
		memcpy(c, b, n);
		((struct nlmsghdr *)c)->nlmsg_len = (uint32_t)cut;
		if (cut == 52) {
			cr_expect_eq(hs_parse_accept(c, n, 33, &a, &kerr, err, sizeof(err)), 0);
			cr_expect_eq(a.npeerids, 0);
			continue;
		}
		cr_expect_eq(hs_parse_accept(c, n, 33, &a, &kerr, err, sizeof(err)), -1,
			     "cut at %zu accepted", cut);
		cr_expect_eq(hs_parse_accept(b, cut, 33, &a, &kerr, err, sizeof(err)), -1,
			     "buffer of %zu accepted", cut);
	}
	/* nlmsg_len beyond what was received. */
	memcpy(c, b, n);
	((struct nlmsghdr *)c)->nlmsg_len = (uint32_t)n + 4;
	expect_refused(c, n, "does not fit");
	/* First attribute (sockfd) claims more bytes than remain. */
	memcpy(c, b, n);
	((struct nlattr *)(c + 20))->nla_len = 200;
	expect_refused(c, n, "does not fit");
	/* sockfd of 2 bytes. */
	memcpy(c, b, n);
	((struct nlattr *)(c + 20))->nla_len = 6;
	expect_refused(c, n, "sockfd: 2 bytes");
	/* Negative sockfd. */
	memcpy(c, b, n);
	memset(c + 24, 0xff, 4);
	expect_refused(c, n, "negative sockfd");
	/* Unknown message type 7 (attribute 2 = message type at offset 28). */
	memcpy(c, b, n);
	cr_assert_eq(((struct nlattr *)(c + 28))->nla_type, HS_A_ACCEPT_MESSAGE_TYPE);
	c[32] = 7;
	expect_refused(c, n, "unknown message type 7");
	/* Wrong command. */
	memcpy(c, b, n);
	c[16] = HS_CMD_DONE;
	expect_refused(c, n, "expected ACCEPT");
	/* Attribute length below the header. */
	memcpy(c, b, n);
	((struct nlattr *)(c + 20))->nla_len = 2;
	expect_refused(c, n, "does not fit");
}

/* ---- hand-built ------------------------------------------------------------- */

struct hb {
	unsigned char buf[1024];
	size_t len;
};

static void hb_start(struct hb *m, uint16_t family, uint8_t cmd)
{
	memset(m, 0, sizeof(*m));
	((struct nlmsghdr *)m->buf)->nlmsg_type = family;
	((struct genlmsghdr *)(m->buf + NLMSG_HDRLEN))->cmd = cmd;
	m->len = GENL_HDR;
}

static void hb_attr(struct hb *m, uint16_t type, const void *data, size_t n)
{
	struct nlattr a = { (uint16_t)(NLA_HDRLEN + n), type };

	memcpy(m->buf + m->len, &a, sizeof(a));
	memcpy(m->buf + m->len + NLA_HDRLEN, data, n);
	m->len += NLA_ALIGN(NLA_HDRLEN + n);
}

static void hb_u32(struct hb *m, uint16_t type, uint32_t v)
{
	hb_attr(m, type, &v, 4);
}

static size_t hb_end(struct hb *m)
{
	((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
	return m->len;
}

static void base_accept(struct hb *m)
{
	hb_start(m, 33, HS_CMD_ACCEPT);
	hb_u32(m, HS_A_ACCEPT_SOCKFD, 9);
	hb_u32(m, HS_A_ACCEPT_MESSAGE_TYPE, HS_MSG_CLIENTHELLO);
	hb_u32(m, HS_A_ACCEPT_AUTH_MODE, HS_AUTH_X509);
}

Test(agent_netlink, x509_accept_with_peername_and_cert)
{
	struct hb m;
	unsigned char nest[64];
	struct nlattr *x = (struct nlattr *)nest;
	uint32_t v;
	struct hs_accept a;
	int kerr;
	char err[200];

	base_accept(&m);
	hb_attr(&m, HS_A_ACCEPT_PEERNAME, "nfs.example.com", 16);
	/* CERTIFICATE { CERT 77, PRIVKEY 78 } */
	x[0].nla_len = 8; x[0].nla_type = HS_A_X509_CERT; v = 77; memcpy(nest + 4, &v, 4);
	x = (struct nlattr *)(nest + 8);
	x->nla_len = 8; x->nla_type = HS_A_X509_PRIVKEY; v = 78; memcpy(nest + 12, &v, 4);
	hb_attr(&m, HS_A_ACCEPT_CERTIFICATE | NLA_F_NESTED, nest, 16);
	hb_u32(&m, 42, 1); /* newer than us: counted, ignored */
	cr_assert_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(a.peername, "nfs.example.com");
	cr_expect_eq(a.ncerts, 1);
	cr_expect_eq(a.certs[0].cert, 77);
	cr_expect_eq(a.certs[0].privkey, 78);
	cr_expect_eq(a.unknown, 1);
	cr_expect_eq(a.timeout_ms, 0);
}

Test(agent_netlink, hand_built_refusals)
{
	struct hb m;
	struct hs_accept a;
	int kerr;
	char err[200];

	/* Peername without its NUL. */
	base_accept(&m);
	hb_attr(&m, HS_A_ACCEPT_PEERNAME, "abc", 3);
	cr_expect_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), -1);
	cr_expect(strstr(err, "NUL-terminated"), "%s", err);
	/* Peername with an embedded NUL. */
	base_accept(&m);
	hb_attr(&m, HS_A_ACCEPT_PEERNAME, "ab\0cd", 6);
	cr_expect_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), -1);
	/* Six peer identities: the kernel sends at most five. */
	base_accept(&m);
	for (int i = 0; i < 6; i++)
		hb_u32(&m, HS_A_ACCEPT_PEER_IDENTITY, 100 + i);
	cr_expect_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), -1);
	cr_expect(strstr(err, "more than 5 peer identities"), "%s", err);
	/* Five are all kept, in order (tlshd keeps only one). */
	base_accept(&m);
	for (int i = 0; i < 5; i++)
		hb_u32(&m, HS_A_ACCEPT_PEER_IDENTITY, 100 + i);
	cr_assert_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(a.npeerids, 5);
	cr_expect_eq(a.peerids[4], 104);
	/* No sockfd. */
	hb_start(&m, 33, HS_CMD_ACCEPT);
	hb_u32(&m, HS_A_ACCEPT_MESSAGE_TYPE, 1);
	hb_u32(&m, HS_A_ACCEPT_AUTH_MODE, 2);
	cr_expect_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), -1);
	cr_expect(strstr(err, "without a sockfd"), "%s", err);
	/* No auth mode. */
	hb_start(&m, 33, HS_CMD_ACCEPT);
	hb_u32(&m, HS_A_ACCEPT_SOCKFD, 3);
	hb_u32(&m, HS_A_ACCEPT_MESSAGE_TYPE, 1);
	cr_expect_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), -1);
	cr_expect(strstr(err, "no auth mode"), "%s", err);
	/* Trailing garbage shorter than an attribute header. */
	base_accept(&m);
	m.len += 3;
	cr_expect_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), -1);
	cr_expect(strstr(err, "truncated attribute header"), "%s", err);
	/* Nested certificate with a short serial. */
	{
		unsigned char nest[8] = { 6, 0, HS_A_X509_CERT, 0, 1, 2, 0, 0 };
		base_accept(&m);
		hb_attr(&m, HS_A_ACCEPT_CERTIFICATE, nest, 8);
		cr_expect_eq(hs_parse_accept(m.buf, hb_end(&m), 33, &a, &kerr, err, sizeof(err)), -1);
		cr_expect(strstr(err, "x509 serial: 2 bytes"), "%s", err);
	}
	/* READY without a class, and one for class 0. */
	hb_start(&m, 33, HS_CMD_READY);
	uint32_t cls;
	cr_expect_eq(hs_parse_ready(m.buf, hb_end(&m), 33, &cls, err, sizeof(err)), -1);
	hb_u32(&m, HS_A_ACCEPT_HANDLER_CLASS, 0);
	cr_assert_eq(hs_parse_ready(m.buf, hb_end(&m), 33, &cls, err, sizeof(err)), 0);
	cr_expect_eq(cls, 0);
}

Test(agent_netlink, kernel_error_replies)
{
	unsigned char b[64];
	struct nlmsghdr *h = (struct nlmsghdr *)b;
	struct nlmsgerr *e = NLMSG_DATA(h);
	struct hs_accept a;
	int kerr = 0;
	char err[200];

	memset(b, 0, sizeof(b));
	h->nlmsg_len = NLMSG_LENGTH(sizeof(*e));
	h->nlmsg_type = NLMSG_ERROR;
	e->error = -EAGAIN;
	cr_expect_eq(hs_parse_accept(b, h->nlmsg_len, 33, &a, &kerr, err, sizeof(err)), -1);
	cr_expect_eq(kerr, EAGAIN);
	e->error = -ENOENT;
	uint16_t id;
	uint32_t grp;
	cr_expect_eq(hs_parse_family(b, h->nlmsg_len, "tlshd", &id, &grp, &kerr, err, sizeof(err)), -1);
	cr_expect_eq(kerr, ENOENT);
	/* An error message cut short. */
	h->nlmsg_len = NLMSG_HDRLEN + 2;
	cr_expect_eq(hs_parse_accept(b, h->nlmsg_len, 33, &a, &kerr, err, sizeof(err)), -1);
	cr_expect(strstr(err, "truncated error"), "%s", err);
}

/*
 * An error code the kernel never sends, INT_MIN above all, is a malformed
 * message: negating it was undefined behaviour (make asan aborts on it).
 */
Test(agent_netlink, error_codes_that_are_not_negated_errnos)
{
	unsigned char b[64];
	struct nlmsghdr *h = (struct nlmsghdr *)b;
	struct nlmsgerr *e = NLMSG_DATA(h);
	struct hs_accept a;
	uint16_t id;
	uint32_t grp, cls;
	int kerr = -1;
	char err[200];

	memset(b, 0, sizeof(b));
	h->nlmsg_len = NLMSG_LENGTH(sizeof(*e));
	h->nlmsg_type = NLMSG_ERROR;
	e->error = 0;
	cr_expect_eq(hs_parse_nlerr(b, h->nlmsg_len, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(kerr, 0);
	e->error = -4095;
	cr_expect_eq(hs_parse_nlerr(b, h->nlmsg_len, &kerr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(kerr, 4095);
	const int bad[] = { INT_MIN, INT_MIN + 1, -4096, 1, EAGAIN, INT_MAX };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e->error = bad[i];
		kerr = -1;
		err[0] = '\0';
		cr_expect_eq(hs_parse_nlerr(b, h->nlmsg_len, &kerr, err, sizeof(err)), -1,
			     "code %d taken", bad[i]);
		cr_expect_eq(kerr, 0);
		cr_expect(strstr(err, "not a negated errno"), "%s", err);
		cr_expect_eq(hs_parse_accept(b, h->nlmsg_len, 33, &a, &kerr, err, sizeof(err)), -1);
		cr_expect(strstr(err, "not a negated errno"), "%s", err);
		cr_expect_eq(hs_parse_family(b, h->nlmsg_len, "tlshd", &id, &grp, &kerr, err,
					     sizeof(err)), -1);
		cr_expect_eq(hs_parse_ready(b, h->nlmsg_len, 33, &cls, err, sizeof(err)), -1);
	}
	/* Not an error message at all, or one cut short. */
	h->nlmsg_type = 33;
	cr_expect_eq(hs_parse_nlerr(b, h->nlmsg_len, &kerr, err, sizeof(err)), -1);
	h->nlmsg_type = NLMSG_ERROR;
	h->nlmsg_len = NLMSG_HDRLEN + 3;
	cr_expect_eq(hs_parse_nlerr(b, h->nlmsg_len, &kerr, err, sizeof(err)), -1);
	cr_expect_eq(hs_parse_nlerr(b, NLMSG_HDRLEN - 1, &kerr, err, sizeof(err)), -1);
}

/* ---- builders ---------------------------------------------------------------- */

Test(agent_netlink, done_bytes)
{
	unsigned char b[128];
	int32_t ids[2] = { 278672657, -1 };
	int n = hs_build_done(b, sizeof(b), 7, 33, EKEYREJECTED, 5, ids, 2);
	const struct nlmsghdr *h = (const void *)b;
	uint32_t v;

	cr_assert_eq(n, 16 + 4 + 4 * 8);
	cr_expect_eq(h->nlmsg_len, (uint32_t)n);
	cr_expect_eq(h->nlmsg_type, 33);
	cr_expect_eq(h->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	cr_expect_eq(h->nlmsg_seq, 7);
	cr_expect_eq(b[16], HS_CMD_DONE);
	cr_expect_eq(b[17], 1);
	/* STATUS, SOCKFD, REMOTE_AUTH x2, each 8 bytes. */
	cr_expect_eq(((struct nlattr *)(b + 20))->nla_type, HS_A_DONE_STATUS);
	memcpy(&v, b + 24, 4);
	cr_expect_eq(v, EKEYREJECTED);
	cr_expect_eq(((struct nlattr *)(b + 28))->nla_type, HS_A_DONE_SOCKFD);
	memcpy(&v, b + 32, 4);
	cr_expect_eq(v, 5);
	cr_expect_eq(((struct nlattr *)(b + 44))->nla_type, HS_A_DONE_REMOTE_AUTH);
	memcpy(&v, b + 48, 4);
	cr_expect_eq(v, 0xffffffffu);
	cr_expect_eq(hs_build_done(b, 40, 7, 33, 0, 5, ids, 2), -1, "too small must fail");
}

Test(agent_netlink, accept_and_controller_requests_round_trip)
{
	unsigned char b[128];
	int n = hs_build_accept(b, sizeof(b), 9, 33);
	uint32_t cls;
	char err[200];

	cr_assert_eq(n, 28);
	cr_expect_eq(((struct nlmsghdr *)b)->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	/* Same layout as READY (class attribute), so the READY parser reads it. */
	b[16] = HS_CMD_READY;
	cr_assert_eq(hs_parse_ready(b, (size_t)n, 33, &cls, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cls, HS_CLASS_TLSHD);
	n = hs_build_getfamily(b, sizeof(b), 1, "handshake");
	cr_expect_eq(n, 20 + 4 + 12);
	cr_expect_eq(memcmp(b + 24, "handshake", 10), 0);
	n = hs_build_getpolicy(b, sizeof(b), 1, 33, HS_CMD_DONE);
	cr_expect_eq(n, 20 + 8 + 8);
	cr_expect_eq(((struct nlmsghdr *)b)->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
	cr_expect_eq(hs_build_getfamily(b, 20, 1, "handshake"), -1);
}

/* ---- status mapping (agent_hs.c's table, restated: it must not drift) ------- */

/* By libktls's error code (conn_error.c), never by its text. */
Test(agent_netlink, status_mapping)
{
	cr_expect_eq(agent_status_for(KTLS_ERR_PEER_ALERT, 0), EACCES);
	cr_expect_eq(agent_status_for(KTLS_ERR_PSK_MISMATCH, 0), EACCES);
	cr_expect_eq(agent_status_for(KTLS_ERR_PSK_UNKNOWN, 0), EKEYREJECTED);
	cr_expect_eq(agent_status_for(KTLS_ERR_PEER_CLOSED, 0), ETIMEDOUT);
	cr_expect_eq(agent_status_for(KTLS_ERR_TIMEOUT, 0), ETIMEDOUT);
	cr_expect_eq(agent_status_for(KTLS_ERR_NONE, 1), ETIMEDOUT);
	cr_expect_eq(agent_status_for(KTLS_ERR_PSK_UNKNOWN, 1), ETIMEDOUT);
	cr_expect_eq(agent_status_for(KTLS_ERR_HOSTNAME, 0), EACCES);
	cr_expect_eq(agent_status_for(KTLS_ERR_VERIFY, 0), EACCES);
	cr_expect_eq(agent_status_for(KTLS_ERR_POLICY, 0), EACCES);
	cr_expect_eq(agent_status_for(KTLS_ERR_PROTOCOL, 0), EACCES);
	cr_expect_eq(agent_status_for(KTLS_ERR_NONE, 0), EACCES);
}

/* ---- configuration ------------------------------------------------------------- */

static int conf(const char *text, struct agent_conf *c, char *err)
{
	agent_conf_defaults(c);
	return agent_conf_parse(c, text, "agent.conf", err, 200);
}

Test(agent_netlink, config_good)
{
	struct agent_conf c;
	char err[200];

	cr_assert_eq(conf("# comment\n\nlog_level = debug\nhandshake_timeout_ms=2500\n"
			  "keyrings = .nvme, mine 1234\nx509.truststore = /etc/ca.pem\n"
			  "x509.certificate = /etc/c.pem\nx509.private_key = /etc/k.pem\n"
			  "max_handshakes = 8\n", &c, err), 0, "%s", err);
	cr_expect_eq(c.log_level, AGENT_LOG_DEBUG);
	cr_expect_eq(c.handshake_timeout_ms, 2500);
	cr_expect_eq(c.max_handshakes, 8);
	cr_expect_eq(c.nkeyrings, 3);
	cr_expect_str_eq(c.keyrings[1], "mine");
	cr_expect_str_eq(c.truststore, "/etc/ca.pem");
	agent_conf_free(&c);
	cr_assert_eq(conf("", &c, err), 0);
	cr_expect_eq(c.handshake_timeout_ms, 10000);
	cr_expect_eq(c.log_level, AGENT_LOG_INFO);
}

Test(agent_netlink, config_errors_name_the_line)
{
	struct agent_conf c;
	char err[200];

	cr_expect_eq(conf("\n\nlog_level = loud\n", &c, err), -1);
	cr_expect_str_eq(err, "agent.conf:3: log_level must be error, info or debug, not 'loud'");
	agent_conf_free(&c);
	cr_expect_eq(conf("x509.trustore = /a\n", &c, err), -1);
	cr_expect_str_eq(err, "agent.conf:1: unknown key 'x509.trustore'");
	agent_conf_free(&c);
	cr_expect_eq(conf("handshake_timeout_ms = 5s\n", &c, err), -1);
	agent_conf_free(&c);
	cr_expect_eq(conf("max_handshakes = 0\n", &c, err), -1);
	agent_conf_free(&c);
	cr_expect_eq(conf("x509.crl = relative.pem\n", &c, err), -1);
	cr_expect(strstr(err, "absolute path"), "%s", err);
	agent_conf_free(&c);
	cr_expect_eq(conf("just words\n", &c, err), -1);
	cr_expect(strstr(err, ":1: expected 'key = value'"), "%s", err);
	agent_conf_free(&c);
	cr_expect_eq(conf("x509.certificate = /c.pem\n", &c, err), -1);
	cr_expect(strstr(err, "go together"), "%s", err);
	agent_conf_free(&c);
	cr_expect_eq(conf("log_level =\n", &c, err), -1);
	cr_expect(strstr(err, "has no value"), "%s", err);
	agent_conf_free(&c);
}

/* ---- the group's other listeners ------------------------------------------ */

/* A generic netlink socket in group grp; -1 on failure. */
static int join_group(unsigned grp)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0)
		return -1;
	return fd;
}

/*
 * Finding 9: any user may join the handshake group, which kept the agent
 * from starting.  Only a listener whose process has CAP_NET_ADMIN (so can
 * ACCEPT) counts.  On the host the kernel lacks the handshake family, so
 * nlctrl's "notify" group (id 0x10, joinable by anyone) stands in.
 */
Test(agent_netlink, group_taken_only_by_a_capable_listener)
{
	struct hs_family f = { .group = GENL_ID_CTRL };
	char who[128], ignored[200], err[200];
	int sync[2], mine;
	pid_t pid;

	if (geteuid() != 0) {
		cr_skip("needs root to run a listener as nobody");
		return;
	}
	cr_assert_eq(pipe(sync), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char c = '!';
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(1);
		fd = join_group(GENL_ID_CTRL);
		c = fd >= 0 ? 'y' : 'n';
		if (write(sync[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	{
		char c = 0;

		cr_assert_eq(read(sync[0], &c, 1), 1);
		cr_assert_eq(c, 'y', "nobody could not join the group");
	}
	cr_expect_eq(hs_group_taken(&f, 0, who, sizeof(who), ignored, sizeof(ignored), err,
				    sizeof(err)), 0, "an unprivileged listener blocks the agent (%s)", who);
	cr_expect(strstr(ignored, "without CAP_NET_ADMIN"), "'%s'", ignored);

	mine = join_group(GENL_ID_CTRL);
	cr_assert_geq(mine, 0);
	cr_expect_eq(hs_group_taken(&f, 0, who, sizeof(who), ignored, sizeof(ignored), err,
				    sizeof(err)), 1, "a listener with CAP_NET_ADMIN was not seen");
	{
		char me[32];

		snprintf(me, sizeof(me), "pid %d ", (int)getpid());
		cr_expect(strstr(who, me), "%s", who);
	}
	close(mine);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(sync[0]);
	close(sync[1]);
}
