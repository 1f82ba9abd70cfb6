/*
 * metrics.h
 *	  Prometheus text rendering of a server's counters.
 */
#ifndef CHAT_METRICS_H
#define CHAT_METRICS_H

#include <stddef.h>

#include "core/server.h"

/* metrics_render returns malloc'd text (NULL when out of memory). */
extern char *metrics_render(chat_server *srv, size_t *len);

#endif							/* CHAT_METRICS_H */
