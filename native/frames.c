/* The data connection's frames (frames.h). No I/O of its own: the caller's source and sink do it. */
#include "frames.h"

#include <string.h>

static void nonce_for(uint64_t frame, unsigned char iv[12]) {
  memset(iv, 0, 4);
  for (int i = 0; i < 8; i++) iv[4 + i] = (unsigned char)(frame >> (56 - 8 * i));
}

int frame_header_parse(const unsigned char header[FRAME_HEADER], uint32_t *length, int *last) {
  uint32_t n = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
  if (n > FRAME_MAX || (header[4] & ~FRAME_FLAG_LAST) != 0) return EXIT_PROTOCOL;
  *length = n;
  *last = header[4] & FRAME_FLAG_LAST;
  /* Only the last frame may be empty (a sender emits an empty frame only at the end of its input). */
  if (n == 0 && !*last) return EXIT_PROTOCOL;
  return EXIT_OK;
}

int frame_seal(EVP_CIPHER_CTX *ctx, uint64_t frame, unsigned char *buf, size_t n, int last,
               unsigned char header[FRAME_HEADER], unsigned char tag[FRAME_TAG]) {
  if (n > FRAME_MAX || frame >= FRAME_COUNT_MAX || (n == 0 && !last)) return EXIT_PROTOCOL;
  unsigned char iv[12];
  header[0] = (unsigned char)(n >> 24);
  header[1] = (unsigned char)(n >> 16);
  header[2] = (unsigned char)(n >> 8);
  header[3] = (unsigned char)n;
  header[4] = last ? FRAME_FLAG_LAST : 0;
  nonce_for(frame, iv);
  int len = 0;
  if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
      EVP_EncryptUpdate(ctx, NULL, &len, header, FRAME_HEADER) != 1 ||
      (n > 0 && EVP_EncryptUpdate(ctx, buf, &len, buf, (int)n) != 1) ||
      EVP_EncryptFinal_ex(ctx, buf + n, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, FRAME_TAG, tag) != 1) {
    return EXIT_CRYPTO;
  }
  return EXIT_OK;
}

static int fail(struct frames_result *r, int status, const char *why) {
  r->status = status;
  r->why = why;
  return status;
}

int frames_open_stream(EVP_CIPHER_CTX *ctx, const struct frame_source *in, const struct frame_sink *out,
                       unsigned char *buf, struct frames_result *r) {
  unsigned char header[FRAME_HEADER], iv[12];
  r->status = EXIT_OK;
  r->frames = 0;
  r->bytes = 0;
  r->why = NULL;
  for (;;) {
    ssize_t h = in->read_full(in->ctx, header, FRAME_HEADER);
    if (h < 0) return fail(r, EXIT_INPUT, "reading from the sender failed");
    if (h < FRAME_HEADER) return fail(r, EXIT_TRUNCATED, "the stream ended before its last frame");
    uint32_t n;
    int last;
    if (frame_header_parse(header, &n, &last) != EXIT_OK) return fail(r, EXIT_PROTOCOL, "a frame has a bad header");
    if (r->frames >= FRAME_COUNT_MAX) return fail(r, EXIT_PROTOCOL, "too many frames for one key");
    ssize_t got = in->read_full(in->ctx, buf, (size_t)n + FRAME_TAG);
    if (got < 0) return fail(r, EXIT_INPUT, "reading from the sender failed");
    if ((size_t)got < (size_t)n + FRAME_TAG) return fail(r, EXIT_TRUNCATED, "the stream ended inside a frame");
    nonce_for(r->frames, iv);
    int len = 0;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &len, header, FRAME_HEADER) != 1 ||
        (n > 0 && EVP_DecryptUpdate(ctx, buf, &len, buf, (int)n) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, FRAME_TAG, buf + n) != 1) {
      return fail(r, EXIT_CRYPTO, "decrypting a frame failed");
    }
    if (EVP_DecryptFinal_ex(ctx, buf + n, &len) != 1) return fail(r, EXIT_AUTH, "a frame failed authentication");
    r->frames++;
    /* Only authenticated bytes reach the sink. */
    if (n > 0 && out->write_all(out->ctx, buf, n) < 0) return fail(r, EXIT_OUTPUT, "writing the output failed");
    r->bytes += n;
    if (last) break;
    if (out->progress) out->progress(out->ctx, r->bytes);
  }
  unsigned char extra;
  ssize_t after = in->read_full(in->ctx, &extra, 1);
  if (after < 0) return fail(r, EXIT_INPUT, "reading from the sender failed after the last frame");
  if (after > 0) return fail(r, EXIT_PROTOCOL, "bytes after the last frame");
  return EXIT_OK;
}
