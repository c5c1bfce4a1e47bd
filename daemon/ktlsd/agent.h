/*
 * agent.h - `ktlsd agent`: the kernel's userspace TLS handshake service
 * (tlshd-compatible), on libktls.
 *
 *   agent.c         command line, capability and family checks, the event
 *                   loop (READY notifications, signals, children)
 *   agent_nl_msg.c  generic netlink "handshake": message building and
 *                   strict parsing (pure, unit-tested on bytes)
 *   agent_nl.c      its sockets: requests, replies, who else holds the group
 *   agent_hs.c      one request, in its own process: ACCEPT, the handshake
 *                   under our policy, kTLS, DONE
 *   agent_keys.c    kernel keyrings (raw syscalls): PSKs, DER certs, links
 *   agent_conf.c    the key = value configuration file
 *
 * Protocol (include/uapi/linux/handshake.h, Linux >= 6.5): the kernel
 * multicasts READY on group "tlshd" when a consumer (NVMe/TCP host or
 * target, SUNRPC client, nfsd) wants a handshake; an agent answers ACCEPT
 * (CAP_NET_ADMIN) and receives the socket as a new fd plus the parameters,
 * runs the handshake, installs kTLS, and reports DONE with a status.
 */
#ifndef KTLSD_AGENT_H
#define KTLSD_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>

/* ---- the handshake family (uapi/linux/handshake.h; not in every libc) ---- */

#define HS_FAMILY_NAME "handshake"
#define HS_GROUP_NAME "tlshd"
#define HS_FAMILY_VERSION 1

/* Where a generic netlink message's attributes start. */
#define GENL_HDR (NLMSG_HDRLEN + GENL_HDRLEN)

enum { HS_CLASS_NONE = 0, HS_CLASS_TLSHD = 1 };
enum { HS_MSG_CLIENTHELLO = 1, HS_MSG_SERVERHELLO = 2 };
enum { HS_AUTH_UNAUTH = 1, HS_AUTH_PSK = 2, HS_AUTH_X509 = 3 };
enum { HS_CMD_READY = 1, HS_CMD_ACCEPT = 2, HS_CMD_DONE = 3 };

enum { HS_A_X509_CERT = 1, HS_A_X509_PRIVKEY = 2 };
enum {
	HS_A_ACCEPT_SOCKFD = 1,
	HS_A_ACCEPT_HANDLER_CLASS = 2,
	HS_A_ACCEPT_MESSAGE_TYPE = 3,
	HS_A_ACCEPT_TIMEOUT = 4,
	HS_A_ACCEPT_AUTH_MODE = 5,
	HS_A_ACCEPT_PEER_IDENTITY = 6,
	HS_A_ACCEPT_CERTIFICATE = 7,
	HS_A_ACCEPT_PEERNAME = 8,
	HS_A_ACCEPT_KEYRING = 9,
};
enum { HS_A_DONE_STATUS = 1, HS_A_DONE_SOCKFD = 2, HS_A_DONE_REMOTE_AUTH = 3 };

/* The kernel passes at most 5 peer ids (TLS_MAX_PEERIDS) and one cert. */
#define HS_MAX_PEERIDS 5
#define HS_MAX_CERTS 4

/* ---- agent_nl_msg.c: pure message code -------------------------------- */

/* Format a reason into err (both files' error convention); returns -1. */
int hs_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

struct hs_accept {
	int sockfd;               /* -1 when absent (then the reply is refused) */
	uint32_t msg_type;        /* HS_MSG_* */
	uint32_t auth_mode;       /* HS_AUTH_* */
	uint32_t timeout_ms;      /* 0: the kernel gave none */
	int32_t peerids[HS_MAX_PEERIDS];
	unsigned npeerids;
	struct { int32_t cert, privkey; } certs[HS_MAX_CERTS];
	unsigned ncerts;
	char peername[256];       /* "" when absent */
	int32_t keyring;          /* 0 when absent (before ~6.17 it always is) */
	unsigned unknown;         /* attributes newer than this agent, ignored */
};

/*
 * Each parser takes one whole netlink message as received (len bytes
 * available) and refuses anything whose lengths do not add up exactly.
 * family 0 skips the nlmsg_type check.  0, or -1 with err; an NLMSG_ERROR
 * message gives -1 with *kerr = its positive errno (0 for an ack).
 */
int hs_parse_accept(const void *msg, size_t len, uint16_t family, struct hs_accept *out,
		    int *kerr, char *err, size_t errlen);
