/*
 * agent_nl_msg.c - the handshake family's netlink messages as bytes:
 * strict parsers and the request builders, with no socket in sight.
 *
 * Raw sockets rather than libnl: every byte the kernel sends passes one
 * strict walker (lengths must add up exactly, repeated attributes are all
 * kept, unknown newer attributes are counted and ignored), and the same
 * functions parse captured and hand-built messages in the unit tests.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/sock_diag.h>

#include "agent.h"

/* Format a reason into err; returns -1 so callers can `return hs_seterr(...)`. */
int hs_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- attribute walking ----------------------------------------------------- */

struct walk {
	const unsigned char *p, *end;
};

/*
 * Next attribute: 1 with *a, 0 at the exact end, -1 on a bad length.
 * Padding after the last attribute must be absent or complete.
 */
static int walk_next(struct walk *w, const struct nlattr **a, char *err, size_t errlen)
{
	size_t left = (size_t)(w->end - w->p);
	const struct nlattr *na;

	if (left == 0)
		return 0;
	if (left < NLA_HDRLEN)
		return hs_seterr(err, errlen, "truncated attribute header (%zu bytes left)", left);
	na = (const struct nlattr *)w->p;
	if (na->nla_len < NLA_HDRLEN || na->nla_len > left)
		return hs_seterr(err, errlen, "attribute type %u: length %u does not fit in %zu",
			      na->nla_type & NLA_TYPE_MASK, na->nla_len, left);
	*a = na;
	left = NLA_ALIGN(na->nla_len);
	if (left > (size_t)(w->end - w->p))
		left = (size_t)(w->end - w->p); /* last attribute, padding trimmed */
	w->p += left;
	return 1;
}

static unsigned a_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

static const void *a_data(const struct nlattr *a)
{
	return (const unsigned char *)a + NLA_HDRLEN;
}

static size_t a_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

static int a_u32(const struct nlattr *a, uint32_t *v, const char *name, char *err, size_t errlen)
{
	if (a_len(a) != 4)
		return hs_seterr(err, errlen, "%s: %zu bytes, expected 4", name, a_len(a));
	memcpy(v, a_data(a), 4);
	return 0;
}

static struct walk nested(const struct nlattr *a)
{
	struct walk w = { a_data(a), (const unsigned char *)a_data(a) + a_len(a) };
	return w;
}

/*
 * The error code is read as a whole int and must be 0 or a negated errno
 * (-1 .. -MAX_ERRNO): anything else, INT_MIN above all, which has no
 * positive counterpart, is a malformed message rather than a reason.
 */
#define HS_MAX_ERRNO 4095

int hs_parse_nlerr(const void *msg, size_t len, int *kerr, char *err, size_t errlen)
{
	const struct nlmsghdr *nlh = msg;
	int e;

	*kerr = 0;
	if (len < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
		return hs_seterr(err, errlen, "error message length does not fit in %zu", len);
	if (nlh->nlmsg_type != NLMSG_ERROR)
		return hs_seterr(err, errlen, "message type %u, expected an error", nlh->nlmsg_type);
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
		return hs_seterr(err, errlen, "truncated error message");
	memcpy(&e, NLMSG_DATA(nlh), sizeof(e));
	if (e > 0 || e < -HS_MAX_ERRNO)
		return hs_seterr(err, errlen, "error message with code %d, not a negated errno", e);
	*kerr = -e;
	return 0;
}

/*
 * The message header checks every parser shares.  Returns 1 for a genl
 * message (*w at its attributes, *cmd), 0 for NLMSG_ERROR (*kerr), -1.
 */
static int msg_open(const void *msg, size_t len, uint16_t family, struct walk *w, uint8_t *cmd,
		    int *kerr, char *err, size_t errlen)
{
	const struct nlmsghdr *nlh = msg;

	if (len < NLMSG_HDRLEN)
		return hs_seterr(err, errlen, "short message (%zu bytes)", len);
	if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
		return hs_seterr(err, errlen, "message length %u does not fit in %zu",
			      nlh->nlmsg_len, len);
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		int e;
		if (hs_parse_nlerr(msg, nlh->nlmsg_len, &e, err, errlen) < 0)
			return -1;
		if (kerr)
			*kerr = e;
		return 0;
	}
	if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
		return hs_seterr(err, errlen, "unexpected control message type %u", nlh->nlmsg_type);
	if (family && nlh->nlmsg_type != family)
		return hs_seterr(err, errlen, "message for family %u, expected %u", nlh->nlmsg_type,
			      family);
	if (nlh->nlmsg_len < GENL_HDR)
		return hs_seterr(err, errlen, "no generic netlink header");
	*cmd = ((const struct genlmsghdr *)NLMSG_DATA(nlh))->cmd;
	w->p = (const unsigned char *)msg + GENL_HDR;
	w->end = (const unsigned char *)msg + nlh->nlmsg_len;
	return 1;
}

