/*
 * drover-relay's threads. Each owns an epoll set with every listening socket (EPOLLEXCLUSIVE,
 * level-triggered: the kernel wakes one thread per new connection) and the connections it
 * owns (edge-triggered, registered once, never modified: two epoll_ctl per connection, the
 * close removes them). The thread that accepts gives a connection to the least loaded thread
 * when its own load is higher by GIVE_MARGIN, as HAProxy does: the kernel wakes whichever thread
 * waits, and one woken thread accepting a burst of 50 kept-alive clients would otherwise serve
 * them all while the other idles. A connection's two directions share one event handler that moves both
 * until each waits on a read or a write; one fixed buffer per direction, so a slow reader
 * stops the other side being read (backpressure) and memory is bounded.
 *
 * A thread keeps its own copy of every port's route, given by the main thread in order; a
 * route change is acknowledged to Node only once every thread applied it.
 */
#define _GNU_SOURCE
#include "relay-core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAG_CLIENT 0u
#define TAG_BACKEND 1u
#define TAG_LISTENER 2u
#define TAG_WAKE 3u
#define MAX_REPLAYS 2
#define GIVE_MARGIN 2
#define ACCEPT_PAUSE_MS 100

enum { C_CONNECTING = 1, C_RELAYING, C_DEAD };

struct dir {
  char *buf;
  uint32_t len, off;
  uint8_t eof, shut;
  /* The last read was short: the socket had nothing more then, and anything that comes later
   * raises a new edge. Reading again before that edge would only get EAGAIN (a syscall per
   * direction per connection saved). `hup`: the peer's FIN or an error was seen, read to the end. */
  uint8_t drained, hup;
};

struct relay_conn {
  int cfd, bfd;
  uint8_t state, answered, replays, replay;
  struct relay_port *port;
  struct relay_addr target;
  struct dir up, down; /* client → backend, backend → client */
  char *kept; /* the client's bytes until the backend's first byte (replay) */
  int32_t kept_len; /* -1: outgrew the buffer */
  uint64_t accepted_ms, deadline_ms;
  struct relay_conn *tprev, *tnext, *pprev, *pnext, *dnext;
};

struct relay_port {
  uint32_t id;
  int lfd, listening;
  int forward, replay, ntargets, nkeep;
  struct relay_addr targets[RELAY_MAX_TARGETS];
  uint64_t failed_at[RELAY_MAX_TARGETS];
  int paused; /* out of this thread's epoll set until resume_ms (EMFILE/ENFILE) */
  struct relay_conn *conns;
  uint64_t fwd, ref, rep; /* read by the main thread */
};

static struct relay_opts opts;
static struct relay_thread *all_threads;
/* Each port's round robin position, shared by the threads (atomic): one sequence for the
 * whole process, so kept-alive clients spread evenly over the instances. */
static unsigned rr_next[RELAY_MAX_PORTS];
static pthread_mutex_t hb_mu = PTHREAD_MUTEX_INITIALIZER;
static struct handback *hb_q;
static size_t hb_len, hb_cap, hb_head;

#define BUMP(x, n) __atomic_store_n(&(x), (x) + (n), __ATOMIC_RELAXED)
#define READ(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void oom(void) {
  fputs("drover-relay: out of memory\n", stderr);
  exit(71);
}

static char *take_buf(struct relay_thread *t) {
  if (t->nbufs > 0) return t->bufs[--t->nbufs];
  char *b = malloc(opts.bufsz);
  if (b == NULL) oom();
  return b;
}

static void give_buf(struct relay_thread *t, char *b) {
  if (b == NULL) return;
  if (t->nbufs < 1024) t->bufs[t->nbufs++] = b;
  else free(b);
}

static int same(struct relay_addr a, struct relay_addr b) {
  return a.ip == b.ip && a.port == b.port;
}

/* ---------- balancing (proxy/balance.ts): round robin, a target whose connect failed skipped for 2 s ---------- */

static int target_index(struct relay_port *p, struct relay_addr a) {
  for (int i = 0; i < p->ntargets; i++)
    if (same(p->targets[i], a)) return i;
  return -1;
}

