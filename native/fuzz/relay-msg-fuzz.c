/*
 * libFuzzer target for drover-relay's control-message parser (relay-msg.c) and its replay
 * rule (relay_replay_ok in relay-core.c), without sockets or threads.
 *
 * The input is one line as Node's IPC channel would carry it (malformed at will). Checked on
 * every input, beyond "no crash, no leak, no undefined behaviour":
 *   - a line is accepted only as one of the four kinds, with counts in range (targets 1..64
 *     when forwarding, keep -1..64) and no port 0;
 *   - an accepted route or close, written back in the grammar, parses to the same message
 *     (nothing is read that the grammar does not say);
 *   - the replay rule agrees with a plain re-statement of proxy/replay.ts on the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay-core.h"
#include "relay-msg.h"

static void fail(const char *what) {
  fprintf(stderr, "invariant failed: %s\n", what);
  abort();
}

static int addr_text(char *out, size_t cap, struct relay_addr a) {
  const unsigned char *ip = (const unsigned char *)&a.ip;
  return snprintf(out, cap, " %u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], a.port);
}

static size_t write_back(const struct relay_msg *m, char *line, size_t cap) {
  size_t n = 0;
  if (m->kind == MSG_CLOSE) return (size_t)snprintf(line, cap, "{\"d\":\"close %u %u\"}", m->id, m->seq);
  n += (size_t)snprintf(line + n, cap - n, "{\"d\":\"route %u %u %d %d %d", m->id, m->seq, m->forward, m->replay, m->ntargets);
  for (int i = 0; i < m->ntargets; i++) n += (size_t)addr_text(line + n, cap - n, m->targets[i]);
  n += (size_t)snprintf(line + n, cap - n, " %d", m->nkeep);
  for (int i = 0; i < m->nkeep; i++) n += (size_t)addr_text(line + n, cap - n, m->keep[i]);
  n += (size_t)snprintf(line + n, cap - n, "\"}");
  return n;
}

static int replay_reference(const uint8_t *sent, size_t len, int replays) {
  static const char *const m[] = {"GET ", "HEAD ", "OPTIONS ", "TRACE ", "PUT ", "DELETE "};
  if (replays >= 2) return 0;
  if (len == 0) return 1;
  for (size_t k = 0; k < 6; k++) {
    size_t i = 0, n = strlen(m[k]) < len ? strlen(m[k]) : len;
    while (i < n && sent[i] == (uint8_t)m[k][i]) i++;
    if (i == n) return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct relay_msg m, again;
  const char *why;
  char *line = malloc(size ? size : 1);
  if (size) memcpy(line, data, size);
  if (relay_parse(line, size, &m, &why) == 0) {
    if (m.kind < MSG_HANDLE_ACK || m.kind > MSG_CLOSE) fail("unknown kind accepted");
    if (m.id >= RELAY_MAX_PORTS) fail("port id out of range");
    if (m.kind == MSG_ROUTE) {
      if (m.ntargets < 0 || m.ntargets > RELAY_MAX_TARGETS || m.nkeep < -1 || m.nkeep > RELAY_MAX_TARGETS) fail("count out of range");
      if (m.forward && m.ntargets == 0) fail("forward to nothing");
      for (int i = 0; i < m.ntargets; i++)
        if (m.targets[i].port == 0) fail("port 0");
    }
    if (m.kind == MSG_ROUTE || m.kind == MSG_CLOSE) {
      char back[RELAY_MAX_LINE * 2];
      size_t n = write_back(&m, back, sizeof back);
      if (n <= RELAY_MAX_LINE) {
        if (relay_parse(back, n, &again, &why) != 0) fail("written back, not parsed");
        if (memcmp(&m, &again, sizeof m) != 0) fail("written back, parsed differently");
      }
    }
  } else if (why == NULL)
    fail("refused without a reason");
  /* The replay rule on the same bytes, with the replay count from the first byte. */
  int replays = size ? data[0] % 3 : 0;
  int32_t len = size > 16384 ? -1 : (int32_t)size;
  int ok = relay_replay_ok(line, len, replays);
  if (len >= 0 && ok != replay_reference(data, size, replays)) fail("replay rule differs from replay.ts");
  if (len < 0 && ok) fail("replayed what was not kept");
  free(line);
  return 0;
}
