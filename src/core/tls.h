/*
 * tls.h
 *	  wss:// through OpenSSL: a server context from PEM files and
 *	  non-blocking per-connection reads and writes with errno semantics
 *	  (EAGAIN when the peer or the handshake must make progress first).
 */
#ifndef CHAT_TLS_H
#define CHAT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* tls_context loads cert and key; NULL with a reason in err. */
extern void *tls_context(const char *cert_file, const char *key_file,
						 char *err, size_t errlen);
extern void tls_context_free(void *ctx);

extern void *tls_session(void *ctx, int fd);
extern void tls_session_free(void *ssl);

/* tls_read: >0 bytes, 0 on a clean close, -1 with errno (EAGAIN...). */
extern ssize_t tls_read(void *ssl, void *buf, size_t len);

/* tls_writev writes up to one 16 kB record from iov; like writev. */
extern ssize_t tls_writev(void *ssl, const struct iovec *iov, int iovcnt);

/* Decrypted bytes OpenSSL holds that the socket will not signal. */
extern bool tls_pending(void *ssl);

/* The last operation needs the socket writable (handshake output). */
extern bool tls_wants_write(void *ssl);

#endif							/* CHAT_TLS_H */