int hs_parse_ready(const void *msg, size_t len, uint16_t family, uint32_t *handler_class,
		   char *err, size_t errlen);
/*
 * One NLMSG_ERROR message (an ack or a refusal): 0 with *kerr = 0 for an
 * ack or the positive errno it carries; -1 with err when it is cut short or
 * its code is not 0 or a negated errno (positive, below -4095, INT_MIN).
 * The other parsers hand their NLMSG_ERROR messages to it.
 */
int hs_parse_nlerr(const void *msg, size_t len, int *kerr, char *err, size_t errlen);
/* CTRL_CMD_NEWFAMILY reply: the family id and the id of group `group`. */
int hs_parse_family(const void *msg, size_t len, const char *group, uint16_t *family,
		    uint32_t *grpid, int *kerr, char *err, size_t errlen);

/* Policy dump state: which attributes the DONE request's policy knows. */
struct hs_policy {
	int do_idx;               /* policy index of DONE's do, -1 unknown */
	uint64_t attrs[8];        /* attribute bitmaps per policy index 0..7 */
	int seen;                 /* messages fed */
};
void hs_policy_init(struct hs_policy *p);
/* One CTRL_CMD_GETPOLICY dump message (NLMSG_DONE and errors excluded). */
int hs_policy_feed(struct hs_policy *p, const void *msg, size_t len, char *err, size_t errlen);
/* 1 when DONE's policy has attribute attr, 0 when not, -1 when unknown. */
int hs_policy_has(const struct hs_policy *p, unsigned attr);

/* NETLINK_SOCK_DIAG reply: portid and inode of a socket in group, or 0. */
int hs_parse_ndiag(const void *msg, size_t len, uint32_t group, uint32_t *portid,
		   uint32_t *inode, char *err, size_t errlen);

/* Builders: the message length, or -1 when cap is too small. */
int hs_build_getfamily(void *buf, size_t cap, uint32_t seq, const char *name);
int hs_build_getpolicy(void *buf, size_t cap, uint32_t seq, uint16_t family, uint32_t op);
int hs_build_accept(void *buf, size_t cap, uint32_t seq, uint16_t family);
int hs_build_done(void *buf, size_t cap, uint32_t seq, uint16_t family, uint32_t status,
		  int sockfd, const int32_t *peerids, unsigned npeerids);
int hs_build_ndiag(void *buf, size_t cap, uint32_t seq);

/* Names for logs ("client", "psk", ...); never NULL. */
const char *hs_msg_type_str(uint32_t t);
const char *hs_auth_str(uint32_t a);

/* ---- agent_nl.c: sockets ------------------------------------------------ */

/* Raw copy of a received message when $KTLS_AGENT_CAPTURE is a directory. */
void hs_capture(const char *kind, const void *msg, size_t len);

struct hs_family {
	uint16_t id;
	uint32_t group;
	int remote_auth;          /* DONE takes REMOTE_AUTH (policy dump said so) */
};

/* A generic netlink socket (blocking, 5 s receive timeout); -1 with err. */
int hs_socket(char *err, size_t errlen);
/* Resolve the family; -1 with *kerr = ENOENT when the kernel lacks it. */
int hs_resolve(int fd, struct hs_family *f, int *kerr, char *err, size_t errlen);
/* CTRL_CMD_GETPOLICY for DONE; fills f->remote_auth.  -1 with err. */
int hs_probe_policy(int fd, struct hs_family *f, char *err, size_t errlen);
/*
 * Another listener in f->group that can take requests (its process has
 * CAP_NET_ADMIN): 1 with its owner in who ("pid 12 (tlshd)"); 0 when none,
 * with ignored naming a listener that cannot ("" when none); -1 with err.
 */
int hs_group_taken(const struct hs_family *f, uint32_t own_portid, char *who, size_t wholen,
		   char *ignored, size_t ignlen, char *err, size_t errlen);
/* ACCEPT: 0 and *out, or -1 with *kerr (EAGAIN: nothing pending). */
int hs_accept(int fd, const struct hs_family *f, struct hs_accept *out, int *kerr,
	      char *err, size_t errlen);
/* DONE; 0 or -1 with *kerr. */
int hs_done(int fd, const struct hs_family *f, uint32_t status, int sockfd,
	    const int32_t *peerids, unsigned npeerids, int *kerr, char *err, size_t errlen);

/* ---- agent_conf.c ------------------------------------------------------- */

enum { AGENT_LOG_ERROR, AGENT_LOG_INFO, AGENT_LOG_DEBUG };

#define AGENT_MAX_KEYRINGS 8

