/*
 * drover-pump: the bulk data path of drover's tls transfers (convergence-agent/transfer/
 * native-pump.ts starts it; native/README.md has the protocol).
 *
 *   drover-pump send <host> <port> <timeout-ms>   stdin: the zfs stream   → frames → TCP
 *   drover-pump recv                              stdin: the data socket  → zfs receive (stdout)
 *
 * fd 3 is the control channel, a socket pair to the agent. The agent writes the secrets
 * there, never on the command line: `send` reads a 16-byte key and the 56-byte hello,
 * `recv` reads the key. The pump reports "P <bytes>\n" at most every 100 ms and
 * "E <bytes> <user µs> <system µs>\n" (its CPU) once the stream is complete.
 *
 * A frame is [u32 length][u8 flags][ciphertext][16-byte tag], AES-128-GCM (frames.c, which
 * a fuzz target links alone). The 5 header bytes are the additional data; the nonce is the
 * frame's number (96 bits, big-endian), so a frame dropped, repeated or moved fails its tag.
 * Flag 1 marks the last frame: a stream that ends without it is truncated. The key is used
 * for this one stream only. The threat model is in native/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "frames.h"

#define HELLO 56
#define ACK 0x06
#define CONTROL_FD 3
#define REPORT_NS (100L * 1000 * 1000)
#define FLUSH_MS 50

static const char *mode = "?";

static void die(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "drover-pump %s: ", mode);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(status);
}

/* Waits until fd is ready; the agent may hand over non-blocking descriptors. */
static int wait_fd(int fd, short events, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = events};
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    if (r >= 0) return r;
    if (errno != EINTR) return -1;
  }
}

/*
 * Reads up to `max` bytes, stopping early at end of input (*eof set) or, when flush_ms >= 0,
 * once the input has given nothing for flush_ms past its last byte (so a slow stream still
 * moves and is not taken for a stalled one). Returns the count, -1 on error.
 */
static ssize_t read_some(int fd, unsigned char *buf, size_t max, int flush_ms, int *eof) {
  size_t got = 0;
  *eof = 0;
  while (got < max) {
    if (got > 0 && flush_ms >= 0) {
      int ready = wait_fd(fd, POLLIN, flush_ms);
      if (ready < 0) return -1;
      if (ready == 0) break;
    }
    ssize_t r = read(fd, buf + got, max - got);
    if (r > 0) {
      got += (size_t)r;
    } else if (r == 0) {
      *eof = 1;
      break;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(fd, POLLIN, -1) < 0) return -1;
    } else if (errno != EINTR) {
      return -1;
    }
  }
  return (ssize_t)got;
}

/* Reads exactly `want` bytes unless the input ends first. */
static ssize_t read_full(int fd, unsigned char *buf, size_t want) {
  int eof;
  return read_some(fd, buf, want, -1, &eof);
}

static int write_all(int fd, struct iovec *iov, int count) {
  while (count > 0) {
    ssize_t w = writev(fd, iov, count);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (wait_fd(fd, POLLOUT, -1) < 0) return -1;
        continue;
      }
      return -1;
    }
    while (count > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      count--;
    }
    if (count > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Progress on the control channel. A report that cannot be written is dropped, never fatal. */
static uint64_t last_report;
static void report(char kind, uint64_t bytes, int force) {
  uint64_t t = now_ns();
  if (!force && t - last_report < (uint64_t)REPORT_NS) return;
  last_report = t;
  char line[40];
  int n = snprintf(line, sizeof line, "%c %llu\n", kind, (unsigned long long)bytes);
  struct iovec iov = {.iov_base = line, .iov_len = (size_t)n};
  (void)write_all(CONTROL_FD, &iov, 1);
}

/* The last report: bytes, then this process's user and system CPU in microseconds. */
static void report_end(uint64_t bytes) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  char line[80];
  int n = snprintf(line, sizeof line, "E %llu %lld %lld\n", (unsigned long long)bytes,
                   (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
                   (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
  struct iovec iov = {.iov_base = line, .iov_len = (size_t)n};
  (void)write_all(CONTROL_FD, &iov, 1);
}

static void read_secret(unsigned char *buf, size_t n, const char *what) {
  if (read_full(CONTROL_FD, buf, n) != (ssize_t)n) die(EXIT_USAGE, "the control channel did not give the %s", what);
}

static int connect_to(const char *host, const char *port, int timeout_ms) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) die(EXIT_CONNECT, "cannot resolve %s: %s", host, gai_strerror(rc));
  int fd = -1, err = 0;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) { err = errno; continue; }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, timeout_ms) > 0) {
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) break;
    } else {
      err = errno == EINPROGRESS ? ETIMEDOUT : errno;
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) die(EXIT_CONNECT, "cannot connect to %s:%s: %s", host, port, strerror(err));
  int one = 1, idle = 10, interval = 5, count = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* A receiver that vanishes without a reset (a dead host, a partition) is noticed in ~25 s. */
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  return fd;
}