static int pick(struct relay_port *p, uint64_t now, const struct relay_addr *except, struct relay_addr *out) {
  int n = p->ntargets;
  if (n == 0) return -1;
  unsigned *next = &rr_next[p->id];
  unsigned base = __atomic_load_n(next, __ATOMIC_RELAXED);
  for (;;) {
    int chosen = -1, oldest = -1;
    unsigned step = 1;
    uint64_t oldest_at = UINT64_MAX;
    for (int k = 0; k < n && chosen < 0; k++) {
      int i = (int)((base + (unsigned)k) % (unsigned)n);
      uint64_t at = except && same(p->targets[i], *except) ? now : p->failed_at[i];
      if (at == 0 || now - at >= (uint64_t)opts.failed_for_ms) chosen = i, step = (unsigned)k + 1;
      else if (at < oldest_at) oldest = i, oldest_at = at;
    }
    /* Past the chosen one (a skipped target is not given the next turn twice); a thread that
     * moved the position meanwhile makes this one look again. */
    if (__atomic_compare_exchange_n(next, &base, base + step, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      *out = p->targets[chosen >= 0 ? chosen : oldest];
      return 0;
    }
  }
}

static int has_alternative(struct relay_port *p, struct relay_addr except, uint64_t now) {
  for (int i = 0; i < p->ntargets; i++)
    if (!same(p->targets[i], except) && (p->failed_at[i] == 0 || now - p->failed_at[i] >= (uint64_t)opts.failed_for_ms)) return 1;
  return 0;
}

static void mark_failed(struct relay_port *p, struct relay_addr a, uint64_t now) {
  int i = target_index(p, a);
  if (i >= 0) p->failed_at[i] = now ? now : 1;
}

/* ---------- replay (proxy/replay.ts) ---------- */

int relay_replay_ok(const char *sent, int32_t len, int replays) {
  static const char *const idempotent[] = {"GET ", "HEAD ", "OPTIONS ", "TRACE ", "PUT ", "DELETE "};
  if (replays >= MAX_REPLAYS || len < 0) return 0;
  if (len == 0) return 1;
  for (size_t m = 0; m < sizeof idempotent / sizeof idempotent[0]; m++) {
    size_t n = strlen(idempotent[m]);
    if ((size_t)len < n) n = (size_t)len;
    if (memcmp(sent, idempotent[m], n) == 0) return 1;
  }
  return 0;
}

/* ---------- connection lifecycle ---------- */

static void timeq_remove(struct relay_thread *t, struct relay_conn *c) {
  if (c->deadline_ms == 0) return;
  if (c->tprev) c->tprev->tnext = c->tnext;
  else t->timeq_head = c->tnext;
  if (c->tnext) c->tnext->tprev = c->tprev;
  else t->timeq_tail = c->tprev;
  c->tprev = c->tnext = NULL;
  c->deadline_ms = 0;
}

static void timeq_add(struct relay_thread *t, struct relay_conn *c, uint64_t deadline) {
  c->deadline_ms = deadline; /* every connect has the same timeout: appending keeps the order */
  c->tprev = t->timeq_tail;
  c->tnext = NULL;
  if (t->timeq_tail) t->timeq_tail->tnext = c;
  else t->timeq_head = c;
  t->timeq_tail = c;
}

static void close_backend(struct relay_thread *t, struct relay_conn *c) {
  if (c->bfd < 0) return;
  close(c->bfd);
  c->bfd = -1;
  BUMP(t->c.outbound, -1);
}

static void reset_on_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* Ends the connection; with `reset` both sides get a reset, so an error is not taken for an end. */
static void conn_end(struct relay_thread *t, struct relay_conn *c, int reset, int keep_client) {
  if (c->state == C_DEAD) return;
  timeq_remove(t, c);
  if (reset) {
    reset_on_close(c->cfd);
    if (c->bfd >= 0) reset_on_close(c->bfd);
  }
  if (!keep_client) close(c->cfd);
  BUMP(t->c.inbound, -1);
  __atomic_sub_fetch(&t->load, 1, __ATOMIC_RELAXED);
  close_backend(t, c);
  BUMP(t->c.buffered, -(int64_t)((c->up.len - c->up.off) + (c->down.len - c->down.off)));
  c->state = C_DEAD;
  if (c->pprev) c->pprev->pnext = c->pnext;
  else c->port->conns = c->pnext;
  if (c->pnext) c->pnext->pprev = c->pprev;
  give_buf(t, c->up.buf);
  give_buf(t, c->down.buf);
  give_buf(t, c->kept);
  c->up.buf = c->down.buf = c->kept = NULL;
  c->dnext = t->dead; /* freed after this batch of events: a later event may name it */
  t->dead = c;
}

static void conn_close(struct relay_thread *t, struct relay_conn *c, int reset) {
  conn_end(t, c, reset, 0);
}

static void handback(struct relay_thread *t, struct relay_conn *c, int forwarded) {
  epoll_ctl(t->ep, EPOLL_CTL_DEL, c->cfd, NULL); /* Node holds the file now: no more events here */
  pthread_mutex_lock(&hb_mu);
  if (hb_len - hb_head == hb_cap || hb_len == hb_cap) {
    if (hb_head > 0) {
      memmove(hb_q, hb_q + hb_head, (hb_len - hb_head) * sizeof *hb_q);
      hb_len -= hb_head;
      hb_head = 0;
    }
    if (hb_len == hb_cap) {
      hb_cap = hb_cap ? hb_cap * 2 : 64;
      hb_q = realloc(hb_q, hb_cap * sizeof *hb_q);
      if (hb_q == NULL) oom();
    }
  }
  hb_q[hb_len++] = (struct handback){c->cfd, c->port->id, now_ms() - c->accepted_ms, forwarded};
  pthread_mutex_unlock(&hb_mu);
  BUMP(t->c.handed_back, 1);
  uint64_t one = 1;
  if (write(t->main_evfd, &one, sizeof one) < 0) { /* a full counter still wakes the main thread */
  }
  conn_end(t, c, 0, 1); /* the main thread sends the descriptor, then closes it */
}

int relay_pop_handback(struct handback *out) {
  int got = 0;
  pthread_mutex_lock(&hb_mu);
  if (hb_head < hb_len) {
    *out = hb_q[hb_head++];
    got = 1;
    if (hb_head == hb_len) hb_head = hb_len = 0;
  }
  pthread_mutex_unlock(&hb_mu);
  return got;
}

static void start_connect(struct relay_thread *t, struct relay_conn *c, uint64_t now);
static void pause_listener(struct relay_thread *t, struct relay_port *p);

static int retryable(int err) {
  return err == ECONNREFUSED || err == ECONNRESET || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH || err == EADDRNOTAVAIL || err == ECONNABORTED;
}

/* The next instance, when one has not failed lately; else Node retries it on its timer. */
static void connect_failed(struct relay_thread *t, struct relay_conn *c, int err, uint64_t now) {
  timeq_remove(t, c);
  close_backend(t, c);
  struct relay_port *p = c->port;
  mark_failed(p, c->target, now);
  if (retryable(err) && p->forward && has_alternative(p, c->target, now)) {
    struct relay_addr failed = c->target;
    pick(p, now, &failed, &c->target);
    start_connect(t, c, now);
    return;
  }
  if (!retryable(err) || c->kept_len != 0) {
    /* Not retryable, or the client's first bytes were read already and every instance failed. */
    BUMP(p->ref, 1);
    conn_close(t, c, 0);
    return;
  }
  handback(t, c, 1);
}

static int pump(struct relay_thread *t, struct relay_conn *c);

static void connected(struct relay_thread *t, struct relay_conn *c) {
  timeq_remove(t, c);
  c->state = C_RELAYING;
  if (c->replays > 0 && c->kept_len > 0) {
    /* A replay: what the client sent goes to the new instance first (it is all in `kept`). */
    memcpy(c->up.buf, c->kept, (size_t)c->kept_len);
    c->up.len = (uint32_t)c->kept_len;
    c->up.off = 0;
    BUMP(t->c.buffered, c->kept_len);
  }
  pump(t, c);
}

static void start_connect(struct relay_thread *t, struct relay_conn *c, uint64_t now) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 && c->kept_len == 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
    /* Out of descriptors, nothing read from the client yet: Node (its own process and limit)
     * retries it on its timer, and this thread stops accepting for a moment. */
    pause_listener(t, c->port);
    handback(t, c, 1);
    return;
  }
  if (fd < 0) {
    BUMP(c->port->ref, 1);
    conn_close(t, c, 0);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (relay_stats_on) relay_stats_socket(fd);
  c->bfd = fd;
  BUMP(t->c.outbound, 1);
  c->state = C_CONNECTING;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->target.port), .sin_addr = {c->target.ip}};
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  if (rc != 0 && errno != EINPROGRESS) {
    connect_failed(t, c, errno, now);
    return;
  }
  /* Registered after connect: a socket not yet connecting polls as hung up. An edge that came
   * in between is reported at once (epoll polls a descriptor when it is added). */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data = {.u64 = (uint64_t)(uintptr_t)c | TAG_BACKEND}};
  if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    connect_failed(t, c, errno, now);
    return;
  }
  if (rc == 0) {
    connected(t, c);
    return;
  }
  timeq_add(t, c, now + (uint64_t)opts.connect_timeout_ms);
}

