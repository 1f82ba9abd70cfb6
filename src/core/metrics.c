/*
 * metrics.c
 *	  GET /metrics: the worker's counters in the Prometheus text format.
 *	  Each worker answers for itself (label worker="N"); a scraper that hits
 *	  the shared port sees whichever worker the kernel picked, so dashboards
 *	  should sum by worker over time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <time.h>

#include "core/metrics.h"
#include "core/conn.h"

typedef struct textbuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		failed;
} textbuf;

static void
			add(textbuf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
add(textbuf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;
	char	   *grown;

	if (b->failed)
		return;
	for (;;)
	{
		va_start(ap, fmt);
		/* NULL + 0 is undefined: the first call sizes with a NULL buffer */
		n = vsnprintf(b->data ? b->data + b->len : NULL, b->cap - b->len,
					  fmt, ap);
		va_end(ap);
		if (n < 0)
		{
			b->failed = true;
			return;
		}
		if ((size_t) n < b->cap - b->len)
		{
			b->len += (size_t) n;
			return;
		}
		grown = realloc(b->data, (b->cap + n + 1) * 2);
		if (grown == NULL)
		{
			b->failed = true;	/* metrics_render frees b->data */
			return;
		}
		b->data = grown;
		b->cap = (b->cap + n + 1) * 2;
	}
}

static void
counter(textbuf *b, const char *name, const char *help, int worker,
		uint64_t v)
{
	add(b, "# HELP %s %s\n# TYPE %s counter\n%s{worker=\"%d\"} %llu\n",
		name, help, name, name, worker, (unsigned long long) v);
}

/* bucket bounds of chat_histo, in microseconds and as Prometheus "le" */
static const int64_t histo_bounds_us[CHAT_HISTO_BUCKETS - 1] = {100, 250, 500,
1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000};
static const char *const histo_le[CHAT_HISTO_BUCKETS] = {"0.0001", "0.00025",
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
"0.25", "+Inf"};

int64_t
chat_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
chat_histo_add(chat_histo *h, int64_t us)
{
	int			b = 0;

	if (us < 0)
		us = 0;
	while (b < CHAT_HISTO_BUCKETS - 1 && us > histo_bounds_us[b])
		b++;
	h->buckets[b]++;
	h->sum_us += (uint64_t) us;
	h->count++;
}

static void
histogram(textbuf *b, const char *name, const char *help, const chat_histo *h,
		  int w)
{
	uint64_t	cum = 0;

	add(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < CHAT_HISTO_BUCKETS; i++)
	{
		cum += h->buckets[i];
		add(b, "%s_bucket{worker=\"%d\",le=\"%s\"} %llu\n", name, w,
			histo_le[i], (unsigned long long) cum);
	}
	add(b, "%s_sum{worker=\"%d\"} %.6f\n", name, w, h->sum_us / 1e6);
	add(b, "%s_count{worker=\"%d\"} %llu\n", name, w,
		(unsigned long long) h->count);
}

char	   *
metrics_render(chat_server *srv, size_t *len)
{
	const chat_server_stats *s = &srv->stats;
	int			w = srv->cfg.worker_id;
	textbuf		b = {NULL, 0, 0, false};

	add(&b, "# HELP chat_connections_open Open WebSocket connections.\n"
		"# TYPE chat_connections_open gauge\n"
		"chat_connections_open{worker=\"%d\"} %llu\n", w,
		(unsigned long long) s->connections_open);
	{
		uint64_t	asleep = 0;

		for (chat_conn *c = srv->conns; c; c = c->next)
			if (c->state == CONN_WS && c->ws == NULL)
				asleep++;
		add(&b, "# HELP chat_connections_hibernating Open WebSocket connections "
			"without a wslay context (idle; it comes back with the next byte).\n"
			"# TYPE chat_connections_hibernating gauge\n"
			"chat_connections_hibernating{worker=\"%d\"} %llu\n", w,
			(unsigned long long) asleep);
	}
	counter(&b, "chat_connections_total", "WebSocket connections accepted.",
			w, s->connections_total);
	counter(&b, "chat_handshakes_refused_total",
			"Connections refused while too many were still upgrading.", w,
			s->handshakes_refused);
	counter(&b, "chat_frames_in_total", "Data frames received.", w,
			s->frames_in);
	counter(&b, "chat_frames_out_total", "Data frames queued for sending.", w,
			s->frames_out);
	counter(&b, "chat_messages_persisted_total",
			"Messages stored by this worker.", w, s->messages_persisted);
	counter(&b, "chat_deliveries_total",
			"Message frames delivered to connections.", w, s->deliveries);
	counter(&b, "chat_acks_total", "Acks sent.", w, s->acks);
	counter(&b, "chat_resyncs_total",
			"Times hints were lost and every subscription was re-read.", w,
			s->resyncs);
	add(&b, "# HELP chat_errors_total Error frames sent, by code.\n"
		"# TYPE chat_errors_total counter\n");
	for (int e = CHAT_E_BAD_REQUEST; e <= CHAT_E_INTERNAL; e++)
		add(&b, "chat_errors_total{worker=\"%d\",code=\"%s\"} %llu\n", w,
			chat_err_code((chat_err) e), (unsigned long long) s->errors[e]);
	histogram(&b, "chat_batch_commit_seconds",
			  "Time to persist one group-commit batch.", &s->batch, w);
	histogram(&b, "chat_loop_iteration_seconds",
			  "CPU-bound time of one pass of the event loop (waiting excluded); "
			  "a slow pass delays every connection of the worker.", &s->loop, w);
	if (b.failed)
	{
		free(b.data);
		return NULL;
	}
	*len = b.len;
	return b.data;
}
