/*
 * berth-monitor: Berth's per-container monitor.
 *
 * A drop-in for the subset of conmon's command line that Berth uses (see
 * monitor/monitor.go and engine/internal/containerops/exec.go). It
 * daemonizes, runs `RUNTIME create` (or `RUNTIME exec --detach`), reports
 * the container's pid on the sync pipe, then holds the container's stdio:
 * it writes Docker's json-file log (with max-size/max-file rotation),
 * serves attach clients on a SOCK_SEQPACKET socket (conmon's framing: one
 * stream byte, 2 = stdout, 3 = stderr, then at most 8192 bytes of data),
 * applies resize requests from the control FIFO, and when the container
 * exits writes EXITDIR/ID (exit code, or 128+N for signal N) and execs the
 * exit command.
 *
 * One process, no threads, poll(2) loop, SIGCHLD via signalfd. Memory is
 * the point: small static buffers only.
 *
 * Build: cc -std=gnu11 -O2 -Wall -Wextra -Werror -o berth-monitor berth-monitor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PKT_MAX 8192         /* data bytes per attach packet */
#define STREAM_STDOUT 2
#define STREAM_STDERR 3
#define ERRMSG_MAX 8192      /* runtime error text reported on the sync pipe */
#define DRAIN_MS 2000        /* bound on draining output after the exit */
#define CLIENT_QUEUE_MAX (1 << 20) /* bytes queued for one attach client */
#define FLUSH_STALL_MS 10000 /* after the exit: how long a client may take nothing */

/* ---- options ---- */

static const char *o_cid, *o_uuid, *o_runtime, *o_bundle, *o_pidfile, *o_monpidfile;
static const char *o_log = "none", *o_exitdir, *o_sockdir, *o_exitcmd, *o_procspec;
static const char *o_logpath; /* PATH of json-file:PATH */
static long long o_logmax;    /* bytes; 0: unbounded */
static long o_logfiles = 1;
static bool o_tty, o_stdin, o_leave_stdin, o_exec;
static const char **o_rtargs, **o_exitargs;
static int n_rtargs, n_exitargs;

/* ---- state ---- */

static int sync_fd = -1;
static int sig_fd = -1;
static int sockdir_fd = -1;  /* O_PATH fd of SOCKETDIR/UUID */
static int attach_fd = -1;   /* listening attach socket */
static int ctl_fd = -1;      /* control FIFO */
static int out_fd = -1;      /* stdout pipe or pty master (read) */
static int err_fd = -1;      /* stderr pipe (read) */
static int in_fd = -1;       /* stdin pipe (write) or pty master dup */
static int log_fd = -1;
static long long log_size;
static bool out_eof, err_eof;
static bool stdin_closed;

/* An attach client. Packets it could not take yet wait in q (each as a
 * 2-byte big-endian length, then the packet) from q_off to q_len. While
 * any client has a packet waiting, the container's output is not read:
 * a slow client slows the container down, as with Docker, rather than
 * missing output. Once the container has exited, the rest of its output
 * is read regardless and queued, up to CLIENT_QUEUE_MAX per client. */
struct client {
	int fd;
	bool input_done;
	char *q;
	size_t q_len, q_off;
};
static struct client *clients;
static int n_clients, cap_clients;

/* Stdin bytes waiting for the container to read: one packet at most, so
 * clients are not read while it is pending (backpressure). */
static char in_buf[PKT_MAX];
static size_t in_len, in_off;

/* The read buffer: data is read to rbuf + 4 + 1; the byte before it is
 * the stream id of an attach packet, and the 4 before that take a UTF-8
 * sequence carried over from the previous read for the log. */
static char rbuf[4 + 1 + PKT_MAX];
#define RDATA (rbuf + 5)

/* Per stream (0 stdout, 1 stderr): the start of a UTF-8 sequence that the
 * last read cut, held back from the log until its end arrives. */
static char carry[2][4];
static size_t carry_len[2];

/* Children reaped before we knew which pid was the container's. */
struct reaped {
	pid_t pid;
	int status;
};
static struct reaped reaped[16];
static int n_reaped;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dprintf(2, "berth-monitor: ");
	vdprintf(2, fmt, ap);
	dprintf(2, "\n");
	va_end(ap);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		die("out of memory");
	return p;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* write_all writes all of p to fd, retrying on EINTR and waiting on
 * EAGAIN. -1 on error. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = {.fd = fd, .events = POLLOUT};
				poll(&pf, 1, 100);
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- buffered writer with JSON string escaping ---- */

struct wbuf {
	int fd;
	size_t n;
	long long written;
	bool failed;
	char b[4096];
};

static void wb_flush(struct wbuf *w)
{
	if (w->n == 0)
		return;
	if (!w->failed && w->fd >= 0) {
		if (write_all(w->fd, w->b, w->n) < 0)
			w->failed = true;
		else
			w->written += (long long)w->n;
	}
	w->n = 0;
}

static void wb_put(struct wbuf *w, const char *p, size_t n)
{
	while (n > 0) {
		if (w->n == sizeof w->b)
			wb_flush(w);
		size_t k = sizeof w->b - w->n;
		if (k > n)
			k = n;
		memcpy(w->b + w->n, p, k);
		w->n += k;
		p += k;
		n -= k;
	}
}

