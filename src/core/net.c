/*
 * net.c
 *	  Listening and accepting.  Sockets are created non-blocking and
 *	  close-on-exec from the start, so no window exists in which a forked
 *	  process could inherit them or a read could block the event loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/net.h"

int
net_listen(const char *host, int port, int backlog, char *err, size_t errlen)
{
	struct addrinfo hints,
			   *res,
			   *ai;
	char		portstr[16];
	int			rc,
				fd = -1,
				one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints,
					 &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "could not resolve \"%s\": %s", host,
				 gai_strerror(rc));
		return -1;
	}
	/* "*" prefers the IPv6 wildcard, which also takes IPv4 (v6only off) */
	for (ai = res; ai; ai = ai->ai_next)
	{
		fd = socket(ai->ai_family,
					ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
			bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
			listen(fd, backlog) != 0)
		{
			snprintf(err, errlen, "could not listen on %s:%d: %s", host, port,
					 strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	return fd;
}

int
net_accept(int lfd, char *addr, size_t addrlen)
{
	struct sockaddr_storage ss;
	socklen_t	len = sizeof(ss);
	int			fd,
				one = 1;

	fd = accept4(lfd, (struct sockaddr *) &ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	/* frames are small and latency matters more than packet count */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	addr[0] = '\0';
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, addr,
				  addrlen);
	else if (ss.ss_family == AF_INET6)
	{
		struct in6_addr *a6 = &((struct sockaddr_in6 *) &ss)->sin6_addr;

		/* report v4-mapped peers as plain IPv4 so per-IP limits match */
		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], addr, addrlen);
		else
			inet_ntop(AF_INET6, a6, addr, addrlen);
	}
	return fd;
}

long
net_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return -1;
	}
	return (long) rl.rlim_cur;
}
