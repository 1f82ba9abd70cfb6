/*
 * net.h
 *	  Socket helpers in the style of Redis's anet.c: each returns an fd or
 *	  -1 and fills the caller's error buffer; none logs or decides policy.
 */
#ifndef CHAT_NET_H
#define CHAT_NET_H

#include <stddef.h>

#define NET_ADDR_LEN 64

/*
 * net_listen opens a non-blocking, close-on-exec TCP listener on host:port
 * with SO_REUSEADDR and SO_REUSEPORT (several workers share one port).
 * host "*" means every IPv4 and IPv6 address.
 */
extern int	net_listen(const char *host, int port, int backlog,
					   char *err, size_t errlen);

/*
 * net_accept accepts one connection as non-blocking and close-on-exec and
 * writes the peer's address as text into addr.  Returns -1 with errno set
 * (EAGAIN when the queue is empty, EMFILE/ENFILE when out of descriptors).
 */
extern int	net_accept(int lfd, char *addr, size_t addrlen);

/* net_raise_nofile raises the soft RLIMIT_NOFILE to the hard limit. */
extern long net_raise_nofile(void);

#endif							/* CHAT_NET_H */