static void wb_str(struct wbuf *w, const char *s) { wb_put(w, s, strlen(s)); }

/* utf8_len returns the length of the valid UTF-8 sequence at p (as Go's
 * utf8.DecodeRune accepts: no overlongs, no surrogates, <= U+10FFFF), or 0
 * when p does not start one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	if (c < 0xE0)
		return (n >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
	if (c < 0xF0) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && p[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && p[1] >= 0xA0)
			return 0; /* surrogate */
		return 3;
	}
	if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
		return 0;
	if (c == 0xF0 && p[1] < 0x90)
		return 0; /* overlong */
	if (c == 0xF4 && p[1] >= 0x90)
		return 0; /* > U+10FFFF */
	return 4;
}

/* wb_json writes s as the inside of a JSON string, escaped as Go's
 * encoding/json does with HTML escaping, except that control bytes other
 * than \n and \r (a tab too) are \u00XX: Docker's json-file escaping. */
static void wb_json(struct wbuf *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t start = 0, i = 0;
	while (i < n) {
		unsigned char c = p[i];
		const char *esc = NULL;
		char u[7];
		size_t adv = 1;
		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
				i++;
				continue;
			}
			switch (c) {
			case '"': esc = "\\\""; break;
			case '\\': esc = "\\\\"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			default:
				memcpy(u, "\\u00", 4);
				u[4] = hex[c >> 4];
				u[5] = hex[c & 15];
				u[6] = 0;
				esc = u;
			}
		} else {
			size_t l = utf8_len(p + i, n - i);
			if (l == 3 && c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
				esc = p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
				adv = 3;
			} else if (l == 0) {
				esc = "\\ufffd";
			} else {
				i += l;
				continue;
			}
		}
		wb_put(w, s + start, i - start);
		wb_str(w, esc);
		i += adv;
		start = i;
	}
	wb_put(w, s + start, n - start);
}

/* ---- sync pipe ---- */

static void sync_report(long data, const char *msg, size_t msglen)
{
	if (sync_fd < 0)
		return;
	struct wbuf *w = calloc(1, sizeof *w);
	if (w) {
		char num[32];
		w->fd = sync_fd;
		snprintf(num, sizeof num, "%ld", data);
		wb_str(w, "{\"data\": ");
		wb_str(w, num);
		if (msg) {
			wb_str(w, ", \"message\": \"");
			wb_json(w, msg, msglen);
			wb_str(w, "\"");
		}
		wb_str(w, "}\n");
		wb_flush(w);
		free(w);
	}
	close_fd(&sync_fd);
}

/* ---- json-file log ---- */

static struct wbuf logw;

static void log_open(void)
{
	log_fd = open(o_logpath, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	log_size = 0;
	if (log_fd >= 0) {
		struct stat st;
		if (fstat(log_fd, &st) == 0)
			log_size = st.st_size;
		/* A record torn by a failed write (disk full) ends the file
		 * without its newline: end it, so that the next entry stays
		 * whole (the reader skips the torn one). */
		char last;
		if (log_size > 0 && pread(log_fd, &last, 1, log_size - 1) == 1 && last != '\n' &&
		    write(log_fd, "\n", 1) == 1)
			log_size++;
	}
	logw.fd = log_fd;
	logw.failed = false;
}

/* log_rotate follows Docker's json-file: PATH → PATH.1 → … → PATH.(N-1),
 * the oldest dropped; with one file, PATH is unlinked. Either way a new
 * PATH is started, so that a reader following the old file (by its
 * descriptor) finishes it and then opens the new one. */
static void log_rotate(void)
{
	if (o_logfiles < 2) {
		unlink(o_logpath);
		close_fd(&log_fd);
		log_open();
		return;
	}
	size_t plen = strlen(o_logpath) + 24;
	char *a = malloc(plen), *b = malloc(plen);
	if (!a || !b) {
		free(a);
		free(b);
		return;
	}
	snprintf(a, plen, "%s.%ld", o_logpath, o_logfiles - 1);
	unlink(a);
	for (long i = o_logfiles - 2; i >= 1; i--) {
		snprintf(a, plen, "%s.%ld", o_logpath, i);
		snprintf(b, plen, "%s.%ld", o_logpath, i + 1);
		rename(a, b);
	}
	snprintf(b, plen, "%s.1", o_logpath);
	rename(o_logpath, b);
	free(a);
	free(b);
	close_fd(&log_fd);
	log_open();
}

/* format_time writes t as Go's time.RFC3339Nano in UTC. */
static void format_time(char *out, size_t n, const struct timespec *t)
{
	struct tm tm;
	gmtime_r(&t->tv_sec, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	long ns = t->tv_nsec;
	if (ns > 0) {
		int digits = 9;
		while (ns % 10 == 0) {
			ns /= 10;
			digits--;
		}
		k += (size_t)snprintf(out + k, n - k, ".%0*ld", digits, ns);
	}
	snprintf(out + k, n - k, "Z");
}

static void log_entry(const char *stream, const char *ts, const char *p, size_t n)
{
	if (o_logmax > 0 && log_size >= o_logmax)
		log_rotate();
	if (log_fd < 0)
		return;
	long long before = logw.written;
	wb_str(&logw, "{\"log\":\"");
	wb_json(&logw, p, n);
	wb_str(&logw, "\",\"stream\":\"");
	wb_str(&logw, stream);
	wb_str(&logw, "\",\"time\":\"");
	wb_str(&logw, ts);
	wb_str(&logw, "\"}\n");
	wb_flush(&logw);
	log_size += logw.written - before;
	/* A failed write (disk full) drops this entry; try again next time. */
	logw.failed = false;
}

/* rune_tail returns how many bytes at the end of p start a UTF-8
 * sequence that is valid so far but incomplete. */
static size_t rune_tail(const unsigned char *p, size_t n)
{
	for (size_t k = 1; k <= 3 && k <= n; k++) {
		unsigned char c = p[n - k];
		if (c < 0x80)
			return 0;
		if ((c & 0xC0) == 0x80)
			continue;
		size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		return need > k ? k : 0;
	}
	return 0;
}

/* log_output logs p[0:n] of stream as json-file entries, one per line.
 * The 4 bytes before p must be writable (a carried UTF-8 start goes
 * there); with final nothing is held back. */
static void log_output(int stream, char *p, size_t n, bool final)
{
	if (!o_logpath)
		return;
	int s = stream == STREAM_STDERR;
	if (carry_len[s]) {
		p -= carry_len[s];
		memcpy(p, carry[s], carry_len[s]);
		n += carry_len[s];
		carry_len[s] = 0;
	}
	if (!final) {
		size_t k = rune_tail((const unsigned char *)p, n);
		memcpy(carry[s], p + n - k, k);
		carry_len[s] = k;
		n -= k;
	}
	if (n == 0)
		return;
	struct timespec t;
	char ts[48];
	clock_gettime(CLOCK_REALTIME, &t);
	format_time(ts, sizeof ts, &t);
	const char *name = stream == STREAM_STDERR ? "stderr" : "stdout";
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) + 1 : n;
		log_entry(name, ts, p, k);
		p += k;
		n -= k;
	}
}