/* ---- ACCEPT reply and READY ----------------------------------------------- */

static int parse_cert(const struct nlattr *a, struct hs_accept *out, char *err, size_t errlen)
{
	struct walk w = nested(a);
	const struct nlattr *x = NULL;
	uint32_t v = 0;
	int r;

	if (out->ncerts >= HS_MAX_CERTS)
		return hs_seterr(err, errlen, "more than %d certificates", HS_MAX_CERTS);
	out->certs[out->ncerts].cert = out->certs[out->ncerts].privkey = 0;
	while ((r = walk_next(&w, &x, err, errlen)) > 0) {
		if (a_type(x) == HS_A_X509_CERT || a_type(x) == HS_A_X509_PRIVKEY) {
			if (a_u32(x, &v, "x509 serial", err, errlen))
				return -1;
			if (a_type(x) == HS_A_X509_CERT)
				out->certs[out->ncerts].cert = (int32_t)v;
			else
				out->certs[out->ncerts].privkey = (int32_t)v;
		}
	}
	if (r < 0)
		return -1;
	out->ncerts++;
	return 0;
}

int hs_parse_accept(const void *msg, size_t len, uint16_t family, struct hs_accept *out,
		    int *kerr, char *err, size_t errlen)
{
	struct walk w;
	const struct nlattr *a = NULL;
	uint8_t cmd;
	uint32_t v = 0;
	int r, have_type = 0, have_auth = 0;

	memset(out, 0, sizeof(*out));
	out->sockfd = -1;
	if (kerr)
		*kerr = 0;
	r = msg_open(msg, len, family, &w, &cmd, kerr, err, errlen);
	if (r <= 0)
		return r == 0 ? hs_seterr(err, errlen, "ACCEPT refused: %s",
				       strerror(kerr ? *kerr : EIO)) : -1;
	if (cmd != HS_CMD_ACCEPT)
		return hs_seterr(err, errlen, "reply command %u, expected ACCEPT", cmd);
	while ((r = walk_next(&w, &a, err, errlen)) > 0) {
		switch (a_type(a)) {
		case HS_A_ACCEPT_SOCKFD:
			if (a_u32(a, &v, "sockfd", err, errlen))
				return -1;
			if ((int32_t)v < 0)
				return hs_seterr(err, errlen, "negative sockfd %d", (int32_t)v);
			out->sockfd = (int)(int32_t)v;
			break;
		case HS_A_ACCEPT_HANDLER_CLASS:
			if (a_u32(a, &v, "handler class", err, errlen))
				return -1;
			break;
		case HS_A_ACCEPT_MESSAGE_TYPE:
			if (a_u32(a, &out->msg_type, "message type", err, errlen))
				return -1;
			have_type = 1;
			break;
		case HS_A_ACCEPT_TIMEOUT:
			if (a_u32(a, &out->timeout_ms, "timeout", err, errlen))
				return -1;
			break;
		case HS_A_ACCEPT_AUTH_MODE:
			if (a_u32(a, &out->auth_mode, "auth mode", err, errlen))
				return -1;
			have_auth = 1;
			break;
		case HS_A_ACCEPT_PEER_IDENTITY:
			if (a_u32(a, &v, "peer identity", err, errlen))
				return -1;
			if (out->npeerids >= HS_MAX_PEERIDS)
				return hs_seterr(err, errlen, "more than %d peer identities",
					      HS_MAX_PEERIDS);
			out->peerids[out->npeerids++] = (int32_t)v;
			break;
		case HS_A_ACCEPT_CERTIFICATE:
			if (parse_cert(a, out, err, errlen))
				return -1;
			break;
		case HS_A_ACCEPT_PEERNAME: {
			size_t n = a_len(a);
			const char *s = a_data(a);
			if (n == 0 || s[n - 1] != '\0' || strlen(s) != n - 1)
				return hs_seterr(err, errlen, "peername is not one NUL-terminated string");
			if (n > sizeof(out->peername))
				return hs_seterr(err, errlen, "peername longer than %zu bytes",
					      sizeof(out->peername) - 1);
			memcpy(out->peername, s, n);
			break;
		}
		case HS_A_ACCEPT_KEYRING:
			if (a_u32(a, &v, "keyring", err, errlen))
				return -1;
			out->keyring = (int32_t)v;
			break;
		default:
			out->unknown++;
			break;
		}
	}
	if (r < 0)
		return -1;
	if (out->sockfd < 0)
		return hs_seterr(err, errlen, "ACCEPT reply without a sockfd");
	if (!have_type || (out->msg_type != HS_MSG_CLIENTHELLO && out->msg_type != HS_MSG_SERVERHELLO))
		return hs_seterr(err, errlen, "ACCEPT reply with %s message type %u",
			      have_type ? "unknown" : "no", out->msg_type);
	if (!have_auth || out->auth_mode < HS_AUTH_UNAUTH || out->auth_mode > HS_AUTH_X509)
		return hs_seterr(err, errlen, "ACCEPT reply with %s auth mode %u",
			      have_auth ? "unknown" : "no", out->auth_mode);
	return 0;
}

