/*
 * drover-relay: the proxy's per-connection work in C (docs/DESIGN.md §32, proxy/DESIGN.md
 * "The native relay"). The Node proxy (proxy/tcp-native.ts) stays the control plane: it binds
 * each port, hands the bound socket over fd 3 (its child-process IPC channel), and says per
 * port where connections go (relay-msg.h). The relay listens, accepts, picks an instance,
 * connects, relays both ways, half-closes, replays a first request whose instance went before
 * answering, and tries the next instance when a connect fails. What it does not do — holding,
 * retrying on a timer until the hold deadline — it leaves to Node: the connection is handed
 * back over fd 3, unread, and the uv engine takes it from there.
 *
 *   drover-relay THREADS BUFFER_BYTES CONNECT_TIMEOUT_MS BACKLOG
 *
 * THREADS threads each run their own epoll over every listening socket (EPOLLEXCLUSIVE) and
 * the connections they accepted; the main thread reads fd 3, passes each command to every
 * thread and acknowledges it to Node once all of them applied it. Exit status 64: bad
 * arguments or no fd 3; 65: a message it does not understand (Node starts it again).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay-core.h"
#include "relay-msg.h"

#define IPC_FD 3
#define FAILED_FOR_MS 2000

static struct relay_opts opts;

/* ---------- the main thread: fd 3 ---------- */

struct mport {
  int lfd;
  int listening;
  uint64_t sent_fwd, sent_ref, sent_rep;
};

static struct mport *mports[RELAY_MAX_PORTS];
static struct relay_thread *threads;
static int main_evfd;
static char inbuf[RELAY_MAX_LINE * 4];
static size_t inlen;
static int pending_fds[16];
static int npending_fds;
static char *outbuf;
static size_t outlen, outcap;
static int awaiting_handle_ack;
static uint64_t cmd_ordinal;

struct pending_ack {
  uint64_t ordinal;
  uint32_t seq;
  int close_fd; /* a closed port's listening socket: closed once no thread polls it */
  struct pending_ack *next;
};
static struct pending_ack *acks_head, *acks_tail;

static void die(int status, const char *what) {
  fprintf(stderr, "drover-relay: %s\n", what);
  exit(status);
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
  char line[RELAY_MAX_LINE * 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof line) die(70, "output line too long");
  if (outlen + (size_t)n > outcap) {
    outcap = (outlen + (size_t)n) * 2;
    outbuf = realloc(outbuf, outcap);
    if (outbuf == NULL) die(71, "out of memory");
  }
  memcpy(outbuf + outlen, line, (size_t)n);
  outlen += (size_t)n;
}

static void flush_out(void) {
  while (outlen > 0) {
    ssize_t n = send(IPC_FD, outbuf, outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      exit(0); /* Node is gone */
    }
    memmove(outbuf, outbuf + n, outlen - (size_t)n);
    outlen -= (size_t)n;
  }
}

/* One connection handed to Node: a line with the descriptor (`conn PORT WAITED_MS FORWARDED`,
 * FORWARDED 1 when the relay counted it as forwarded already), then wait for Node's ACK. */
static void send_handback(void) {
  if (awaiting_handle_ack || outlen > 0) return;
  struct handback hb;
  if (!relay_pop_handback(&hb)) return;
  char line[160];
  int n = snprintf(line, sizeof line, "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"d\":\"conn %u %llu %d\"}}\n", hb.port, (unsigned long long)hb.waited_ms, hb.forwarded);
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {line, (size_t)n};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &hb.fd, sizeof(int));
  ssize_t sent;
  do sent = sendmsg(IPC_FD, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  close(hb.fd); /* in flight, Node's now; or lost with Node */
  if (sent < 0) exit(0);
  if (sent < n) {
    outlen = 0;
    out("%.*s", n - (int)sent, line + sent);
  }
  awaiting_handle_ack = 1;
}

