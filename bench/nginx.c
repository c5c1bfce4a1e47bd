/*
 * nginx.c - nginx as a bench server: a private nginx.conf in its own
 * directory, run in the foreground as ONE process (`daemon off;
 * master_process off;`) so /proc/PID/stat holds all of its CPU time, pinned
 * by the affinity it inherits.  Never touches the system's nginx or port 80.
 * Session cache and tickets are off, so every handshake is a full one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

int nginx_start(const struct bench *b, struct server *s, const char *name, const char *root,
		int tls_on, int ktls_on, const char *cert, const char *key)
{
	char conf[4096], path[400], tls[1024] = "";
	char *argv[8];

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/%s", b->workdir, name);
	if (mkdir(s->dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "ktls-bench: mkdir %s: %s\n", s->dir, strerror(errno));
		return -1;
	}
	snprintf(s->log, sizeof(s->log), "%s/error.log", s->dir);
	snprintf(s->access, sizeof(s->access), "%s/access.log", s->dir);
	s->port = free_port();
	if (s->port < 0)
		return -1;
	if (tls_on)
		snprintf(tls, sizeof(tls),
			 "    ssl_certificate %s;\n"
			 "    ssl_certificate_key %s;\n"
			 "    ssl_protocols TLSv1.2 TLSv1.3;\n" /* 1.22 stops at 1.2 otherwise */
			 "    ssl_session_cache off;\n"
			 "    ssl_session_tickets off;\n"
			 /* tickets off still sends two stateful TLS 1.3 tickets */
			 "    ssl_conf_command NumTickets 0;\n"
			 "%s",
			 cert, key, ktls_on ? "    ssl_conf_command Options KTLS;\n" : "");
	snprintf(conf, sizeof(conf),
		 "# written by ktls-bench for configuration %s\n"
		 "daemon off;\n"
		 "master_process off;\n"
		 "worker_processes 1;\n"
		 "pid %s/nginx.pid;\n"
		 "error_log %s warn;\n"
		 "events { worker_connections 4096; }\n"
		 "http {\n"
		 "  log_format bench '$remote_addr - - [$time_local] \"$request\" $status "
		 "$body_bytes_sent $request_time';\n"
		 "  access_log %s bench;\n"
		 "  client_body_temp_path %s/tmp-body;\n"
		 "  proxy_temp_path %s/tmp-proxy;\n"
		 "  fastcgi_temp_path %s/tmp-fcgi;\n"
		 "  uwsgi_temp_path %s/tmp-uwsgi;\n"
		 "  scgi_temp_path %s/tmp-scgi;\n"
		 "  default_type application/octet-stream;\n"
		 "  sendfile on;\n"
		 "  tcp_nopush on;\n"
		 "  keepalive_requests 100000000;\n"
		 "  keepalive_timeout 600s;\n"
		 "  server {\n"
		 "    listen 127.0.0.1:%d%s;\n"
		 "    root %s;\n"
		 "%s"
		 "  }\n"
		 "}\n",
		 name, s->dir, s->log, s->access, s->dir, s->dir, s->dir, s->dir, s->dir, s->port,
		 tls_on ? " ssl" : "", root, tls);
	snprintf(path, sizeof(path), "%s/nginx.conf", s->dir);
	if (write_text(path, conf) < 0) {
		fprintf(stderr, "ktls-bench: writing %s: %s\n", path, strerror(errno));
		return -1;
	}
	argv[0] = (char *)b->nginx;
	argv[1] = "-p";
	argv[2] = s->dir;
	argv[3] = "-c";
	argv[4] = path;
	argv[5] = "-e";
	argv[6] = s->log;
	argv[7] = NULL;
	s->pid = spawn(argv, b->server_cpu, s->log);
	if (s->pid < 0 || wait_port(s->port, s->pid, 10) < 0) {
		fprintf(stderr, "ktls-bench: nginx (%s) did not start; see %s\n", name, s->log);
		server_stop(s);
		return -1;
	}
	return 0;
}
