/*
 * log.c
 *	  The core's one way to the host's log (chat_log_fn): every layer may
 *	  call it, so it sits below them all.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/server_int.h"

void
srv_log(chat_server *srv, chat_log_level level, const char *fmt,...)
{
	char		buf[512];
	va_list		ap;

	if (srv->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	srv->log(srv->log_arg, level, buf);
}