/* The instance went before answering: another gets what the client sent, when that is safe. */
static void lost(struct relay_thread *t, struct relay_conn *c, int eof) {
  struct relay_port *p = c->port;
  uint64_t now = now_ms();
  BUMP(t->c.lost, 1);
  if (!eof) mark_failed(p, c->target, now); /* a clean close alone may be the instance's own choice */
  if (!relay_replay_ok(c->kept, c->kept_len, c->replays) || !p->forward || p->ntargets == 0) {
    BUMP(p->ref, 1);
    conn_close(t, c, 0);
    return;
  }
  BUMP(p->rep, 1);
  c->replays++;
  close_backend(t, c);
  BUMP(t->c.buffered, -(int64_t)((c->up.len - c->up.off) + (c->down.len - c->down.off)));
  c->up.len = c->up.off = c->down.len = c->down.off = 0;
  c->up.shut = 0; /* the client's FIN, if read, goes to the new instance after the kept bytes */
  c->up.drained = 0;
  c->down.eof = c->down.shut = c->down.drained = c->down.hup = 0;
  struct relay_addr was = c->target;
  pick(p, now, &was, &c->target);
  start_connect(t, c, now);
}

/* One direction until it waits. 0: go on; -1: the connection ended (do not touch it). */
static int move(struct relay_thread *t, struct relay_conn *c, struct dir *d, int from, int to, int up) {
  struct dir *other = up ? &c->down : &c->up;
  for (;;) {
    while (d->off < d->len) {
      ssize_t n = send(to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        if (up && c->replay && !c->answered) {
          lost(t, c, 0);
          return -1;
        }
        BUMP(t->c.relay_errors, 1);
        conn_close(t, c, 1);
        return -1;
      }
      d->off += (uint32_t)n;
      BUMP(t->c.relayed_bytes, (uint64_t)n);
      BUMP(t->c.buffered, -n);
    }
    d->off = d->len = 0;
    if (d->eof) {
      if (d->shut) return 0;
      if (other->eof && other->off == other->len) {
        /* Both FINs read and everything handed to the kernel: close both now (it still sends
         * what is queued, then the FIN) instead of a second shutdown. */
        conn_close(t, c, 0);
        return -1;
      }
      shutdown(to, SHUT_WR);
      d->shut = 1;
      return 0;
    }
    if (d->drained && !d->hup) return 0;
    ssize_t n = relay_stats_on ? relay_stats_recv(&t->st, from, d->buf, opts.bufsz, up) : recv(from, d->buf, opts.bufsz, 0);
    if (n > 0) {
      d->drained = (size_t)n < opts.bufsz;
      if (up) {
        if (c->kept != NULL) {
          if (c->kept_len + n > (ssize_t)opts.bufsz) {
            give_buf(t, c->kept);
            c->kept = NULL;
            c->kept_len = -1;
          } else {
            memcpy(c->kept + c->kept_len, d->buf, (size_t)n);
            c->kept_len += (int32_t)n;
          }
        }
      } else if (!c->answered) {
        c->answered = 1;
        give_buf(t, c->kept);
        c->kept = NULL;
      }
      d->len = (uint32_t)n;
      BUMP(t->c.buffered, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    if (!up && c->replay && !c->answered) {
      lost(t, c, n == 0);
      return -1;
    }
    if (n < 0) {
      BUMP(t->c.relay_errors, 1);
      conn_close(t, c, 1);
      return -1;
    }
    d->eof = 1;
  }
}

static int pump(struct relay_thread *t, struct relay_conn *c) {
  if (move(t, c, &c->up, c->cfd, c->bfd, 1) < 0) return -1;
  if (c->state != C_RELAYING) return -1; /* replaced by a replay's connect */
  return move(t, c, &c->down, c->bfd, c->cfd, 0);
}

/* A connection this thread owns from now: accepted here, or given by the thread that accepted it. */
static void adopt(struct relay_thread *t, struct relay_port *p, int fd, uint64_t accepted_ms) {
  BUMP(t->c.inbound, 1);
  struct relay_conn *c = t->free_conns;
  if (c) t->free_conns = c->dnext;
  else if ((c = malloc(sizeof *c)) == NULL) oom();
  memset(c, 0, sizeof *c);
  c->cfd = fd;
  c->bfd = -1;
  c->port = p;
  c->accepted_ms = accepted_ms;
  c->pnext = p->conns;
  if (p->conns) p->conns->pprev = c;
  p->conns = c;
  if (!p->forward) {
    c->state = C_CONNECTING;
    handback(t, c, 0);
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data = {.u64 = (uint64_t)(uintptr_t)c | TAG_CLIENT}};
  if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    c->state = C_CONNECTING;
    conn_close(t, c, 1);
    return;
  }
  BUMP(p->fwd, 1);
  c->replay = (uint8_t)p->replay;
  c->up.buf = take_buf(t);
  c->down.buf = take_buf(t);
  if (c->replay) c->kept = take_buf(t);
  uint64_t now = now_ms();
  pick(p, now, NULL, &c->target);
  start_connect(t, c, now);
}

/* The thread to own a new connection: this one, unless another carries GIVE_MARGIN fewer. */
static struct relay_thread *least_loaded(struct relay_thread *t) {
  int mine = __atomic_load_n(&t->load, __ATOMIC_RELAXED), best_load = mine;
  struct relay_thread *best = t;
  for (int i = 0; i < opts.threads; i++) {
    int l = __atomic_load_n(&all_threads[i].load, __ATOMIC_RELAXED);
    if (l < best_load) best = &all_threads[i], best_load = l;
  }
  return best_load + GIVE_MARGIN <= mine ? best : t;
}

static void give(struct relay_thread *to, uint32_t port, int fd, uint64_t accepted_ms) {
  pthread_mutex_lock(&to->mu);
  if (to->ngiven == to->given_cap) {
    to->given_cap = to->given_cap ? to->given_cap * 2 : 64;
    if ((to->given = realloc(to->given, to->given_cap * sizeof *to->given)) == NULL) oom();
  }
  to->given[to->ngiven++] = (struct relay_given){fd, port, accepted_ms};
  pthread_mutex_unlock(&to->mu);
  uint64_t one = 1;
  if (write(to->evfd, &one, sizeof one) < 0) { /* a full counter still wakes it */
  }
}

/* Out of descriptors (EMFILE, ENFILE) or memory: the listener leaves this thread's epoll set for
 * ACCEPT_PAUSE_MS instead of waking it again at once (level-triggered) while nothing can be
 * accepted; the connections wait in the kernel's queue meanwhile, as under HAProxy. */
static void pause_listener(struct relay_thread *t, struct relay_port *p) {
  if (p->paused) return;
  epoll_ctl(t->ep, EPOLL_CTL_DEL, p->lfd, NULL);
  p->paused = 1;
  if (t->resume_ms == 0) t->resume_ms = now_ms() + ACCEPT_PAUSE_MS;
}

static void listen_on(struct relay_thread *t, struct relay_port *p) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data = {.u64 = (uint64_t)(uintptr_t)p | TAG_LISTENER}};
  epoll_ctl(t->ep, EPOLL_CTL_ADD, p->lfd, &ev);
}

