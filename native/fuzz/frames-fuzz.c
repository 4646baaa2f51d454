/*
 * libFuzzer target for the receiving pump's frame parser (frames.c), without the network code.
 *
 * The input is a script. Byte 0 picks the mode:
 *   even  raw: the rest is the wire stream as an attacker without the key would send it.
 *   odd   sealed: the rest is records [op u8][len u16 BE][payload len bytes] that an honest
 *         sender seals with the stream's key (frame numbers 0, 1, 2 …), and that the harness
 *         then tampers with on the wire as each record's op says: flip a byte, drop the frame,
 *         send it twice, send the previous frame's bytes again in its place (a replay), insert
 *         a raw header, cut the stream, fill the frame to FRAME_MAX. The harness never seals
 *         two plaintexts under one frame number: the sending pump never does (its counter only
 *         grows), and with the key any such frame would rightly authenticate.
 * Byte 1 makes the source fail at its Nth read (0: never), byte 2 the sink at its Nth write.
 *
 * Checked on every input, beyond "no crash, no leak, no undefined behaviour":
 *   - the plaintext written is always a prefix of what the honest sender sealed, in order;
 *   - a stream is accepted (EXIT_OK) only if the wire is exactly the honest frames 0..L, L
 *     being the first frame flagged last, and then all of its plaintext was written;
 *   - a failing source or sink is reported as EXIT_INPUT / EXIT_OUTPUT.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"

#define WIRE_MAX (8 * 1024 * 1024)

static EVP_CIPHER_CTX *enc, *dec;
static unsigned char *wire, *clean, *expected, *output, *frame_buf, *seal_buf;

struct mem {
  const unsigned char *data;
  size_t len, pos;
  unsigned calls, fail_at;
  unsigned char *out;
  size_t out_len;
};

static ssize_t mem_read(void *ctx, unsigned char *buf, size_t want) {
  struct mem *m = ctx;
  if (m->fail_at && ++m->calls == m->fail_at) return -1;
  size_t take = m->len - m->pos < want ? m->len - m->pos : want;
  memcpy(buf, m->data + m->pos, take);
  m->pos += take;
  return (ssize_t)take;
}

static int mem_write(void *ctx, const unsigned char *buf, size_t n) {
  struct mem *m = ctx;
  if (m->fail_at && ++m->calls == m->fail_at) return -1;
  memcpy(m->out + m->out_len, buf, n);
  m->out_len += n;
  return 0;
}

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "frames-fuzz: invariant failed: %s\n", what);
    abort();
  }
}

static void init(void) {
  static const unsigned char key[FRAME_KEY] = {0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                               0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};
  enc = EVP_CIPHER_CTX_new();
  dec = EVP_CIPHER_CTX_new();
  if (!enc || !dec || EVP_EncryptInit_ex(enc, EVP_aes_128_gcm(), NULL, key, NULL) != 1 ||
      EVP_DecryptInit_ex(dec, EVP_aes_128_gcm(), NULL, key, NULL) != 1) {
    abort();
  }
  wire = malloc(WIRE_MAX);
  clean = malloc(WIRE_MAX);
  expected = malloc(WIRE_MAX);
  output = malloc(WIRE_MAX);
  frame_buf = malloc(FRAME_MAX + FRAME_TAG);
  seal_buf = malloc(FRAME_MAX + FRAME_TAG);
  if (!wire || !clean || !expected || !output || !frame_buf || !seal_buf) abort();
}

static size_t append(unsigned char *dst, size_t at, const void *src, size_t n) {
  if (at + n > WIRE_MAX) return at;
  memcpy(dst + at, src, n);
  return at + n;
}

/* Seals `n` bytes as frame `number`, appending header ‖ ciphertext ‖ tag to `dst`. */
static size_t seal_to(unsigned char *dst, size_t at, uint64_t number, const unsigned char *plain, size_t n, int last) {
  unsigned char header[FRAME_HEADER], tag[FRAME_TAG];
  memcpy(seal_buf, plain, n);
  if (frame_seal(enc, number, seal_buf, n, last, header, tag) != EXIT_OK) return at;
  if (at + FRAME_HEADER + n + FRAME_TAG > WIRE_MAX) return at;
  at = append(dst, at, header, FRAME_HEADER);
  at = append(dst, at, seal_buf, n);
  return append(dst, at, tag, FRAME_TAG);
}

