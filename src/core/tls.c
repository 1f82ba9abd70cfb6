/*
 * tls.c
 *	  TLS for the worker's port.  Sessions are non-blocking: every call
 *	  returns at once and says, through errno, whether the socket must
 *	  become readable or writable first.  Writes are coalesced into records
 *	  of up to 16 kB, so a burst of small frames costs a few records rather
 *	  than one per frame; partial writes and moving buffers are enabled
 *	  because the outbound queue may grow between two retries.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/tls.h"

#define TLS_RECORD 16384

void	   *
tls_context(const char *cert_file, const char *key_file, char *err,
			size_t errlen)
{
	SSL_CTX    *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
	{
		snprintf(err, errlen, "could not create a TLS context");
		return NULL;
	}
	/* TLS 1.2 is the oldest version without known protocol breaks */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
						SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					 SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
		SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
		SSL_CTX_check_private_key(ctx) != 1)
	{
		unsigned long e = ERR_get_error();

		snprintf(err, errlen, "could not load \"%s\" / \"%s\": %s", cert_file,
				 key_file, e ? ERR_reason_error_string(e) : "unknown error");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
tls_context_free(void *ctx)
{
	SSL_CTX_free(ctx);
}

void	   *
tls_session(void *ctx, int fd)
{
	SSL		   *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1)
	{
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

void
tls_session_free(void *ssl)
{
	SSL_free(ssl);
}

/* tls_fail maps an OpenSSL result onto errno and clears its error queue. */
static ssize_t
tls_fail(SSL *ssl, int rc)
{
	int			e = SSL_get_error(ssl, rc);

	ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
	{
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	errno = ECONNRESET;
	return -1;
}

ssize_t
tls_read(void *ssl, void *buf, size_t len)
{
	int			n = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX : (int) len);

	return n > 0 ? n : tls_fail(ssl, n);
}

ssize_t
tls_writev(void *ssl, const struct iovec *iov, int iovcnt)
{
	unsigned char chunk[TLS_RECORD];
	size_t		len = 0;
	int			n;

	for (int i = 0; i < iovcnt && len < sizeof(chunk); i++)
	{
		size_t		take = iov[i].iov_len;

		if (take > sizeof(chunk) - len)
			take = sizeof(chunk) - len;
		memcpy(chunk + len, iov[i].iov_base, take);
		len += take;
	}
	if (len == 0)
		return 0;
	n = SSL_write(ssl, chunk, (int) len);
	if (n > 0)
		return n;
	if (tls_fail(ssl, n) == 0)
		errno = EPIPE;
	return -1;
}

bool
tls_pending(void *ssl)
{
	return SSL_pending(ssl) > 0;
}

bool
tls_wants_write(void *ssl)
{
	return SSL_want_write((SSL *) ssl);
}