static void resume_listeners(struct relay_thread *t) {
  t->resume_ms = 0;
  for (uint32_t id = 0; id < RELAY_MAX_PORTS; id++) {
    struct relay_port *p = t->ports[id];
    if (p == NULL || !p->paused) continue;
    p->paused = 0;
    if (p->listening) listen_on(t, p);
  }
}

static void on_accept(struct relay_thread *t, struct relay_port *p) {
  for (int k = 0; k < 64; k++) {
    int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) pause_listener(t, p);
      if (err == ECONNABORTED || err == EINTR) continue; /* that one is gone; the next may be there */
      return; /* EAGAIN: nothing left, or another thread took it */
    }
    BUMP(t->c.accepted, 1);
    uint64_t now = now_ms();
    struct relay_thread *to = p->forward ? least_loaded(t) : t; /* a hold goes to Node from here */
    __atomic_add_fetch(&to->load, 1, __ATOMIC_RELAXED);
    if (to == t) adopt(t, p, fd, now);
    else give(to, p->id, fd, now);
  }
}

static void on_conn(struct relay_thread *t, struct relay_conn *c, int backend, uint32_t events) {
  if (c->state == C_DEAD) return;
  struct dir *from = backend ? &c->down : &c->up; /* the direction that reads this socket */
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) from->drained = 0;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) from->hup = 1;
  if (c->state == C_CONNECTING) {
    if (!backend) return; /* the client's bytes wait in the kernel until the backend is there */
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t l = sizeof err;
      getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &l);
      connect_failed(t, c, err ? err : ECONNREFUSED, now_ms());
      return;
    }
    if (events & EPOLLOUT) connected(t, c);
    return;
  }
  pump(t, c);
}

