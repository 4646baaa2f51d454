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
 * A frame is [u32 length][u8 flags][ciphertext][16-byte tag], AES-128-GCM. The 5 header
 * bytes are the additional data; the nonce is the frame's number (96 bits, big-endian), so
 * a frame dropped, repeated or moved fails its tag. Flag 1 marks the last frame: a stream
 * that ends without it is truncated. The key is used for this one stream only.
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

#define FRAME_MAX (256 * 1024)
#define HEADER 5
#define TAG 16
#define KEY 16
#define HELLO 56
#define ACK 0x06
#define FLAG_LAST 1
#define CONTROL_FD 3
#define REPORT_NS (100L * 1000 * 1000)
#define FLUSH_MS 50

/* Exit statuses; native-pump.ts maps them to drover's error codes. */
enum {
  EXIT_OK = 0,
  EXIT_USAGE = 64,     /* bad arguments or control data: a bug in the caller */
  EXIT_INPUT = 65,     /* reading the input failed */
  EXIT_OUTPUT = 66,    /* writing the output failed (the receiver or zfs went away) */
  EXIT_CONNECT = 67,   /* the data connection could not be made or was not accepted */
  EXIT_AUTH = 68,      /* a frame failed authentication */
  EXIT_TRUNCATED = 69, /* the stream ended before its last frame */
  EXIT_PROTOCOL = 70,  /* a malformed frame */
  EXIT_CRYPTO = 71,    /* OpenSSL refused an operation */
};

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

static void nonce_for(uint64_t frame, unsigned char iv[12]) {
  memset(iv, 0, 4);
  for (int i = 0; i < 8; i++) iv[4 + i] = (unsigned char)(frame >> (56 - 8 * i));
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
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
  unsigned char key[KEY], hello[HELLO];
  read_secret(key, KEY, "key");
  read_secret(hello, HELLO, "hello");

  int out = connect_to(host, port, timeout_ms);
  struct iovec hv = {.iov_base = hello, .iov_len = HELLO};
  if (write_all(out, &hv, 1) < 0) die(EXIT_CONNECT, "cannot send the hello: %s", strerror(errno));
  unsigned char ack = 0;
  if (wait_fd(out, POLLIN, timeout_ms) <= 0) die(EXIT_CONNECT, "the receiver did not accept the data connection within %d ms", timeout_ms);
  if (read_full(out, &ack, 1) != 1 || ack != ACK) die(EXIT_CONNECT, "the receiver refused the data connection");

  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, NULL) != 1) die(EXIT_CRYPTO, "cannot set up AES-128-GCM");
  OPENSSL_cleanse(key, sizeof key);

  unsigned char *buf = malloc(FRAME_MAX + TAG);
  if (!buf) die(EXIT_INPUT, "out of memory");
  unsigned char header[HEADER], tag[TAG], iv[12];
  uint64_t frame = 0, bytes = 0;
  for (;;) {
    int last;
    ssize_t n = read_some(STDIN_FILENO, buf, FRAME_MAX, FLUSH_MS, &last);
    if (n < 0) die(EXIT_INPUT, "reading the stream: %s", strerror(errno));
    /* The last frame goes at the end of input (it may be empty): "the input ended here". */
    put_u32(header, (uint32_t)n);
    header[4] = last ? FLAG_LAST : 0;
    nonce_for(frame++, iv);
    int len = 0;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, header, HEADER) != 1 ||
        (n > 0 && EVP_EncryptUpdate(ctx, buf, &len, buf, (int)n) != 1) ||
        EVP_EncryptFinal_ex(ctx, buf + n, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, tag) != 1) {
      die(EXIT_CRYPTO, "encrypting frame %llu failed", (unsigned long long)frame - 1);
    }
    struct iovec iov[3] = {{header, HEADER}, {buf, (size_t)n}, {tag, TAG}};
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

static int pump_recv(void) {
  unsigned char key[KEY];
  read_secret(key, KEY, "key");
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, NULL) != 1) die(EXIT_CRYPTO, "cannot set up AES-128-GCM");
  OPENSSL_cleanse(key, sizeof key);

  deepen_output(STDOUT_FILENO);
  unsigned char ack = ACK;
  struct iovec av = {.iov_base = &ack, .iov_len = 1};
  if (write_all(STDIN_FILENO, &av, 1) < 0) die(EXIT_CONNECT, "cannot accept the data connection: %s", strerror(errno));

  unsigned char *buf = malloc(FRAME_MAX + TAG);
  if (!buf) die(EXIT_OUTPUT, "out of memory");
  unsigned char header[HEADER], iv[12];
  uint64_t frame = 0, bytes = 0;
  for (;;) {
    ssize_t h = read_full(STDIN_FILENO, header, HEADER);
    if (h < 0) die(EXIT_INPUT, "reading from the sender: %s", strerror(errno));
    if (h < HEADER) die(EXIT_TRUNCATED, "the stream ended after %llu bytes, before its last frame", (unsigned long long)bytes);
    uint32_t n = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
    if (n > FRAME_MAX || (header[4] & ~FLAG_LAST) != 0) die(EXIT_PROTOCOL, "frame %llu has a bad header", (unsigned long long)frame);
    ssize_t r = read_full(STDIN_FILENO, buf, n + TAG);
    if (r < 0) die(EXIT_INPUT, "reading from the sender: %s", strerror(errno));
    if (r < (ssize_t)(n + TAG)) die(EXIT_TRUNCATED, "the stream ended after %llu bytes, inside frame %llu", (unsigned long long)bytes, (unsigned long long)frame);
    nonce_for(frame, iv);
    int len = 0;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &len, header, HEADER) != 1 ||
        (n > 0 && EVP_DecryptUpdate(ctx, buf, &len, buf, (int)n) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, buf + n) != 1) {
      die(EXIT_CRYPTO, "decrypting frame %llu failed", (unsigned long long)frame);
    }
    if (EVP_DecryptFinal_ex(ctx, buf + n, &len) != 1) die(EXIT_AUTH, "frame %llu failed authentication", (unsigned long long)frame);
    frame++;
    /* Only authenticated bytes reach zfs. */
    struct iovec ov = {.iov_base = buf, .iov_len = n};
    if (n > 0 && write_all(STDOUT_FILENO, &ov, 1) < 0) die(EXIT_OUTPUT, "writing to zfs receive: %s", strerror(errno));
    bytes += n;
    if (header[4] & FLAG_LAST) break;
    report('P', bytes, 0);
  }
  unsigned char extra;
  if (read_full(STDIN_FILENO, &extra, 1) != 0) die(EXIT_PROTOCOL, "bytes after the last frame");
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
