/*
 * bench.h - ktls-bench: what the pieces share.
 *
 * main.c parses options and runs the subcommands; sysinfo.c says what
 * machine this is (kernel, CPU, clock, tool versions); util.c spawns and
 * stops servers, makes files, reads /proc; certs.c makes the certificate;
 * nginx.c / serve.c run the server configurations; client.c is the load
 * client; handshake.c and crypto.c are the other two measurements;
 * report.c prints the table, the JSON and the gnuplot charts.
 */
#ifndef KTLS_BENCH_H
#define KTLS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "ktls.h"

#define BENCH_MAX_SIZES 16
#define BENCH_MAX_ROWS 256

/* Settings and facts for one run. */
struct bench {
	int quick;
	double seconds;    /* per row */
	int conns;         /* concurrent keep-alive connections */
	size_t sizes[BENCH_MAX_SIZES];
	int nsizes;
	int rsa;           /* RSA-2048 instead of ECDSA P-256 */
	int tls;           /* KTLS_TLS1_2 or KTLS_TLS1_3 for serve/crypto rows */
	unsigned configs;  /* bit n set: run serve configuration n (1..5) */
	int server_cpu, client_cpu; /* -1: not pinned */
	const char *json_path, *plot_dir, *workdir_keep;
	const char *ktlsd, *nginx;

	/* filled by sysinfo_collect() */
	char kernel[128], cpu_model[128], hz_source[160];
	char openssl_ver[64], nginx_ver[64], gnuplot_ver[64], bench_ver[32];
	double cpu_hz;
	int ncpu;
	int emulated;      /* inside the QEMU rig: numbers are not performance figures */
	struct ktls_probe probe;
	char ktls_reason[200]; /* "" when kTLS works here, else why not */

	/* filled by certs_make() */
	char workdir[256];
	char cert[300], key[300];
};

/* One result row; kind says which fields mean something. */
enum { ROW_SERVE, ROW_HANDSHAKE, ROW_CRYPTO, ROW_INSTALL };

struct row {
	int kind;
	int config_no;          /* serve: 1..5 */
	char config[48];        /* "nginx-plain", "ktlsd-ktls", "evp", ... */
	char skipped[240];      /* non-empty: not measured, and why */
	char error[240];        /* non-empty: measured but failed */
	char note[240];         /* what the number means here (e.g. the fallback reason) */
	char version[16], cipher[64], certkind[16];
	size_t size;
	int conns;
	uint64_t bytes, server_bytes, requests;
	double seconds, gbps, server_cpu_s, cpb, rps, p50_ms, p99_ms;
	long long ktls_tx;      /* TlsTxSw+TlsTxDevice rise during the row, -1 unknown */
	double ratio_base, ratio_nginx; /* cycles/byte vs config 1 / config 4, same size; 0 = n/a */
	double sys_per_conn, sys_per_req; /* serve: server syscalls (syscalls.c); -1 = n/a */
	double copy_per_byte;     /* serve, ktlsd: file bytes read into its memory per body byte; -1 = n/a */
	uint64_t count_requests;  /* requests the counting made (in the server's log too) */
	/* handshake */
	uint64_t handshakes;
	double hs_per_s, hs_per_core_s, us_per_hs;
	/* install */
	double install_us, install_pct;
	char mode[32];
};

extern struct row g_rows[BENCH_MAX_ROWS];
extern int g_nrows;
struct row *row_add(int kind);

/* sysinfo.c */
void sysinfo_collect(struct bench *b);