static void broadcast(struct relay_cmd *proto, uint32_t seq, int ack, int close_fd) {
  uint64_t k = ++cmd_ordinal;
  proto->ordinal = k;
  for (int i = 0; i < opts.threads; i++) relay_post(&threads[i], proto);
  if (!ack) return;
  struct pending_ack *a = calloc(1, sizeof *a);
  if (a == NULL) die(71, "out of memory");
  a->ordinal = k;
  a->seq = seq;
  a->close_fd = close_fd;
  if (acks_tail) acks_tail->next = a;
  else acks_head = a;
  acks_tail = a;
}

static void release_acks(void) {
  uint64_t done = UINT64_MAX;
  for (int i = 0; i < opts.threads; i++) {
    uint64_t d = __atomic_load_n(&threads[i].done, __ATOMIC_ACQUIRE);
    if (d < done) done = d;
  }
  while (acks_head && acks_head->ordinal <= done) {
    struct pending_ack *a = acks_head;
    if (a->close_fd >= 0) close(a->close_fd);
    out("{\"d\":\"ack %u\"}\n", a->seq);
    acks_head = a->next;
    if (!acks_head) acks_tail = NULL;
    free(a);
  }
}

static void handle_line(const char *line, size_t len) {
  struct relay_msg m;
  const char *why;
  if (relay_parse(line, len, &m, &why) != 0) {
    fprintf(stderr, "drover-relay: refused a control message (%s): %.*s\n", why, (int)(len > 200 ? 200 : len), line);
    exit(65);
  }
  struct relay_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  switch (m.kind) {
  case MSG_HANDLE_ACK:
    if (!awaiting_handle_ack) die(65, "a handle ACK for nothing sent");
    awaiting_handle_ack = 0;
    return;
  case MSG_LISTEN: {
    if (npending_fds == 0) die(65, "listen without a descriptor");
    int fd = pending_fds[0];
    memmove(pending_fds, pending_fds + 1, sizeof(int) * (size_t)--npending_fds);
    struct mport *p = mports[m.id];
    if (p == NULL && (p = mports[m.id] = calloc(1, sizeof *p)) == NULL) die(71, "out of memory");
    if (p->listening) {
      /* the same port again (Node does not reuse ids while one is open): keep the first */
      close(fd);
      out("{\"cmd\":\"NODE_HANDLE_ACK\"}\n{\"d\":\"listened %u 0\"}\n", m.id);
      return;
    }
    out("{\"cmd\":\"NODE_HANDLE_ACK\"}\n");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* accepted sockets inherit it */
    if (relay_stats_on) relay_stats_socket(fd); /* receive timestamps from a connection's first byte: inherited too */
    if (listen(fd, opts.backlog) != 0) {
      out("{\"d\":\"listened %u %d\"}\n", m.id, errno);
      close(fd);
      return;
    }
    p->lfd = fd;
    p->listening = 1;
    cmd.kind = CMD_LISTEN;
    cmd.id = m.id;
    cmd.lfd = fd;
    broadcast(&cmd, 0, 0, -1);
    out("{\"d\":\"listened %u 0\"}\n", m.id);
    return;
  }
  case MSG_ROUTE:
    cmd.kind = CMD_ROUTE;
    cmd.id = m.id;
    cmd.msg = m;
    broadcast(&cmd, m.seq, 1, -1);
    return;
  case MSG_CLOSE: {
    struct mport *p = mports[m.id];
    cmd.kind = CMD_CLOSE;
    cmd.id = m.id;
    cmd.lfd = p && p->listening ? p->lfd : -1;
    if (p) p->listening = 0;
    broadcast(&cmd, m.seq, 1, cmd.lfd);
    return;
  }
  }
}

static void read_ipc(void) {
  char cbuf[CMSG_SPACE(sizeof(int) * 8)];
  struct iovec iov = {inbuf + inlen, sizeof inbuf - inlen};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(IPC_FD, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) exit(0); /* Node closed the channel: it stopped or died */
  if (msg.msg_flags & MSG_CTRUNC) die(65, "too many descriptors at once");
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
      if (npending_fds == (int)(sizeof pending_fds / sizeof pending_fds[0])) die(65, "descriptors without messages");
      pending_fds[npending_fds++] = fd;
    }
  }
  inlen += (size_t)n;
  size_t start = 0;
  for (size_t i = 0; i < inlen; i++) {
    if (inbuf[i] != '\n') continue;
    handle_line(inbuf + start, i - start);
    start = i + 1;
  }
  memmove(inbuf, inbuf + start, inlen - start);
  inlen -= start;
  if (inlen == sizeof inbuf) die(65, "a line longer than any message");
}

