/*
 * drover-relay's control messages (docs/DESIGN.md §32, proxy/DESIGN.md "The native relay").
 * Node's child-process IPC channel carries them, one JSON line each; the relay reads only the
 * few shapes below and refuses anything else. Pure: no I/O, so the fuzz target links it alone.
 *
 *   {"cmd":"NODE_HANDLE_ACK"}                                      Node took a descriptor we sent
 *   {"cmd":"NODE_HANDLE",...,"msg":{"d":"listen ID"}}              + a bound TCP socket (SCM_RIGHTS)
 *   {"d":"route ID SEQ MODE REPLAY N HOST:PORT... K HOST:PORT..."}  MODE 1 forward to the N targets,
 *        0 hand every connection to Node (a hold, or what the relay does not serve); K ≥ 0: close
 *        relays of this port to a target not among the K listed; K = -1: close none
 *   {"d":"close ID SEQ"}                                           stop accepting on port ID
 */
#ifndef DROVER_RELAY_MSG_H
#define DROVER_RELAY_MSG_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_MAX_PORTS 65536
#define RELAY_MAX_TARGETS 64
#define RELAY_MAX_LINE 4096

enum relay_msg_kind { MSG_HANDLE_ACK = 1, MSG_LISTEN, MSG_ROUTE, MSG_CLOSE };

struct relay_addr {
  uint32_t ip; /* network byte order */
  uint16_t port; /* host byte order */
};

struct relay_msg {
  enum relay_msg_kind kind;
  uint32_t id;
  uint32_t seq;
  int forward; /* MSG_ROUTE: 1 forward, 0 hand back */
  int replay;
  int ntargets;
  struct relay_addr targets[RELAY_MAX_TARGETS];
  int nkeep; /* -1: cut nothing */
  struct relay_addr keep[RELAY_MAX_TARGETS];
};

/* Parses one line (without its newline). 0 on success; -1 and a static reason otherwise. */
int relay_parse(const char *line, size_t len, struct relay_msg *out, const char **why);

#endif
