/* tls_peers.h - TLS to the other servers of the organisation, one way for every path (relay, proxy, move): a client
 * context that trusts exactly the certificates the servers publish in the directory, and checks the peer's name. */
#ifndef IX_TLS_PEERS_H
#define IX_TLS_PEERS_H

#include <stdbool.h>
#include "transport/net/tls.h"

/* The certificates (PEM) of every server of the organisation, relative to the data folder: the attendant writes
 * there every certificate the servers publish in their directory entries (REPL_PEERS_FILE of
 * directory/replication.h names the same file). */
#define TLS_PEERS_FILE "tls/peers.pem"

/* A client context verifying peers against DATA/TLS_PEERS_FILE (never the system's CAs: an organisation's server is
 * one whose certificate the directory lists), the name checked being the one the peer was reached by (a host name
 * against the certificate's DNS names, an address against its IP names: tls_ssl_new). With client_cert, it also
 * presents this server's own certificate (DATA/tls/cert.pem and key.pem) to servers that ask. The files change when
 * a server joins or renews its certificate: the context is made again when one did (a stat at each use). */
struct tls_peers;
struct tls_peers *tls_peers_create(const char *data_dir, bool client_cert);
/* The context as of the files now (borrowed; valid until tls_peers_destroy: a context replaced after a change of
 * the files is kept until then, so a thread that took it may go on using it; calls must not run concurrently, the
 * caller serialises them); NULL when it cannot be made (no peers file yet, or a bad one): the reason is
 * logged once per change of the files. */
struct tls_ctx *tls_peers_ctx(struct tls_peers *t);
void tls_peers_destroy(struct tls_peers **t);

/* True when ip (numeric) is a loopback address: a peer there is on this machine, reached without TLS. */
bool tls_ip_is_loopback(const char *ip);

#endif