/* ---------- commands from the main thread ---------- */

static struct relay_port *port_of(struct relay_thread *t, uint32_t id) {
  struct relay_port *p = t->ports[id];
  if (p == NULL) {
    if ((p = calloc(1, sizeof *p)) == NULL) oom();
    p->id = id;
    p->lfd = -1;
    __atomic_store_n(&t->ports[id], p, __ATOMIC_RELEASE); /* the main thread reads its counters */
  }
  return p;
}

static void apply(struct relay_thread *t, struct relay_cmd *cmd) {
  struct relay_port *p = port_of(t, cmd->id);
  if (cmd->kind == CMD_LISTEN) {
    p->lfd = cmd->lfd;
    p->listening = 1;
    p->paused = 0;
    listen_on(t, p);
  } else if (cmd->kind == CMD_CLOSE) {
    if (p->listening && !p->paused) epoll_ctl(t->ep, EPOLL_CTL_DEL, p->lfd, NULL);
    p->listening = 0;
    p->paused = 0;
  } else {
    struct relay_msg *m = &cmd->msg;
    uint64_t failed[RELAY_MAX_TARGETS] = {0};
    for (int i = 0; i < m->ntargets; i++) {
      int j = target_index(p, m->targets[i]);
      if (j >= 0) failed[i] = p->failed_at[j];
    }
    p->forward = m->forward;
    p->replay = m->replay;
    p->ntargets = m->ntargets;
    memcpy(p->targets, m->targets, sizeof(struct relay_addr) * (size_t)m->ntargets);
    memcpy(p->failed_at, failed, sizeof failed);
    if (m->nkeep >= 0) {
      /* cutStale (proxy/DESIGN.md): relays to a target the route no longer leads to end now */
      for (struct relay_conn *c = p->conns, *next; c; c = next) {
        next = c->pnext;
        int keep = 0;
        for (int i = 0; i < m->nkeep; i++) keep |= same(m->keep[i], c->target);
        if (!keep) conn_close(t, c, 0);
      }
    }
  }
}

