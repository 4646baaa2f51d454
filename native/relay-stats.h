/* drover-relay's tail diagnostics (relay-stats.c): off unless DROVER_RELAY_STATS names a file. */
#ifndef DROVER_RELAY_STATS_H
#define DROVER_RELAY_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RELAY_HIST 16

/* Per thread, written by that thread only (relaxed atomics: the main thread reads them). Buckets
 * are powers of two: bucket k counts values in [2^(k-1), 2^k), bucket 0 the zeros. */
struct relay_stats {
  uint64_t batch_len[RELAY_HIST]; /* events returned by one epoll_wait */
  uint64_t batch_us[RELAY_HIST]; /* time from epoll_wait's return to the end of its batch */
  uint64_t queued_us[RELAY_HIST]; /* per connection event: its wait behind the earlier ones of the batch */
  /* per read: how long its newest byte waited in the socket (the kernel's receive timestamp) */
  uint64_t read_delay_up_us[RELAY_HIST], read_delay_down_us[RELAY_HIST];
  uint64_t wakeups, events;
};

extern int relay_stats_on;
void relay_stats_add(uint64_t *hist, uint64_t value);
uint64_t relay_stats_ns(void);
/* Reads DROVER_RELAY_STATS once; the main thread then calls relay_stats_dump every 100 ms. */
void relay_stats_init(void);
struct relay_thread;
/* Software receive timestamps on a socket (a listening socket's connections inherit them). */
void relay_stats_socket(int fd);
ssize_t relay_stats_recv(struct relay_stats *st, int fd, char *buf, size_t len, int up);
void relay_stats_dump(struct relay_thread *ts, int n);

#endif
