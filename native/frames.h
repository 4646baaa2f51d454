/*
 * The frame format of drover-pump's data connection (native/README.md "Frames"), apart from
 * the network code so that a fuzz target (fuzz/frames-fuzz.c) links it alone.
 *
 *   [u32 length BE][u8 flags][ciphertext: length bytes][16-byte tag]     AES-128-GCM
 *
 * The 5 header bytes are the additional data; the nonce is the frame's number (96 bits,
 * big-endian). Flag 1 marks the last frame.
 */
#ifndef DROVER_FRAMES_H
#define DROVER_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#define FRAME_MAX (256 * 1024)
#define FRAME_HEADER 5
#define FRAME_TAG 16
#define FRAME_KEY 16
#define FRAME_FLAG_LAST 1
/* At most 2^32 frames (1 PiB) under one key: far inside AES-GCM's limits for one key. */
#define FRAME_COUNT_MAX (UINT64_C(1) << 32)

/* Exit statuses of the pump; native-pump.ts maps them to drover's error codes. */
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

/* Where frames come from and plaintext goes: file descriptors in the pump, memory in the fuzz target. */
struct frame_source {
  /* Reads exactly `want` bytes unless the input ends first; the count, or -1 on error. */
  ssize_t (*read_full)(void *ctx, unsigned char *buf, size_t want);
  void *ctx;
};
struct frame_sink {
  /* Writes all `n` bytes; 0, or -1 on error. */
  int (*write_all)(void *ctx, const unsigned char *buf, size_t n);
  /* Called after each frame with the plaintext bytes so far (may be NULL). */
  void (*progress)(void *ctx, uint64_t bytes);
  void *ctx;
};

struct frames_result {
  int status;      /* EXIT_OK or the failure's exit status */
  uint64_t frames; /* frames authenticated */
  uint64_t bytes;  /* plaintext bytes written to the sink */
  const char *why; /* a constant message when status != EXIT_OK */
};

/* The header's length and last flag; EXIT_PROTOCOL for a length over FRAME_MAX or an unknown flag. */
int frame_header_parse(const unsigned char header[FRAME_HEADER], uint32_t *length, int *last);

/*
 * Encrypts `buf[0..n)` in place as frame number `frame`, filling `header` and `tag`.
 * `ctx` is an AES-128-GCM encryption context with its key set. EXIT_OK or EXIT_CRYPTO/EXIT_PROTOCOL.
 */
int frame_seal(EVP_CIPHER_CTX *ctx, uint64_t frame, unsigned char *buf, size_t n, int last,
               unsigned char header[FRAME_HEADER], unsigned char tag[FRAME_TAG]);

/*
 * Reads frames from `in` until the last one, writes only authenticated plaintext to `out`, and
 * then requires the input to end. `ctx` is an AES-128-GCM decryption context with its key set;
 * `buf` holds FRAME_MAX + FRAME_TAG bytes. Fills `r` and returns r->status.
 */
int frames_open_stream(EVP_CIPHER_CTX *ctx, const struct frame_source *in, const struct frame_sink *out,
                       unsigned char *buf, struct frames_result *r);

#endif
