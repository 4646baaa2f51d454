/* drover-relay's control-message parser: see relay-msg.h for the grammar. */
#include "relay-msg.h"

#include <string.h>

struct cursor {
  const char *p, *end;
};

static int lit(struct cursor *c, const char *s) {
  size_t n = strlen(s);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) return -1;
  c->p += n;
  return 0;
}

/* A decimal number in [0, max], no sign, no leading zeros beyond "0", at most 10 digits. */
static int num(struct cursor *c, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  int digits = 0;
  if (c->p < c->end && *c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9') return -1;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    if (++digits > 10) return -1;
    v = v * 10 + (uint64_t)(*c->p++ - '0');
  }
  if (digits == 0 || v > max) return -1;
  *out = v;
  return 0;
}

static int space(struct cursor *c) {
  return lit(c, " ");
}

/* a.b.c.d:port, each octet 0-255, port 1-65535 */
static int addr(struct cursor *c, struct relay_addr *a) {
  uint64_t o[4], port;
  for (int i = 0; i < 4; i++) {
    if (num(c, 255, &o[i]) != 0) return -1;
    if (lit(c, i < 3 ? "." : ":") != 0) return -1;
  }
  if (num(c, 65535, &port) != 0 || port == 0) return -1;
  uint32_t host = (uint32_t)((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]);
  a->ip = (uint32_t)((host >> 24) | ((host >> 8) & 0xff00) | ((host << 8) & 0xff0000) | (host << 24));
  a->port = (uint16_t)port;
  return 0;
}

static int addrs(struct cursor *c, int *n, struct relay_addr *out, int allow_none) {
  uint64_t k;
  if (allow_none && lit(c, "-1") == 0) {
    *n = -1;
    return 0;
  }
  if (num(c, RELAY_MAX_TARGETS, &k) != 0) return -1;
  *n = (int)k;
  for (int i = 0; i < *n; i++)
    if (space(c) != 0 || addr(c, &out[i]) != 0) return -1;
  return 0;
}

int relay_parse(const char *line, size_t len, struct relay_msg *m, const char **why) {
  struct cursor c = {line, line + len};
  uint64_t v;
  memset(m, 0, sizeof *m);
  *why = "not a message the relay knows";
  if (len > RELAY_MAX_LINE) {
    *why = "line too long";
    return -1;
  }
  if (lit(&c, "{\"cmd\":\"NODE_HANDLE_ACK\"}") == 0 && c.p == c.end) {
    m->kind = MSG_HANDLE_ACK;
    return 0;
  }
  c.p = line;
  if (lit(&c, "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"d\":\"listen ") == 0) {
    if (num(&c, RELAY_MAX_PORTS - 1, &v) != 0 || lit(&c, "\"}") != 0) {
      *why = "bad listen";
      return -1;
    }
    if (lit(&c, "}") != 0 || c.p != c.end) {
      *why = "bad listen";
      return -1;
    }
    m->kind = MSG_LISTEN;
    m->id = (uint32_t)v;
    return 0;
  }
  c.p = line;
  if (lit(&c, "{\"d\":\"") != 0) return -1;
  if (lit(&c, "route ") == 0) {
    uint64_t seq, fwd, rep;
    if (num(&c, RELAY_MAX_PORTS - 1, &v) != 0 || space(&c) || num(&c, 0xffffffffu, &seq) || space(&c) || num(&c, 1, &fwd) || space(&c) ||
        num(&c, 1, &rep) || space(&c) || addrs(&c, &m->ntargets, m->targets, 0) || space(&c) || addrs(&c, &m->nkeep, m->keep, 1)) {
      *why = "bad route";
      return -1;
    }
    if (fwd == 1 && m->ntargets == 0) {
      *why = "route forwards to no target";
      return -1;
    }
    m->kind = MSG_ROUTE;
    m->id = (uint32_t)v;
    m->seq = (uint32_t)seq;
    m->forward = (int)fwd;
    m->replay = (int)rep;
  } else if (lit(&c, "close ") == 0) {
    uint64_t seq;
    if (num(&c, RELAY_MAX_PORTS - 1, &v) != 0 || space(&c) || num(&c, 0xffffffffu, &seq)) {
      *why = "bad close";
      return -1;
    }
    m->kind = MSG_CLOSE;
    m->id = (uint32_t)v;
    m->seq = (uint32_t)seq;
  } else
    return -1;
  if (lit(&c, "\"}") != 0 || c.p != c.end) {
    *why = "trailing bytes";
    return -1;
  }
  return 0;
}