static int pump_send(const char *host, const char *port, int timeout_ms) {
  unsigned char key[FRAME_KEY], hello[HELLO];
  read_secret(key, FRAME_KEY, "key");
  read_secret(hello, HELLO, "hello");

  int out = connect_to(host, port, timeout_ms);
  struct iovec hv = {.iov_base = hello, .iov_len = HELLO};
  if (write_all(out, &hv, 1) < 0) die(EXIT_CONNECT, "cannot send the hello: %s", strerror(errno));
  OPENSSL_cleanse(hello, sizeof hello);
  unsigned char ack = 0;
  if (wait_fd(out, POLLIN, timeout_ms) <= 0) die(EXIT_CONNECT, "the receiver did not accept the data connection within %d ms", timeout_ms);
  if (read_full(out, &ack, 1) != 1 || ack != ACK) die(EXIT_CONNECT, "the receiver refused the data connection");

  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, NULL) != 1) die(EXIT_CRYPTO, "cannot set up AES-128-GCM");
  OPENSSL_cleanse(key, sizeof key);

  unsigned char *buf = malloc(FRAME_MAX + FRAME_TAG);
  if (!buf) die(EXIT_INPUT, "out of memory");
  unsigned char header[FRAME_HEADER], tag[FRAME_TAG];
  uint64_t frame = 0, bytes = 0;
  for (;;) {
    int last;
    ssize_t n = read_some(STDIN_FILENO, buf, FRAME_MAX, FLUSH_MS, &last);
    if (n < 0) die(EXIT_INPUT, "reading the stream: %s", strerror(errno));
    /* read_some returns 0 bytes only at the end of input: the last frame (it may be empty). */
    int sealed = frame_seal(ctx, frame, buf, (size_t)n, last, header, tag);
    if (sealed != EXIT_OK) die(sealed, "sealing frame %llu failed", (unsigned long long)frame);
    frame++;
    struct iovec iov[3] = {{header, FRAME_HEADER}, {buf, (size_t)n}, {tag, FRAME_TAG}};
    if (write_all(out, iov, 3) < 0) die(EXIT_OUTPUT, "writing to the receiver: %s", strerror(errno));
    bytes += (uint64_t)n;
    if (last) break;
    report('P', bytes, 0);
  }
  /* Everything is in the kernel's hands; the receiver's verdict travels over TLS. */
  if (shutdown(out, SHUT_WR) < 0 && errno != ENOTCONN) die(EXIT_OUTPUT, "closing the data connection: %s", strerror(errno));
  report_end(bytes);
  return EXIT_OK;
}

/*
 * A deeper queue toward zfs receive lets the pump and the zfs process run in longer bursts
 * (fewer wake-ups on two busy cores). We write into that socket, so its send buffer is the
 * limit. Root may pass the system's cap (SO_SNDBUFFORCE); else the capped size is used.
 */
static void deepen_output(int fd) {
  int size = 4 * 1024 * 1024;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size); /* ENOTSOCK for a pipe: fine */
  }
}

/* The frame parser's source and sink (frames.h) on this process's descriptors. */
static ssize_t fd_read_full(void *ctx, unsigned char *buf, size_t want) { return read_full(*(int *)ctx, buf, want); }
static int fd_write_all(void *ctx, const unsigned char *buf, size_t n) {
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
  return write_all(*(int *)ctx, &iov, 1);
}
static void progress(void *ctx, uint64_t bytes) {
  (void)ctx;
  report('P', bytes, 0);
}

static int pump_recv(void) {
  unsigned char key[FRAME_KEY];
  read_secret(key, FRAME_KEY, "key");
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, NULL) != 1) die(EXIT_CRYPTO, "cannot set up AES-128-GCM");
  OPENSSL_cleanse(key, sizeof key);

  deepen_output(STDOUT_FILENO);
  unsigned char ack = ACK;
  struct iovec av = {.iov_base = &ack, .iov_len = 1};
  if (write_all(STDIN_FILENO, &av, 1) < 0) die(EXIT_CONNECT, "cannot accept the data connection: %s", strerror(errno));

  unsigned char *buf = malloc(FRAME_MAX + FRAME_TAG);
  if (!buf) die(EXIT_OUTPUT, "out of memory");
  int in_fd = STDIN_FILENO, out_fd = STDOUT_FILENO;
  struct frame_source in = {.read_full = fd_read_full, .ctx = &in_fd};
  struct frame_sink out = {.write_all = fd_write_all, .progress = progress, .ctx = &out_fd};
  struct frames_result r;
  if (frames_open_stream(ctx, &in, &out, buf, &r) != EXIT_OK) {
    int err = errno;
    if (r.status == EXIT_AUTH) die(r.status, "frame %llu failed authentication", (unsigned long long)r.frames);
    die(r.status, "%s (frame %llu, after %llu bytes)%s%s", r.why, (unsigned long long)r.frames, (unsigned long long)r.bytes,
        r.status == EXIT_INPUT || r.status == EXIT_OUTPUT ? ": " : "", r.status == EXIT_INPUT || r.status == EXIT_OUTPUT ? strerror(err) : "");
  }
  uint64_t bytes = r.bytes;
  if (close(STDOUT_FILENO) < 0) die(EXIT_OUTPUT, "closing zfs receive's input: %s", strerror(errno));
  report_end(bytes);
  return EXIT_OK;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  /* The agent that started us owns the step: if it dies, so do we (its TLS connection, and
     with it the receiver's verdict, is gone anyway). */
  pid_t parent = getppid();
  if (parent == 1 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) return EXIT_USAGE;
  if (fcntl(CONTROL_FD, F_GETFD) < 0) {
    fprintf(stderr, "drover-pump: fd 3 (the control channel) is not open; this program is started by drover-agent\n");
    return EXIT_USAGE;
  }
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    mode = "send";
    char *end;
    long timeout = strtol(argv[4], &end, 10);
    if (*end || timeout <= 0 || timeout > 600000) die(EXIT_USAGE, "bad timeout %s", argv[4]);
    return pump_send(argv[2], argv[3], (int)timeout);
  }
  if (argc == 2 && strcmp(argv[1], "recv") == 0) {
    mode = "recv";
    return pump_recv();
  }
  fprintf(stderr, "usage: drover-pump send <host> <port> <timeout-ms> | drover-pump recv (fd 3: the control channel)\n");
  return EXIT_USAGE;
}