int hs_parse_ready(const void *msg, size_t len, uint16_t family, uint32_t *handler_class,
		   char *err, size_t errlen)
{
	struct walk w;
	const struct nlattr *a = NULL;
	uint8_t cmd;
	int r, kerr = 0, have = 0;

	r = msg_open(msg, len, family, &w, &cmd, &kerr, err, errlen);
	if (r <= 0)
		return r == 0 ? hs_seterr(err, errlen, "error message (%d) on the group", kerr) : -1;
	if (cmd != HS_CMD_READY)
		return hs_seterr(err, errlen, "notification command %u, expected READY", cmd);
	while ((r = walk_next(&w, &a, err, errlen)) > 0) {
		if (a_type(a) == HS_A_ACCEPT_HANDLER_CLASS) {
			if (a_u32(a, handler_class, "handler class", err, errlen))
				return -1;
			have = 1;
		}
	}
	if (r < 0)
		return -1;
	if (!have)
		return hs_seterr(err, errlen, "READY without a handler class");
	return 0;
}

/* ---- controller: family and policy ----------------------------------------- */

int hs_parse_family(const void *msg, size_t len, const char *group, uint16_t *family,
		    uint32_t *grpid, int *kerr, char *err, size_t errlen)
{
	struct walk w, gw, ow;
	const struct nlattr *a = NULL, *g = NULL, *o = NULL;
	uint8_t cmd;
	uint32_t v = 0;
	int r, have_id = 0, have_grp = 0;

	if (kerr)
		*kerr = 0;
	r = msg_open(msg, len, GENL_ID_CTRL, &w, &cmd, kerr, err, errlen);
	if (r <= 0)
		return r == 0 ? hs_seterr(err, errlen, "family lookup refused: %s",
				       strerror(kerr ? *kerr : EIO)) : -1;
	if (cmd != CTRL_CMD_NEWFAMILY)
		return hs_seterr(err, errlen, "controller command %u, expected NEWFAMILY", cmd);
	while ((r = walk_next(&w, &a, err, errlen)) > 0) {
		if (a_type(a) == CTRL_ATTR_FAMILY_ID) {
			uint16_t id;
			if (a_len(a) != 2)
				return hs_seterr(err, errlen, "family id: %zu bytes, expected 2", a_len(a));
			memcpy(&id, a_data(a), 2);
			*family = id;
			have_id = 1;
		} else if (a_type(a) == CTRL_ATTR_MCAST_GROUPS) {
			gw = nested(a);
			while ((r = walk_next(&gw, &g, err, errlen)) > 0) {
				const char *name = NULL;
				int have_gid = 0;

				ow = nested(g);
				while ((r = walk_next(&ow, &o, err, errlen)) > 0) {
					if (a_type(o) == CTRL_ATTR_MCAST_GRP_NAME) {
						name = a_data(o);
						if (a_len(o) == 0 || name[a_len(o) - 1] != '\0')
							return hs_seterr(err, errlen, "group name not terminated");
					} else if (a_type(o) == CTRL_ATTR_MCAST_GRP_ID) {
						if (a_u32(o, &v, "group id", err, errlen))
							return -1;
						have_gid = 1;
					}
				}
				if (r < 0)
					return -1;
				if (name && have_gid && !strcmp(name, group)) {
					*grpid = v;
					have_grp = 1;
				}
			}
			if (r < 0)
				return -1;
		}
	}
	if (r < 0)
		return -1;
	if (!have_id)
		return hs_seterr(err, errlen, "family reply without an id");
	if (!have_grp)
		return hs_seterr(err, errlen, "family has no multicast group \"%s\"", group);
	return 0;
}

