/* drover-relay's threads: accept, connect, relay, replay (relay-core.c). */
#ifndef DROVER_RELAY_CORE_H
#define DROVER_RELAY_CORE_H

#include <pthread.h>
#include <stdint.h>

#include "relay-msg.h"
#include "relay-stats.h"

struct relay_opts {
  int threads;
  size_t bufsz;
  int connect_timeout_ms;
  int backlog;
  int failed_for_ms;
};

enum relay_cmd_kind { CMD_LISTEN = 1, CMD_ROUTE, CMD_CLOSE };

struct relay_cmd {
  enum relay_cmd_kind kind;
  uint32_t id;
  int lfd;
  uint64_t ordinal;
  struct relay_msg msg;
  struct relay_cmd *next;
};

/* A connection the relay gives to Node, unread: held, or no instance answered its connect. */
struct handback {
  int fd;
  uint32_t port;
  uint64_t waited_ms;
  int forwarded; /* 1: counted as forwarded already (every instance refused its connect) */
};

/* Counters one thread writes and the main thread reads (relaxed atomics). */
struct relay_counts {
  uint64_t accepted;
  int64_t inbound, outbound, buffered;
  uint64_t relay_errors, relayed_bytes, lost, handed_back;
};

struct relay_port;
struct relay_conn;

/* A connection one thread accepted for another, less loaded one (relay-core.c, on_accept). */
struct relay_given {
  int fd;
  uint32_t port;
  uint64_t accepted_ms;
};

struct relay_thread {
  int index;
  /* Connections this thread owns or was given and has not taken yet (atomic: others read it to
   * pick the least loaded thread, and add to it when they give it one). */
  int load;
  int ep, evfd, main_evfd;
  pthread_t tid;
  pthread_mutex_t mu;
  struct relay_cmd *cmd_head, *cmd_tail;
  struct relay_given *given; /* under mu */
  size_t ngiven, given_cap;
  uint64_t resume_ms; /* != 0: listeners paused after EMFILE/ENFILE go back into the set then */
  uint64_t done; /* ordinal of the last command applied */
  struct relay_port **ports;
  struct relay_conn *timeq_head, *timeq_tail;
  struct relay_conn *dead;
  struct relay_conn *free_conns;
  char **bufs;
  int nbufs;
  struct relay_counts c;
  struct relay_stats st; /* DROVER_RELAY_STATS only (relay-stats.c) */
};

struct relay_thread *relay_start_threads(const struct relay_opts *o, int main_evfd);
/* Queues a copy of `cmd` for the thread and wakes it. */
void relay_post(struct relay_thread *t, const struct relay_cmd *cmd);
int relay_pop_handback(struct handback *out);
void relay_sum_counts(struct relay_thread *ts, int n, struct relay_counts *out);
void relay_port_counts(struct relay_thread *ts, int n, uint32_t id, uint64_t *fwd, uint64_t *ref, uint64_t *rep);

/* May a first request whose instance went before answering go to another (proxy/replay.ts)? */
int relay_replay_ok(const char *sent, int32_t len, int replays);

#endif