enum { OP_LAST = 1, OP_FLIP = 2, OP_DROP = 4, OP_TWICE = 8, OP_REPLAY = 16, OP_RAW = 32, OP_CUT = 64, OP_FILL = 128 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!enc) init();
  if (size < 3) return 0;
  int sealed = data[0] & 1;
  struct mem in = {.fail_at = data[1]}, out = {.fail_at = data[2], .out = output};
  data += 3;
  size -= 3;

  size_t wire_len = 0, clean_len = 0, expected_len = 0;
  int clean_done = 0; /* the honest stream reached its last frame */
  if (!sealed) {
    wire_len = append(wire, 0, data, size);
  } else {
    uint64_t number = 0;
    size_t p = 0, prev_start = 0, prev_len = 0;
    while (p + 3 <= size) {
      unsigned op = data[p];
      size_t len = (size_t)data[p + 1] << 8 | data[p + 2];
      p += 3;
      if (len > size - p) len = size - p;
      const unsigned char *payload = data + p;
      p += len;
      static unsigned char filled[FRAME_MAX];
      if (op & OP_FILL) {
        for (size_t i = 0; i < FRAME_MAX; i++) filled[i] = len ? payload[i % len] : (unsigned char)i;
        payload = filled;
        len = FRAME_MAX;
      }
      int last = (op & OP_LAST) || len == 0;
      if (op & OP_RAW) {
        /* Garbage where a header belongs: the first 5 bytes of the payload, as they are. */
        wire_len = append(wire, wire_len, payload, len < FRAME_HEADER ? len : FRAME_HEADER);
        continue;
      }
      size_t before = wire_len;
      if ((op & OP_REPLAY) && prev_len > 0) {
        /* The previous honest frame's exact bytes again, where this frame belongs. */
        wire_len = append(wire, wire_len, clean + prev_start, prev_len);
      } else if (!(op & OP_DROP)) {
        wire_len = seal_to(wire, wire_len, number, payload, len, last);
      }
      if ((op & OP_FLIP) && wire_len > before) {
        size_t at = before + (len ? payload[0] : 0) % (wire_len - before);
        wire[at] ^= (unsigned char)(1u << ((len > 1 ? payload[1] : 0) & 7));
      }
      if ((op & OP_TWICE) && wire_len > before) {
        size_t n = wire_len - before;
        wire_len = append(wire, wire_len, wire + before, n);
      }
      /* What an honest sender sends: frame `number` with this payload. */
      if (!clean_done) {
        prev_start = clean_len;
        clean_len = seal_to(clean, clean_len, number, payload, len, last);
        prev_len = clean_len - prev_start;
        expected_len = append(expected, expected_len, payload, len);
        clean_done = last;
      }
      number++;
      if (op & OP_CUT) {
        wire_len -= (wire_len - before) / 2;
        break;
      }
    }
  }

  in.data = wire;
  in.len = wire_len;
  struct frame_source source = {.read_full = mem_read, .ctx = &in};
  struct frame_sink sink = {.write_all = mem_write, .progress = NULL, .ctx = &out};
  struct frames_result r;
  int status = frames_open_stream(dec, &source, &sink, frame_buf, &r);

  check(status == r.status, "the status returned is the one recorded");
  check(r.bytes == out.out_len, "bytes counted are the bytes written");
  check(status == EXIT_OK || r.why != NULL, "a failure says why");
  check(status == EXIT_OK || status == EXIT_INPUT || status == EXIT_OUTPUT || status == EXIT_AUTH ||
            status == EXIT_TRUNCATED || status == EXIT_PROTOCOL,
        "the status is one of the parser's");
  if (in.fail_at == 0) check(status != EXIT_INPUT, "no input error without a failing source");
  if (out.fail_at == 0) check(status != EXIT_OUTPUT, "no output error without a failing sink");
  if (!sealed) {
    /* Without the key nothing authenticates (a forgery would need the GCM key). */
    check(out.out_len == 0, "raw bytes never reach the output");
    return 0;
  }
  check(out.out_len <= expected_len && memcmp(output, expected, out.out_len) == 0,
        "the output is a prefix of what the honest sender sealed");
  if (status == EXIT_OK) {
    check(clean_done, "a stream is accepted only with its last frame");
    check(wire_len == clean_len && memcmp(wire, clean, wire_len) == 0, "an accepted stream is exactly the honest one");
    check(out.out_len == expected_len, "an accepted stream's plaintext is written whole");
  }
  return 0;
}