void hs_policy_init(struct hs_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->do_idx = -1;
}

int hs_policy_feed(struct hs_policy *p, const void *msg, size_t len, char *err, size_t errlen)
{
	struct walk w, ow, cw, pw, aw;
	const struct nlattr *a = NULL, *o = NULL, *c = NULL, *pa = NULL, *at = NULL;
	uint8_t cmd;
	uint32_t v = 0;
	int r, kerr = 0;

	r = msg_open(msg, len, GENL_ID_CTRL, &w, &cmd, &kerr, err, errlen);
	if (r <= 0)
		return r == 0 ? hs_seterr(err, errlen, "policy dump refused: %s", strerror(kerr)) : -1;
	if (cmd != CTRL_CMD_GETPOLICY)
		return hs_seterr(err, errlen, "controller command %u, expected GETPOLICY", cmd);
	p->seen++;
	while ((r = walk_next(&w, &a, err, errlen)) > 0) {
		if (a_type(a) == CTRL_ATTR_OP_POLICY) {
			/* { [op] = { DO = idx, DUMP = idx } } */
			ow = nested(a);
			while ((r = walk_next(&ow, &o, err, errlen)) > 0) {
				if (a_type(o) != HS_CMD_DONE)
					continue;
				cw = nested(o);
				while ((r = walk_next(&cw, &c, err, errlen)) > 0)
					if (a_type(c) == CTRL_ATTR_POLICY_DO) {
						if (a_u32(c, &v, "do policy", err, errlen))
							return -1;
						p->do_idx = (int)v;
					}
				if (r < 0)
					return -1;
			}
			if (r < 0)
				return -1;
		} else if (a_type(a) == CTRL_ATTR_POLICY) {
			/* { [policy idx] = { [attr] = { NL_POLICY_TYPE_ATTR_* } } } */
			pw = nested(a);
			while ((r = walk_next(&pw, &pa, err, errlen)) > 0) {
				unsigned idx = a_type(pa);
				aw = nested(pa);
				while ((r = walk_next(&aw, &at, err, errlen)) > 0)
					if (idx < 8 && a_type(at) < 64)
						p->attrs[idx] |= 1ULL << a_type(at);
				if (r < 0)
					return -1;
			}
			if (r < 0)
				return -1;
		}
	}
	return r < 0 ? -1 : 0;
}

int hs_policy_has(const struct hs_policy *p, unsigned attr)
{
	if (p->do_idx < 0 || p->do_idx >= 8 || attr >= 64)
		return -1;
	return (p->attrs[p->do_idx] >> attr) & 1;
}

/* ---- sock_diag for netlink: who else listens on the group ----------------- */

int hs_parse_ndiag(const void *msg, size_t len, uint32_t group, uint32_t *portid,
		   uint32_t *inode, char *err, size_t errlen)
{
	const struct nlmsghdr *nlh = msg;
	const struct netlink_diag_msg *d;
	struct walk w;
	const struct nlattr *a = NULL;
	int r;

	if (len < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
		return hs_seterr(err, errlen, "bad diag message length");
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*d)))
		return hs_seterr(err, errlen, "truncated diag message");
	d = NLMSG_DATA(nlh);
	w.p = (const unsigned char *)msg + NLMSG_ALIGN(NLMSG_LENGTH(sizeof(*d)));
	w.end = (const unsigned char *)msg + nlh->nlmsg_len;
	if (w.p > w.end)
		w.p = w.end;
	while ((r = walk_next(&w, &a, err, errlen)) > 0) {
		if (a_type(a) != NETLINK_DIAG_GROUPS)
			continue;
		/* A bitmap of unsigned longs; group g is bit g-1. */
		if (group == 0 || (group - 1) / 8 >= a_len(a))
			continue;
		if (((const unsigned char *)a_data(a))[(group - 1) / 8] & (1u << ((group - 1) % 8))) {
			*portid = d->ndiag_portid;
			*inode = d->ndiag_ino;
			return 1;
		}
	}
	return r < 0 ? -1 : 0;
}

/* ---- builders ---------------------------------------------------------------- */

struct mb {
	unsigned char *buf;
	size_t cap, len;
	int bad;
};