/* Totals since start, and per port what Node counts per application (docs/DESIGN.md §25). */
static void stats(void) {
  struct relay_counts c;
  relay_sum_counts(threads, opts.threads, &c);
  static struct relay_counts last;
  static int sent_once;
  char ports[RELAY_MAX_LINE];
  size_t pl = 0;
  for (uint32_t id = 0; id < RELAY_MAX_PORTS && pl + 80 < sizeof ports; id++) {
    struct mport *p = mports[id];
    if (p == NULL) continue;
    uint64_t f = 0, r = 0, rp = 0;
    relay_port_counts(threads, opts.threads, id, &f, &r, &rp);
    if (f == p->sent_fwd && r == p->sent_ref && rp == p->sent_rep) continue;
    pl += (size_t)snprintf(ports + pl, sizeof ports - pl, " %u %llu %llu %llu", id, (unsigned long long)f, (unsigned long long)r, (unsigned long long)rp);
    p->sent_fwd = f, p->sent_ref = r, p->sent_rep = rp;
  }
  if (sent_once && pl == 0 && memcmp(&c, &last, sizeof c) == 0) return;
  sent_once = 1;
  last = c;
  ports[pl] = 0;
  out("{\"d\":\"stats %llu %lld %lld %lld %llu %llu %llu %llu%s\"}\n", (unsigned long long)c.accepted, (long long)c.inbound, (long long)c.outbound, (long long)c.buffered,
      (unsigned long long)c.relay_errors, (unsigned long long)c.relayed_bytes, (unsigned long long)c.lost, (unsigned long long)c.handed_back, ports);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  if (argc != 5) die(64, "usage: drover-relay THREADS BUFFER_BYTES CONNECT_TIMEOUT_MS BACKLOG (fd 3: the IPC channel)");
  opts.threads = atoi(argv[1]);
  opts.bufsz = (size_t)atol(argv[2]);
  opts.connect_timeout_ms = atoi(argv[3]);
  opts.backlog = atoi(argv[4]);
  opts.failed_for_ms = FAILED_FOR_MS;
  if (opts.threads < 1 || opts.threads > 64 || opts.bufsz < 1024 || opts.bufsz > 4 << 20 || opts.connect_timeout_ms < 1 || opts.backlog < 1) die(64, "bad arguments");
  int type;
  socklen_t tl = sizeof type;
  if (getsockopt(IPC_FD, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) die(64, "no IPC channel on fd 3");
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) exit(0);
  signal(SIGPIPE, SIG_IGN);
  main_evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (main_evfd < 0) die(71, "eventfd");
  relay_stats_init();
  threads = relay_start_threads(&opts, main_evfd);
  out("{\"d\":\"ready\"}\n");
  uint64_t next_stats = now_ms() + 100;
  for (;;) {
    flush_out();
    send_handback();
    struct pollfd pf[2] = {{IPC_FD, (short)(POLLIN | (outlen > 0 ? POLLOUT : 0)), 0}, {main_evfd, POLLIN, 0}};
    uint64_t now = now_ms();
    int wait = now >= next_stats ? 0 : (int)(next_stats - now);
    int r = poll(pf, 2, wait);
    if (r < 0 && errno != EINTR) die(71, "poll");
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) read_ipc();
    if (pf[1].revents & POLLIN) {
      uint64_t v;
      if (read(main_evfd, &v, sizeof v) < 0 && errno != EAGAIN) die(71, "eventfd read");
    }
    release_acks();
    if (now_ms() >= next_stats) {
      stats();
      relay_stats_dump(threads, opts.threads);
      next_stats = now_ms() + 100;
    }
  }
}
