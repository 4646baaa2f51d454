/*
 * drover-relay's tail diagnostics, off by default: with DROVER_RELAY_STATS=FILE in its
 * environment each thread counts its epoll batches (length, duration) and how long each
 * connection event waited behind the earlier events of its batch, and the main thread rewrites
 * FILE with the totals (one line per thread) at most every second. Off, the cost is one branch
 * per batch and per event.
 */
#define _GNU_SOURCE
#include "relay-stats.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay-core.h"

int relay_stats_on;
static const char *stats_path;

void relay_stats_init(void) {
  const char *p = getenv("DROVER_RELAY_STATS");
  if (p != NULL && *p != '\0') stats_path = p, relay_stats_on = 1;
}

uint64_t relay_stats_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void relay_stats_add(uint64_t *hist, uint64_t value) {
  int k = value == 0 ? 0 : 64 - __builtin_clzll(value);
  if (k >= RELAY_HIST) k = RELAY_HIST - 1;
  __atomic_store_n(&hist[k], hist[k] + 1, __ATOMIC_RELAXED);
}

/* Software receive timestamps on a socket, read by relay_stats_recv. */
void relay_stats_socket(int fd) {
  int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
}

/* recv, and the time the last byte read waited in the socket (TCP gives the timestamp of the
 * last skb of the read), counted per direction. */
ssize_t relay_stats_recv(struct relay_stats *st, int fd, char *buf, size_t len, int up) {
  char cbuf[CMSG_SPACE(sizeof(struct scm_timestamping))];
  struct iovec iov = {buf, len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(fd, &msg, 0);
  if (n <= 0) return n;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPING) continue;
    struct scm_timestamping ts;
    memcpy(&ts, CMSG_DATA(cm), sizeof ts);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t us = ((int64_t)now.tv_sec - ts.ts[0].tv_sec) * 1000000 + (now.tv_nsec - ts.ts[0].tv_nsec) / 1000;
    if (ts.ts[0].tv_sec != 0) relay_stats_add(up ? st->read_delay_up_us : st->read_delay_down_us, us < 0 ? 0 : (uint64_t)us);
  }
  return n;
}

static void print_hist(FILE *f, const char *name, const uint64_t *hist) {
  fprintf(f, " %s", name);
  for (int k = 0; k < RELAY_HIST; k++) fprintf(f, "%c%llu", k ? ',' : '=', (unsigned long long)__atomic_load_n(&hist[k], __ATOMIC_RELAXED));
}

void relay_stats_dump(struct relay_thread *ts, int n) {
  static uint64_t last_ns;
  if (!relay_stats_on) return;
  uint64_t now = relay_stats_ns();
  if (now - last_ns < 1000000000u) return;
  last_ns = now;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", stats_path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) return;
  for (int i = 0; i < n; i++) {
    struct relay_stats *s = &ts[i].st;
    fprintf(f, "thread=%d load=%d wakeups=%llu events=%llu", i, __atomic_load_n(&ts[i].load, __ATOMIC_RELAXED), (unsigned long long)__atomic_load_n(&s->wakeups, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&s->events, __ATOMIC_RELAXED));
    print_hist(f, "batch_len", s->batch_len);
    print_hist(f, "batch_us", s->batch_us);
    print_hist(f, "queued_us", s->queued_us);
    print_hist(f, "read_up_us", s->read_delay_up_us);
    print_hist(f, "read_down_us", s->read_delay_down_us);
    fputc('\n', f);
  }
  fclose(f);
  rename(tmp, stats_path);
}