static void mb_put(struct mb *m, uint16_t type, const void *data, size_t n)
{
	struct nlattr a;
	size_t need = NLA_ALIGN(NLA_HDRLEN + n);

	if (m->bad || m->len + need > m->cap) {
		m->bad = 1;
		return;
	}
	a.nla_len = (uint16_t)(NLA_HDRLEN + n);
	a.nla_type = type;
	memset(m->buf + m->len, 0, need);
	memcpy(m->buf + m->len, &a, sizeof(a));
	memcpy(m->buf + m->len + NLA_HDRLEN, data, n);
	m->len += need;
}

static void mb_u32(struct mb *m, uint16_t type, uint32_t v)
{
	mb_put(m, type, &v, 4);
}

static void mb_genl(struct mb *m, uint16_t family, uint16_t flags, uint32_t seq, uint8_t cmd,
		    uint8_t version)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)m->buf;
	struct genlmsghdr *g;

	if (m->cap < GENL_HDR) {
		m->bad = 1;
		return;
	}
	memset(m->buf, 0, GENL_HDR);
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	g = NLMSG_DATA(nlh);
	g->cmd = cmd;
	g->version = version;
	m->len = GENL_HDR;
}

static int mb_end(struct mb *m)
{
	if (m->bad)
		return -1;
	((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
	return (int)m->len;
}

int hs_build_getfamily(void *buf, size_t cap, uint32_t seq, const char *name)
{
	struct mb m = { buf, cap, 0, 0 };

	mb_genl(&m, GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, 1);
	mb_put(&m, CTRL_ATTR_FAMILY_NAME, name, strlen(name) + 1);
	return mb_end(&m);
}

int hs_build_getpolicy(void *buf, size_t cap, uint32_t seq, uint16_t family, uint32_t op)
{
	struct mb m = { buf, cap, 0, 0 };

	mb_genl(&m, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_DUMP, seq, CTRL_CMD_GETPOLICY, 1);
	mb_put(&m, CTRL_ATTR_FAMILY_ID, &family, 2);
	mb_u32(&m, CTRL_ATTR_OP, op);
	return mb_end(&m);
}

int hs_build_accept(void *buf, size_t cap, uint32_t seq, uint16_t family)
{
	struct mb m = { buf, cap, 0, 0 };

	mb_genl(&m, family, NLM_F_REQUEST | NLM_F_ACK, seq, HS_CMD_ACCEPT, HS_FAMILY_VERSION);
	mb_u32(&m, HS_A_ACCEPT_HANDLER_CLASS, HS_CLASS_TLSHD);
	return mb_end(&m);
}

int hs_build_done(void *buf, size_t cap, uint32_t seq, uint16_t family, uint32_t status,
		  int sockfd, const int32_t *peerids, unsigned npeerids)
{
	struct mb m = { buf, cap, 0, 0 };

	mb_genl(&m, family, NLM_F_REQUEST | NLM_F_ACK, seq, HS_CMD_DONE, HS_FAMILY_VERSION);
	mb_u32(&m, HS_A_DONE_STATUS, status);
	mb_u32(&m, HS_A_DONE_SOCKFD, (uint32_t)sockfd);
	for (unsigned i = 0; i < npeerids; i++)
		mb_u32(&m, HS_A_DONE_REMOTE_AUTH, (uint32_t)peerids[i]);
	return mb_end(&m);
}

int hs_build_ndiag(void *buf, size_t cap, uint32_t seq)
{
	struct nlmsghdr *nlh = buf;
	struct netlink_diag_req *r;
	size_t len = NLMSG_LENGTH(sizeof(*r));

	if (cap < len)
		return -1;
	memset(buf, 0, len);
	nlh->nlmsg_len = (uint32_t)len;
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	r = NLMSG_DATA(nlh);
	r->sdiag_family = AF_NETLINK;
	r->sdiag_protocol = NETLINK_GENERIC;
	r->ndiag_show = NDIAG_SHOW_GROUPS;
	return (int)len;
}

const char *hs_msg_type_str(uint32_t t)
{
	return t == HS_MSG_CLIENTHELLO ? "client" : t == HS_MSG_SERVERHELLO ? "server" : "?";
}

const char *hs_auth_str(uint32_t a)
{
	switch (a) {
	case HS_AUTH_UNAUTH: return "anon";
	case HS_AUTH_PSK: return "psk";
	case HS_AUTH_X509: return "x509";
	default: return "?";
	}
}