struct agent_conf {
	int log_level;
	unsigned handshake_timeout_ms; /* when the kernel gives none */
	unsigned max_handshakes;       /* children at once */
	char *keyrings[AGENT_MAX_KEYRINGS]; /* extra keyrings linked, by name */
	unsigned nkeyrings;
	char *truststore, *crl;        /* x509: PEM files; NULL: system store, no CRL */
	char *certificate, *private_key; /* x509: ours when the kernel gives none */
};

void agent_conf_defaults(struct agent_conf *c);
/* Parse text (path is for messages).  0, or -1 with "path:line: why". */
int agent_conf_parse(struct agent_conf *c, const char *text, const char *path,
		     char *err, size_t errlen);
int agent_conf_load(struct agent_conf *c, const char *path, char *err, size_t errlen);
void agent_conf_free(struct agent_conf *c);

/* ---- agent.c ------------------------------------------------------------ */

void agent_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int agent_log_level;

/* `ktlsd agent ARGS` (argv without "ktlsd agent"): the exit status. */
int ktlsd_agent_main(int argc, char **argv);

/* The parent's state: one event loop, its sockets and its children. */
struct agent {
	struct agent_conf conf;
	const char *config_path;
	struct hs_family fam;
	int mc;                /* multicast socket on "tlshd" */
	int sfd;               /* signalfd */
	unsigned children;     /* running */
	unsigned waiting;      /* READYs not yet given a child */
	int stopping;
};

/*
 * The loop's two steps, exposed so that tests can drive them on a
 * socketpair standing in for the multicast group: read every pending
 * notification on ag->mc and fork a child per READY for us (or count it
 * as waiting past max_handshakes); collect exited children and start the
 * waiting ones.
 */
void agent_on_netlink(struct agent *ag);
void agent_reap(struct agent *ag);

/* ---- agent_keys.c ------------------------------------------------------- */

/* Description ("psk;0;0;3f010000;NVMe0R01 ...") split: type and name. */
int keys_describe(int32_t serial, char *type, size_t tlen, char *desc, size_t dlen);
/* Payload into buf; its length, or -1 (errno) / too large (EMSGSIZE). */
long keys_read(int32_t serial, void *buf, size_t cap);
/* Search the process keyring (and what is linked into it); serial or -1. */
int32_t keys_search(const char *type, const char *desc);
/* Link a keyring given by name (from /proc/keys) or serial; 0 or -1. */
int keys_link_named(const char *name, int32_t *serial);
int keys_link(int32_t keyring);

/* ---- agent_hs.c --------------------------------------------------------- */

/* One request after ACCEPT: the parameters in, the outcome out. */
struct agent_req {
	const struct agent_conf *conf;
	struct hs_accept a;
	char peer[80];             /* "127.0.0.1:4420" */
	int32_t peerid;            /* for DONE: PSK serial, -1 (UINT_MAX) x509 peer, 0 none */
	char identity[256];        /* PSK identity used or found, for the log */
	int psk_unknown;           /* server: identities offered, none known */
	char why[300];             /* the failure, for the log */
};

/*
 * Handshake on r->a.sockfd as r->a asks, then kTLS TX+RX; logs the
 * outcome.  Returns the DONE status (0, EACCES, ETIMEDOUT, EKEYREJECTED,
 * EIO).  Needs no netlink: the consumer-free test harness drives it on
 * its own sockets.
 */
int agent_run(struct agent_req *r);

/*
 * Build the x509 contexts of conf once (in the parent, at start-up and
 * after SIGHUP); requests using conf then borrow them.  A context that
 * cannot be built is simply absent: its requests build their own and
 * report why they fail.
 */
void agent_prebuild(const struct agent_conf *conf);
void agent_prebuild_free(void);

/* The prebuilt contexts; agent_prebuilt_has says whether t was built. */
enum agent_tmpl { AGENT_TMPL_CLIENT_ANON, AGENT_TMPL_CLIENT_X509, AGENT_TMPL_SERVER_X509,
		  AGENT_TMPL_N };
int agent_prebuilt_has(enum agent_tmpl t);

/*
 * The child's whole job: ACCEPT one request and finish it with DONE.
 * Returns the exit status for the child (0 also when there was nothing
 * to accept).
 */
int agent_handle_one(const struct agent_conf *conf, const struct hs_family *f);

/*
 * The DONE status for a failed handshake: from its KTLS_ERR_* code, or
 * ETIMEDOUT when our own deadline passed (pure).
 */
int agent_status_for(int code, int timed_out);

#endif