/* ---- attach clients ---- */

static void client_drop(int i)
{
	close(clients[i].fd);
	free(clients[i].q);
	clients[i] = clients[--n_clients];
}

static bool client_backed(const struct client *c)
{
	return c->q_off < c->q_len;
}

static bool any_client_backed(void)
{
	for (int i = 0; i < n_clients; i++)
		if (client_backed(&clients[i]))
			return true;
	return false;
}

/* client_queue keeps packet p (n ≤ PKT_MAX + 1 bytes) for client c;
 * false when its queue is full. */
static bool client_queue(struct client *c, const char *p, size_t n)
{
	if (c->q_off == c->q_len)
		c->q_off = c->q_len = 0;
	if (c->q_len - c->q_off + n + 2 > CLIENT_QUEUE_MAX)
		return false;
	c->q = xrealloc(c->q, c->q_len + n + 2);
	c->q[c->q_len] = (char)(n >> 8);
	c->q[c->q_len + 1] = (char)(n & 0xff);
	memcpy(c->q + c->q_len + 2, p, n);
	c->q_len += n + 2;
	return true;
}

/* client_flush sends c's queued packets while it takes them; false when
 * the client is gone. */
static bool client_flush(struct client *c)
{
	while (client_backed(c)) {
		const unsigned char *h = (const unsigned char *)c->q + c->q_off;
		size_t n = (size_t)h[0] << 8 | h[1];
		ssize_t w = send(c->fd, h + 2, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
		c->q_off += n + 2;
	}
	free(c->q);
	c->q = NULL;
	c->q_len = c->q_off = 0;
	return true;
}

/* broadcast sends the n bytes at RDATA, as a packet of stream, to every
 * client, queueing it for those that cannot take it now. */
static void broadcast(int stream, size_t n)
{
	RDATA[-1] = (char)stream;
	for (int i = 0; i < n_clients;) {
		struct client *c = &clients[i];
		bool ok;
		if (client_backed(c)) {
			ok = client_queue(c, RDATA - 1, n + 1);
		} else {
			ssize_t w;
			do
				w = send(c->fd, RDATA - 1, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			while (w < 0 && errno == EINTR);
			ok = w >= 0 || (errno == EAGAIN && client_queue(c, RDATA - 1, n + 1));
		}
		if (ok)
			i++;
		else
			client_drop(i);
	}
}

/* flush_clients gives the clients what is queued for them once the
 * container has exited; a client that takes nothing for FLUSH_STALL_MS
 * is left behind. */
static void flush_clients(void)
{
	struct pollfd *pf = xrealloc(NULL, (size_t)(n_clients + 1) * sizeof *pf);
	int64_t progress = now_ms();
	while (any_client_backed() && now_ms() - progress < FLUSH_STALL_MS) {
		for (int i = 0; i < n_clients; i++)
			pf[i] = (struct pollfd){.fd = client_backed(&clients[i]) ? clients[i].fd : -1, .events = POLLOUT};
		if (poll(pf, (nfds_t)n_clients, 1000) < 0 && errno != EINTR)
			break;
		for (int i = n_clients - 1; i >= 0; i--) {
			if (!pf[i].revents)
				continue;
			size_t before = clients[i].q_off;
			if (!client_flush(&clients[i]) || (pf[i].revents & (POLLERR | POLLHUP | POLLNVAL)))
				client_drop(i);
			else if (clients[i].q_off != before || !client_backed(&clients[i]))
				progress = now_ms();
		}
	}
	free(pf);
}

static void close_stdin(void)
{
	if (stdin_closed)
		return;
	stdin_closed = true;
	in_len = in_off = 0;
	/* A pty has no stdin of its own to close. */
	if (!o_tty)
		close_fd(&in_fd);
}

static void accept_clients(void)
{
	for (;;) {
		int fd = accept4(attach_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (n_clients == cap_clients) {
			cap_clients = cap_clients ? 2 * cap_clients : 4;
			clients = xrealloc(clients, (size_t)cap_clients * sizeof *clients);
		}
		int sz = 1 << 20; /* room for bursts; costs nothing until used */
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		clients[n_clients++] = (struct client){.fd = fd};
	}
}

/* client_input reads one packet from client i; false when it is gone. */
static bool client_input(int i)
{
	ssize_t r = recv(clients[i].fd, in_buf, sizeof in_buf, MSG_DONTWAIT);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN;
	if (r == 0) {
		clients[i].input_done = true;
		if (o_stdin && !o_leave_stdin)
			close_stdin();
		return true;
	}
	if (o_stdin && !stdin_closed && in_fd >= 0) {
		in_len = (size_t)r;
		in_off = 0;
	}
	return true;
}

static void flush_stdin(void)
{
	while (in_off < in_len && in_fd >= 0) {
		ssize_t w = write(in_fd, in_buf + in_off, in_len - in_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			in_len = in_off = 0; /* the container closed its stdin */
			return;
		}
		in_off += (size_t)w;
	}
	in_len = in_off = 0;
}

/* ---- output ---- */

/* read_output reads once from *fd; false at EOF (or EIO of a pty). */
static bool read_output(int fd, int stream)
{
	ssize_t r = read(fd, RDATA, PKT_MAX);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (r <= 0) {
		log_output(stream, RDATA, 0, true); /* what was held back */
		return false;
	}
	if (o_exec)
		return true; /* exec -d -t: output is discarded */
	broadcast(stream, (size_t)r);
	log_output(stream, RDATA, (size_t)r, false);
	return true;
}

/* ---- control FIFO ---- */

static void ctl_read(void)
{
	static char line[128];
	static size_t len;
	char buf[256];
	ssize_t r = read(ctl_fd, buf, sizeof buf);
	for (ssize_t i = 0; i < r; i++) {
		if (buf[i] != '\n') {
			if (len < sizeof line - 1)
				line[len++] = buf[i];
			continue;
		}
		line[len] = 0;
		len = 0;
		int type, h, w;
		if (sscanf(line, "%d %d %d", &type, &h, &w) == 3 && type == 1 && o_tty && out_fd >= 0) {
			struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
			ioctl(out_fd, TIOCSWINSZ, &ws);
		}
	}
}

/* ---- children ---- */

static void restore_child_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	signal(SIGPIPE, SIG_DFL);
}

static void close_from(int lowfd)
{
	if (syscall(SYS_close_range, lowfd, ~0U, 0) == 0)
		return;
	for (int fd = lowfd; fd < 1024; fd++)
		close(fd);
}

/* close_inherited closes every descriptor above 2 but the sync pipe. */
static void close_inherited(void)
{
	if (sync_fd > 3)
		for (int fd = 3; fd < sync_fd; fd++)
			close(fd);
	close_from(sync_fd >= 3 ? sync_fd + 1 : 3);
}

/* spawn runs argv with fds 0, 1, 2 = in, out, errfd and nothing else. */
static pid_t spawn(char **argv, int in, int out, int errfd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	restore_child_signals();
	/* Move the three fds above 2 first so dup2 cannot clobber one. */
	int fds[3] = {in, out, errfd};
	for (int i = 0; i < 3; i++)
		fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
	for (int i = 0; i < 3; i++)
		if (fds[i] < 0 || dup2(fds[i], i) < 0)
			_exit(127);
	close_from(3);
	execv(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void remember_reaped(pid_t pid, int status)
{
	if (n_reaped == (int)(sizeof reaped / sizeof reaped[0]))
		n_reaped--; /* forget the newest: the container is found early */
	reaped[n_reaped++] = (struct reaped){pid, status};
}

static bool find_reaped(pid_t pid, int *status)
{
	for (int i = 0; i < n_reaped; i++)
		if (reaped[i].pid == pid) {
			*status = reaped[i].status;
			return true;
		}
	return false;
}

static void drain_signalfd(void)
{
	struct signalfd_siginfo si;
	while (read(sig_fd, &si, sizeof si) > 0)
		;
}

/* wait_runtime waits for pid, reaping others; with a console socket it
 * also receives the pty master the runtime sends. */
/* recv_master reads the runtime's one message on the console connection
 * conn and keeps the descriptor it carries (the pty master) in *master.
 * It returns false while the message has not arrived yet. */
static bool recv_master(int conn, int *master)
{
	char dummy[256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = dummy, .iov_len = sizeof dummy};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t r = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && *master < 0)
		memcpy(master, CMSG_DATA(c), sizeof(int));
	return true;
}

/* wait_runtime waits for the runtime process pid to exit, meanwhile
 * receiving the pty master it sends on console_fd (-1 without a
 * terminal). A runtime may send the master and exit before the monitor
 * has looked: the connection and its message are still queued then, and
 * are read after the exit. Returns the runtime's wait status, or -1. */
static int wait_runtime(pid_t pid, int console_fd, int *master)
{
	int conn = -1;
	int status = -1;
	for (;;) {
		pid_t p;
		bool exited = false;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p == pid) {
				exited = true;
				break;
			}
			remember_reaped(p, status);
		}
		if (!exited && p < 0 && errno == ECHILD)
			return -1;
		struct pollfd pf[3] = {{.fd = sig_fd, .events = POLLIN},
				       {.fd = console_fd, .events = POLLIN},
				       {.fd = conn, .events = POLLIN}};
		if (poll(pf, 3, exited ? 0 : -1) < 0 && errno != EINTR)
			return -1;
		if (pf[0].revents && !exited)
			drain_signalfd(); /* (once exited, main_loop reaps what it signalled) */
		if (pf[1].revents && conn < 0)
			conn = accept4(console_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (conn >= 0 && (pf[2].revents || exited) && recv_master(conn, master))
			close_fd(&conn);
		if (exited) {
			close_fd(&conn);
			return status;
		}
	}
}

/* read_available reads what fd holds now, up to cap bytes. */
static size_t read_available(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	if (fd < 0)
		return 0;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return n;
}

static void cleanup_socket(void)
{
	if (attach_fd >= 0 && sockdir_fd >= 0)
		unlinkat(sockdir_fd, "attach", 0);
	close_fd(&attach_fd);
}

/* fail_create reports a failed create on the sync pipe and exits 1. */
static void fail_create(const char *msg, size_t n) __attribute__((noreturn));
static void fail_create(const char *msg, size_t n)
{
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	sync_report(-1, msg, n);
	cleanup_socket();
	exit(1);
}

static void fail_createf(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail_createf(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fail_create(msg, strlen(msg));
}

static pid_t read_pidfile(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = 0;
	long v = strtol(buf, NULL, 10);
	return v > 0 ? (pid_t)v : -1;
}

static int open_devnull(int flags)
{
	int fd = open("/dev/null", flags | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/null: %s", strerror(errno));
	return fd;
}

/* ---- setup ---- */

static void make_attach_socket(void)
{
	size_t n = strlen(o_sockdir) + strlen(o_uuid) + 2;
	char *dir = xrealloc(NULL, n);
	snprintf(dir, n, "%s/%s", o_sockdir, o_uuid);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		fail_createf("attach socket directory %s: %s", dir, strerror(errno));
	sockdir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sockdir_fd < 0)
		fail_createf("attach socket directory %s: %s", dir, strerror(errno));
	free(dir);
	unlinkat(sockdir_fd, "attach", 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/attach", sockdir_fd);
	attach_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (attach_fd < 0 || bind(attach_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(attach_fd, 16) < 0)
		fail_createf("attach socket: %s", strerror(errno));
}

static void make_ctl_fifo(void)
{
	size_t n = strlen(o_bundle) + 8;
	char *p = xrealloc(NULL, n);
	snprintf(p, n, "%s/ctl", o_bundle);
	unlink(p);
	if (mkfifo(p, 0600) < 0)
		fail_createf("control fifo %s: %s", p, strerror(errno));
	ctl_fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (ctl_fd < 0)
		fail_createf("control fifo %s: %s", p, strerror(errno));
	free(p);
}

/* make_console_socket listens on a socket in a fresh private directory;
 * *path and *dir receive their paths (to remove later). */
static int make_console_socket(char **path, char **dir)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	size_t n = strlen(tmp) + 40;
	*dir = xrealloc(NULL, n);
	snprintf(*dir, n, "%s/berth-monitor-XXXXXX", tmp);
	if (!mkdtemp(*dir))
		fail_createf("console socket directory: %s", strerror(errno));
	*path = xrealloc(NULL, n + 16);
	snprintf(*path, n + 16, "%s/console", *dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", *path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0)
		fail_createf("console socket: %s", strerror(errno));
	return fd;
}

/* run_runtime runs the create or exec subcommand, reports the pid on the
 * sync pipe and returns it, or reports the failure and exits. */
static pid_t run_runtime(void)
{
	int rt_in = -1, rt_out = -1, rt_err = -1;
	int msg_fd = -1; /* where the runtime's error text is read from */
	int console_fd = -1, master = -1;
	char *console_path = NULL, *console_dir = NULL;
	int p[2];

	if (o_tty || o_exec) {
		rt_in = open_devnull(O_RDONLY);
		rt_out = open_devnull(O_WRONLY);
		if (pipe2(p, O_CLOEXEC) < 0)
			fail_createf("pipe: %s", strerror(errno));
		msg_fd = p[0];
		rt_err = p[1];
		if (o_tty)
			console_fd = make_console_socket(&console_path, &console_dir);
	} else {
		if (o_stdin) {
			if (pipe2(p, O_CLOEXEC) < 0)
				fail_createf("pipe: %s", strerror(errno));
			rt_in = p[0];
			in_fd = p[1];
		} else {
			rt_in = open_devnull(O_RDONLY);
		}
		if (pipe2(p, O_CLOEXEC) < 0)
			fail_createf("pipe: %s", strerror(errno));
		out_fd = p[0];
		rt_out = p[1];
		if (pipe2(p, O_CLOEXEC) < 0)
			fail_createf("pipe: %s", strerror(errno));
		err_fd = p[0];
		rt_err = p[1];
		msg_fd = err_fd;
	}

	int argc = 0;
	char **argv = xrealloc(NULL, (size_t)(n_rtargs + 16) * sizeof *argv);
	argv[argc++] = (char *)o_runtime;
	for (int i = 0; i < n_rtargs; i++)
		argv[argc++] = (char *)o_rtargs[i];
	if (o_exec) {
		argv[argc++] = "exec";
		argv[argc++] = "--process";
		argv[argc++] = (char *)o_procspec;
		argv[argc++] = "--detach";
	} else {
		argv[argc++] = "create";
		argv[argc++] = "--bundle";
		argv[argc++] = (char *)o_bundle;
	}
	argv[argc++] = "--pid-file";
	argv[argc++] = (char *)o_pidfile;
	if (console_path) {
		argv[argc++] = "--console-socket";
		argv[argc++] = console_path;
	}
	argv[argc++] = (char *)o_cid;
	argv[argc] = NULL;

	unlink(o_pidfile);
	pid_t pid = spawn(argv, rt_in, rt_out, rt_err);
	free(argv);
	if (pid < 0)
		fail_createf("fork: %s", strerror(errno));
	close(rt_in);
	close(rt_out);
	close(rt_err);
	int status = wait_runtime(pid, console_fd, &master);
	if (console_fd >= 0) {
		close(console_fd);
		unlink(console_path);
		rmdir(console_dir);
		free(console_path);
		free(console_dir);
	}
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *msg = xrealloc(NULL, ERRMSG_MAX);
		size_t n = read_available(msg_fd, msg, ERRMSG_MAX);
		if (n == 0) {
			if (status != -1 && WIFSIGNALED(status))
				n = (size_t)snprintf(msg, ERRMSG_MAX, "%s: killed by signal %d", o_runtime, WTERMSIG(status));
			else if (status != -1)
				n = (size_t)snprintf(msg, ERRMSG_MAX, "%s: exit status %d", o_runtime, WEXITSTATUS(status));
			else
				n = (size_t)snprintf(msg, ERRMSG_MAX, "%s: lost", o_runtime);
		}
		fail_create(msg, n);
	}
	if (msg_fd != err_fd)
		close(msg_fd);
	if (o_tty) {
		if (master < 0)
			fail_createf("%s did not send the terminal over the console socket", o_runtime);
		out_fd = master;
		fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
		if (o_stdin)
			in_fd = master;
	}
	if (out_fd >= 0 && !o_tty)
		fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
	if (err_fd >= 0)
		fcntl(err_fd, F_SETFL, fcntl(err_fd, F_GETFL) | O_NONBLOCK);
	if (in_fd >= 0 && !o_tty)
		fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
	pid_t cpid = read_pidfile(o_pidfile);
	if (cpid <= 0)
		fail_createf("%s: no pid in %s", o_runtime, o_pidfile);
	sync_report(cpid, NULL, 0);
	return cpid;
}

/* ---- exit ---- */

static void write_exit_file(int status)
{
	if (!o_exitdir)
		return;
	int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	size_t n = strlen(o_exitdir) + strlen(o_cid) + 24;
	char *tmp = xrealloc(NULL, n), *dst = xrealloc(NULL, n);
	snprintf(tmp, n, "%s/.%s.XXXXXX", o_exitdir, o_cid);
	snprintf(dst, n, "%s/%s", o_exitdir, o_cid);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && mkdir(o_exitdir, 0700) == 0) {
		/* The exit directory was removed; a failed mkostemp leaves
		 * the template changed. */
		snprintf(tmp, n, "%s/.%s.XXXXXX", o_exitdir, o_cid);
		fd = mkostemp(tmp, O_CLOEXEC);
	}
	if (fd >= 0) {
		char num[16];
		int k = snprintf(num, sizeof num, "%d", code);
		fchmod(fd, 0644);
		if (write_all(fd, num, (size_t)k) == 0 && close(fd) == 0)
			rename(tmp, dst);
		else
			unlink(tmp);
	}
	free(tmp);
	free(dst);
}

static void run_exit_command(void)
{
	char **argv = xrealloc(NULL, (size_t)(n_exitargs + 2) * sizeof *argv);
	argv[0] = (char *)o_exitcmd;
	for (int i = 0; i < n_exitargs; i++)
		argv[i + 1] = (char *)o_exitargs[i];
	argv[n_exitargs + 1] = NULL;
	restore_child_signals();
	close_from(3);
	execv(argv[0], argv);
	exit(1);
}

/* ---- main loop ---- */

static void main_loop(pid_t cpid)
{
	int status = 0;
	bool exited = find_reaped(cpid, &status);
	/* Reap what ended before the loop: its SIGCHLD may already have been
	 * read from the signalfd while the runtime was waited for. */
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		if (p == cpid && !exited) {
			exited = true;
			status = st;
		}
	int64_t drain_deadline = exited ? now_ms() + DRAIN_MS : 0;
	struct pollfd *pf = NULL;
	int cap = 0;

	for (;;) {
		bool outputs_done = (out_fd < 0 || out_eof) && (err_fd < 0 || err_eof);
		if (exited && (outputs_done || now_ms() >= drain_deadline))
			break;
		if (n_clients + 8 > cap) {
			cap = n_clients + 16;
			pf = xrealloc(pf, (size_t)cap * sizeof *pf);
		}
		int n = 0;
		pf[n++] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
		/* Backpressure: no reading while a client has output waiting,
		 * until the container has exited. */
		bool hold = !exited && any_client_backed();
		pf[n++] = (struct pollfd){.fd = out_eof || hold ? -1 : out_fd, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = err_eof || hold ? -1 : err_fd, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = attach_fd, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = ctl_fd, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = in_len ? in_fd : -1, .events = POLLOUT};
		const int base = n;
		for (int i = 0; i < n_clients; i++)
			pf[n++] = (struct pollfd){.fd = clients[i].fd,
						  .events = (short)(((clients[i].input_done || in_len) ? 0 : POLLIN) |
								    (client_backed(&clients[i]) ? POLLOUT : 0))};
		int timeout = -1;
		if (exited) {
			int64_t left = drain_deadline - now_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		int r = poll(pf, (nfds_t)n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (pf[1].revents && !read_output(out_fd, STREAM_STDOUT))
			out_eof = true;
		if (pf[2].revents && !read_output(err_fd, STREAM_STDERR))
			err_eof = true;
		if (pf[5].revents)
			flush_stdin();
		if (pf[4].revents)
			ctl_read();
		/* Clients, from the last: client_drop moves the last one. */
		for (int i = n - base - 1; i >= 0; i--) {
			short ev = pf[base + i].revents;
			if (i >= n_clients || !ev)
				continue;
			bool gone = (ev & (POLLERR | POLLNVAL)) || ((ev & POLLHUP) && !(ev & POLLIN));
			if (!gone && (ev & POLLOUT))
				gone = !client_flush(&clients[i]);
			if (!gone && (ev & POLLIN))
				gone = !client_input(i);
			if (gone) {
				if (o_stdin && !o_leave_stdin && !clients[i].input_done)
					close_stdin();
				client_drop(i);
			} else if (in_len) {
				flush_stdin();
			}
		}
		if (pf[3].revents)
			accept_clients();
		if (pf[0].revents) {
			drain_signalfd();
			while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
				if (p == cpid && !exited) {
					exited = true;
					status = st;
					drain_deadline = now_ms() + DRAIN_MS;
				}
			}
		}
	}
	free(pf);
	if (o_exec)
		exit(0);
	log_output(STREAM_STDOUT, RDATA, 0, true);
	log_output(STREAM_STDERR, RDATA, 0, true);
	write_exit_file(status);
	flush_clients();
	while (n_clients > 0)
		client_drop(n_clients - 1);
	cleanup_socket();
	close_fd(&log_fd);
	if (o_exitcmd)
		run_exit_command();
	exit(0);
}

/* ---- command line ---- */

enum {
	OPT_API = 256, OPT_RTARG, OPT_LOGMAX, OPT_LOGFILES, OPT_EXITDIR, OPT_SOCKDIR, OPT_FULLATTACH,
	OPT_LOGLEVEL, OPT_SYSLOG, OPT_LEAVE, OPT_EXITCMD, OPT_EXITARG, OPT_EXEC, OPT_PROCSPEC, OPT_VERSION,
};

/* MONITOR_VERSION is what --version prints ("berth-monitor version V"):
 * the version of the command line and protocols berth drives. */
#define MONITOR_VERSION "1.0.0"

static const struct option longopts[] = {
	{"api-version", required_argument, NULL, OPT_API},
	{"cid", required_argument, NULL, 'c'},
	{"cuuid", required_argument, NULL, 'u'},
	{"name", required_argument, NULL, 'n'},
	{"runtime", required_argument, NULL, 'r'},
	{"runtime-arg", required_argument, NULL, OPT_RTARG},
	{"bundle", required_argument, NULL, 'b'},
	{"container-pidfile", required_argument, NULL, 'p'},
	{"conmon-pidfile", required_argument, NULL, 'P'},
	{"log-path", required_argument, NULL, 'l'},
	{"log-size-max", required_argument, NULL, OPT_LOGMAX},
	{"log-max-files", required_argument, NULL, OPT_LOGFILES},
	{"exit-dir", required_argument, NULL, OPT_EXITDIR},
	{"socket-dir-path", required_argument, NULL, OPT_SOCKDIR},
	{"full-attach", no_argument, NULL, OPT_FULLATTACH},
	{"log-level", required_argument, NULL, OPT_LOGLEVEL},
	{"syslog", optional_argument, NULL, OPT_SYSLOG},
	{"terminal", no_argument, NULL, 't'},
	{"stdin", no_argument, NULL, 'i'},
	{"leave-stdin-open", no_argument, NULL, OPT_LEAVE},
	{"exit-command", required_argument, NULL, OPT_EXITCMD},
	{"exit-command-arg", required_argument, NULL, OPT_EXITARG},
	{"exec", no_argument, NULL, OPT_EXEC},
	{"exec-process-spec", required_argument, NULL, OPT_PROCSPEC},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

/* push_arg appends arg to the list *v of *n arguments. */
static void push_arg(const char ***v, int *n, const char *arg)
{
	*v = xrealloc(*v, (size_t)(*n + 1) * sizeof **v);
	(*v)[(*n)++] = arg;
}

static long long parse_num(const char *opt, const char *s, long long min)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min)
		die("invalid value %s for --%s", s, opt);
	return v;
}

static void parse_args(int argc, char **argv)
{
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:u:n:r:b:p:P:l:ti", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o_cid = optarg; break;
		case 'u': o_uuid = optarg; break;
		case 'n': break;
		case 'r': o_runtime = optarg; break;
		case 'b': o_bundle = optarg; break;
		case 'p': o_pidfile = optarg; break;
		case 'P': o_monpidfile = optarg; break;
		case 'l': o_log = optarg; break;
		case 't': o_tty = true; break;
		case 'i': o_stdin = true; break;
		case OPT_API: break;
		case OPT_RTARG: push_arg(&o_rtargs, &n_rtargs, optarg); break;
		case OPT_LOGMAX: o_logmax = parse_num("log-size-max", optarg, -1); break;
		case OPT_LOGFILES: o_logfiles = (long)parse_num("log-max-files", optarg, 1); break;
		case OPT_EXITDIR: o_exitdir = optarg; break;
		case OPT_SOCKDIR: o_sockdir = optarg; break;
		case OPT_FULLATTACH: break;
		case OPT_LOGLEVEL: break;
		case OPT_SYSLOG: break;
		case OPT_LEAVE: o_leave_stdin = true; break;
		case OPT_EXITCMD: o_exitcmd = optarg; break;
		case OPT_EXITARG: push_arg(&o_exitargs, &n_exitargs, optarg); break;
		case OPT_EXEC: o_exec = true; break;
		case OPT_PROCSPEC: o_procspec = optarg; break;
		case OPT_VERSION:
			printf("berth-monitor version %s\n", MONITOR_VERSION);
			exit(0);
		case ':': die("option %s needs a value", argv[optind - 1]);
		default: die("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die("unexpected argument %s", argv[optind]);
	if (!o_cid)
		die("-c (container id) is required");
	if (!o_runtime || o_runtime[0] != '/')
		die("-r needs the absolute path of the OCI runtime");
	if (!o_pidfile)
		die("-p (container pid file) is required");
	if (o_exec && !o_procspec)
		die("--exec needs --exec-process-spec");
	if (!o_exec && !o_bundle)
		die("-b (bundle) is required");
	if (!o_uuid)
		o_uuid = o_cid;
	if (!o_sockdir && !o_exec)
		die("--socket-dir-path is required");
	if (o_logmax < 0)
		o_logmax = 0;
	if (strcmp(o_log, "none") == 0 || strcmp(o_log, "none:") == 0 || strncmp(o_log, "passthrough", 11) == 0) {
		if (strncmp(o_log, "passthrough", 11) == 0)
			die("log driver passthrough is not supported");
	} else if (strncmp(o_log, "json-file:", 10) == 0 && o_log[10]) {
		o_logpath = o_log + 10;
	} else if (strncmp(o_log, "k8s-file:", 9) == 0) {
		die("log driver k8s-file is not supported (use json-file:PATH)");
	} else {
		die("unsupported log driver %s (use json-file:PATH or none)", o_log);
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);

	const char *sp = getenv("_OCI_SYNCPIPE");
	if (sp && *sp) {
		sync_fd = (int)parse_num("_OCI_SYNCPIPE", sp, 0);
		if (fcntl(sync_fd, F_SETFD, FD_CLOEXEC) < 0)
			die("sync pipe fd %d: %s", sync_fd, strerror(errno));
	}
	signal(SIGPIPE, SIG_IGN);
	/* Descriptors the caller leaked to us (its shell's, a make jobserver's
	 * pipe …) would otherwise stay open for the container's whole life:
	 * keep only stdio and the sync pipe. */
	close_inherited();

	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	int null = open_devnull(O_RDWR);
	for (int i = 0; i < 3; i++)
		dup2(null, i);
	if (null > 2)
		close(null);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		fail_createf("signalfd: %s", strerror(errno));

	if (o_monpidfile) {
		char num[16];
		int k = snprintf(num, sizeof num, "%d", (int)getpid());
		int fd = open(o_monpidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, num, (size_t)k) < 0)
			fail_createf("monitor pid file %s: %s", o_monpidfile, strerror(errno));
		close(fd);
	}
	if (!o_exec) {
		make_attach_socket();
		make_ctl_fifo();
	}
	if (o_logpath) {
		log_open();
		if (log_fd < 0)
			fail_createf("log %s: %s", o_logpath, strerror(errno));
	}
	pid_t cpid = run_runtime();
	main_loop(cpid);
	return 0;
}
