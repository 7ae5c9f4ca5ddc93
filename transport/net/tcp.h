/* tcp.h - the TCP options of every connection we make or accept: no Nagle delay on what we send, and an
 * acknowledgement sent at once when we wait for more of what the peer sends (docs/transport-io.md, "TCP options"). */
#ifndef IX_TCP_H
#define IX_TCP_H

#include <stdbool.h>

/* Turns off Nagle's algorithm (TCP_NODELAY) on fd: each send leaves at once, so the caller must hand the
 * kernel whole replies or commands in one send. Returns true on a TCP socket, false where the option does not
 * apply (a Unix socket, a pipe: nothing to do there) or could not be set. */
bool tcp_nodelay(int fd);

/* Acknowledges at once what fd has received (TCP_QUICKACK) instead of letting the kernel delay the ACK. Call it
 * after a read that left us waiting for more from the peer with nothing of ours to send (a command, literal or
 * reply cut between the peer's writes): a peer under Nagle holds its next small write until that ACK. Linux
 * falls back to delayed acknowledgement by itself, so this is per read. Errors are ignored (not TCP, closed). */
void tcp_quickack(int fd);

#endif