/* Connections other threads accepted for this one. */
static void take_given(struct relay_thread *t) {
  struct relay_given batch[64];
  for (;;) {
    pthread_mutex_lock(&t->mu);
    size_t n = t->ngiven < 64 ? t->ngiven : 64;
    memcpy(batch, t->given, n * sizeof *batch);
    memmove(t->given, t->given + n, (t->ngiven - n) * sizeof *batch);
    t->ngiven -= n;
    pthread_mutex_unlock(&t->mu);
    if (n == 0) return;
    for (size_t i = 0; i < n; i++) adopt(t, port_of(t, batch[i].port), batch[i].fd, batch[i].accepted_ms);
  }
}

static void drain_commands(struct relay_thread *t) {
  uint64_t v;
  if (read(t->evfd, &v, sizeof v) < 0) { /* EAGAIN: nothing new */
  }
  take_given(t);
  for (;;) {
    pthread_mutex_lock(&t->mu);
    struct relay_cmd *cmd = t->cmd_head;
    if (cmd) {
      t->cmd_head = cmd->next;
      if (!t->cmd_head) t->cmd_tail = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    if (!cmd) return;
    apply(t, cmd);
    uint64_t k = cmd->ordinal;
    free(cmd);
    /* The main thread acknowledges once every thread is done (and then closes a closed port). */
    __atomic_store_n(&t->done, k, __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (write(t->main_evfd, &one, sizeof one) < 0) {
    }
  }
}

void relay_post(struct relay_thread *t, const struct relay_cmd *cmd) {
  struct relay_cmd *copy = malloc(sizeof *copy);
  if (copy == NULL) oom();
  *copy = *cmd;
  copy->next = NULL;
  pthread_mutex_lock(&t->mu);
  if (t->cmd_tail) t->cmd_tail->next = copy;
  else t->cmd_head = copy;
  t->cmd_tail = copy;
  pthread_mutex_unlock(&t->mu);
  uint64_t one = 1;
  if (write(t->evfd, &one, sizeof one) < 0) {
  }
}

static void *run(void *arg) {
  struct relay_thread *t = arg;
  struct epoll_event evs[128];
  for (;;) {
    int wait = -1;
    if (t->timeq_head || t->resume_ms) {
      uint64_t now = now_ms(), at = t->timeq_head ? t->timeq_head->deadline_ms : UINT64_MAX;
      if (t->resume_ms && t->resume_ms < at) at = t->resume_ms;
      wait = at <= now ? 0 : (int)(at - now);
    }
    int n = epoll_wait(t->ep, evs, 128, wait);
    uint64_t t0 = relay_stats_on && n > 0 ? relay_stats_ns() : 0;
    for (int i = 0; i < n; i++) {
      uint64_t v = evs[i].data.u64;
      unsigned tag = (unsigned)(v & 3u);
      void *ptr = (void *)(uintptr_t)(v & ~(uint64_t)3u);
      if (t0 && (tag == TAG_CLIENT || tag == TAG_BACKEND)) relay_stats_add(t->st.queued_us, (relay_stats_ns() - t0) / 1000);
      if (tag == TAG_WAKE) drain_commands(t);
      else if (tag == TAG_LISTENER) {
        struct relay_port *p = ptr;
        if (p->listening) on_accept(t, p);
      } else
        on_conn(t, ptr, tag == TAG_BACKEND, evs[i].events);
    }
    if (t0) {
      relay_stats_add(t->st.batch_len, (uint64_t)n);
      relay_stats_add(t->st.batch_us, (relay_stats_ns() - t0) / 1000);
      BUMP(t->st.wakeups, 1);
      BUMP(t->st.events, (uint64_t)n);
    }
    if (t->timeq_head) {
      uint64_t now = now_ms();
      while (t->timeq_head && t->timeq_head->deadline_ms <= now) connect_failed(t, t->timeq_head, ETIMEDOUT, now);
    }
    if (t->resume_ms && now_ms() >= t->resume_ms) resume_listeners(t);
    while (t->dead) {
      struct relay_conn *c = t->dead;
      t->dead = c->dnext;
      c->dnext = t->free_conns;
      t->free_conns = c;
    }
  }
  return NULL;
}

struct relay_thread *relay_start_threads(const struct relay_opts *o, int main_evfd) {
  opts = *o;
  struct relay_thread *ts = calloc((size_t)o->threads, sizeof *ts);
  if (ts == NULL) oom();
  all_threads = ts;
  for (int i = 0; i < o->threads; i++) {
    struct relay_thread *t = &ts[i];
    t->index = i;
    t->main_evfd = main_evfd;
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->ports = calloc(RELAY_MAX_PORTS, sizeof *t->ports);
    t->bufs = calloc(1024, sizeof *t->bufs);
    if (t->ep < 0 || t->evfd < 0 || !t->ports || !t->bufs) oom();
    pthread_mutex_init(&t->mu, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data = {.u64 = TAG_WAKE}};
    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->evfd, &ev);
    if (pthread_create(&t->tid, NULL, run, t) != 0) oom();
  }
  return ts;
}

void relay_sum_counts(struct relay_thread *ts, int n, struct relay_counts *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < n; i++) {
    struct relay_counts *c = &ts[i].c;
    out->accepted += READ(c->accepted);
    out->inbound += READ(c->inbound);
    out->outbound += READ(c->outbound);
    out->buffered += READ(c->buffered);
    out->relay_errors += READ(c->relay_errors);
    out->relayed_bytes += READ(c->relayed_bytes);
    out->lost += READ(c->lost);
    out->handed_back += READ(c->handed_back);
  }
}

void relay_port_counts(struct relay_thread *ts, int n, uint32_t id, uint64_t *fwd, uint64_t *ref, uint64_t *rep) {
  for (int i = 0; i < n; i++) {
    struct relay_port *p = __atomic_load_n(&ts[i].ports[id], __ATOMIC_ACQUIRE);
    if (p == NULL) continue;
    *fwd += READ(p->fwd);
    *ref += READ(p->ref);
    *rep += READ(p->rep);
  }
}