/* util.c */
double now_s(void);
double thread_cpu_s(void);
int pin_cpu(int cpu);
int free_port(void);
int wait_port(int port, pid_t pid, double timeout_s);
/* wait_port on host (an IPv4 address) instead of 127.0.0.1 */
int wait_port_at(const char *host, int port, pid_t pid, double timeout_s);
/* One counter of /proc/net/tls_stat; -1 when unreadable or absent. */
long long tls_stat_counter(const char *name);
pid_t spawn(char *const argv[], int cpu, const char *logpath);
int stop_child(pid_t pid, int sig, double timeout_s);
double proc_cpu_s(pid_t pid);
long long tls_stat_tx(void);
long long proc_read_bytes(pid_t pid);
int make_file(const char *path, size_t size, unsigned seed, unsigned char sha[32]);
int run_cmd(char *const argv[], char *out, size_t cap);
int rm_rf(const char *path);
void progress(const struct bench *b, int done, int total, const char *what, double t_start);
const char *size_name(size_t size, char *buf, size_t cap);
int write_text(const char *path, const char *text);

/* certs.c */
int certs_make(struct bench *b, int rsa, char *cert, char *key, size_t cap);

/* client.c */
struct load {
	int port, tls_on, version; /* version KTLS_TLS1_x */
	const char *cafile;
	int rsa;                   /* which TLS 1.2 suite to ask for */
	const char *path;
	size_t size;
	const unsigned char *sha;  /* expected SHA-256 of the body */
	double seconds;
	int conns, cpu;
	int close_each;            /* handshake mode: new connection per request */
	/*
	 * The ktlsd-nic row: the server's address (NULL: 127.0.0.1), the
	 * network namespace client threads connect from (/run/netns/NAME,
	 * NULL: ours) and the TLS 1.2 cipher to ask for (NULL: AES-256-GCM).
	 */
	const char *host, *netns, *cipher12;
	/*
	 * Counting mode (syscalls.c) when count_conns > 0: no clock; each
	 * client thread makes count_conns connections one after another,
	 * count_reqs requests each, the last with "Connection: close".
	 */
	int count_conns, count_reqs;
	void (*on_start)(void *);  /* called once all connections are up, timing starts */
	void (*on_end)(void *);    /* called when the last request has finished */
	void *arg;
};
struct load_result {
	uint64_t bytes, requests, sampled;
	double seconds, p50_ms, p99_ms;
	char version[16], cipher[64];
	char error[200];
};
int load_run(const struct load *l, struct load_result *r);
SSL_CTX *client_ctx(const char *cafile, int version, int rsa, const char *cipher12, char *err,
		    size_t cap);

/* serve.c / nginx.c */
struct server {
	pid_t pid;
	int port;
	char dir[300], log[340], access[340];
};
int nginx_start(const struct bench *b, struct server *s, const char *name, const char *root,
		int tls_on, int ktls_on, const char *cert, const char *key);
int ktlsd_start(const struct bench *b, struct server *s, const char *name, const char *root,
		int offload, const char *cert, const char *key);
/* ktlsd_start listening on host (an IPv4 address) instead of 127.0.0.1 */
int ktlsd_start_at(const struct bench *b, struct server *s, const char *name, const char *host,
		   const char *root, int offload, const char *cert, const char *key);
/* "" when the rig's test NIC is here (row 6, ktlsd-nic), else why not. */
const char *bench_nic_missing(void);
void server_stop(struct server *s);
int ktlsd_has_tickets_opt(const struct bench *b);
int access_log_bytes(const char *path, uint64_t *bytes, uint64_t *lines);
int bench_serve(struct bench *b);

/* syscalls.c */
struct syscall_counts {
	double per_conn, per_req;  /* -1: not measured */
	uint64_t requests;         /* made while counting */
	char error[160];
};
/*
 * Count server syscalls for l's workload (see syscalls.c); 0 or -1 with
 * c->error.  keep: path prefix for the strace summaries, or NULL.
 */
int syscalls_count(pid_t server, const struct load *l, int conns, int reqs, const char *keep,
		   struct syscall_counts *c);

/* handshake.c */
int bench_handshake(struct bench *b);

/* crypto.c */
int bench_crypto(struct bench *b);

/* report.c */
void report_table(const struct bench *b, FILE *out);
int report_json(const struct bench *b, const char *path);
int report_plots(const struct bench *b, const char *dir);

#endif
