/*
 * outq.c
 *	  Refcounted WebSocket frames and the per-connection queue that writes
 *	  them with writev.  Server frames are never masked (RFC 6455 5.1), so a
 *	  frame's bytes are the same for every receiver and can be shared.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/outq.h"

#define OUTQ_IOV 64

chat_frame *
frame_raw(const void *bytes, size_t len)
{
	chat_frame *f = malloc(sizeof(chat_frame) + len);

	if (f == NULL)
		return NULL;
	f->refs = 1;
	f->len = len;
	if (bytes)
		memcpy(f->data, bytes, len);
	return f;
}

chat_frame *
frame_text(const char *payload, size_t len)
{
	size_t		hdr = len < 126 ? 2 : (len <= 0xFFFF ? 4 : 10);
	chat_frame *f = frame_raw(NULL, hdr + len);

	if (f == NULL)
		return NULL;
	f->data[0] = 0x81;			/* FIN + text */
	if (len < 126)
		f->data[1] = (unsigned char) len;
	else if (len <= 0xFFFF)
	{
		f->data[1] = 126;
		f->data[2] = (unsigned char) (len >> 8);
		f->data[3] = (unsigned char) len;
	}
	else
	{
		f->data[1] = 127;
		for (int i = 0; i < 8; i++)
			f->data[2 + i] = (unsigned char) ((uint64_t) len >> (56 - 8 * i));
	}
	memcpy(f->data + hdr, payload, len);
	return f;
}

void
frame_unref(chat_frame *f)
{
	if (f && --f->refs == 0)
		free(f);
}

void
outq_init(outq *q)
{
	memset(q, 0, sizeof(*q));
}

void
outq_clear(outq *q)
{
	for (size_t i = 0; i < q->count; i++)
		frame_unref(q->frames[(q->head + i) % q->cap]);
	free(q->frames);
	memset(q, 0, sizeof(*q));
}

/* outq_grow doubles the ring, unrolling it so head becomes 0. */
static int
outq_grow(outq *q)
{
	size_t		ncap = q->cap ? q->cap * 2 : 8;
	chat_frame **nf = malloc(ncap * sizeof(chat_frame *));

	if (nf == NULL)
		return -1;
	for (size_t i = 0; i < q->count; i++)
		nf[i] = q->frames[(q->head + i) % q->cap];
	free(q->frames);
	q->frames = nf;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

int
outq_push(outq *q, chat_frame *f)
{
	if (q->count == q->cap && outq_grow(q) != 0)
		return -1;
	q->frames[(q->head + q->count) % q->cap] = f;
	q->count++;
	q->bytes += f->len;
	f->refs++;
	return 0;
}

/* outq_consume drops n written bytes from the front of the queue. */
static void
outq_consume(outq *q, size_t n)
{
	q->bytes -= n;
	while (n > 0)
	{
		chat_frame *f = q->frames[q->head];
		size_t		left = f->len - q->offset;

		if (n < left)
		{
			q->offset += n;
			return;
		}
		n -= left;
		q->offset = 0;
		frame_unref(f);
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
}

int
outq_write(outq *q, outq_writev_fn writefn, void *arg)
{
	while (q->count > 0)
	{
		struct iovec iov[OUTQ_IOV];
		int			n = 0;
		ssize_t		w;

		for (size_t i = 0; i < q->count && n < OUTQ_IOV; i++)
		{
			chat_frame *f = q->frames[(q->head + i) % q->cap];
			size_t		off = i == 0 ? q->offset : 0;

			iov[n].iov_base = f->data + off;
			iov[n].iov_len = f->len - off;
			n++;
		}
		w = writefn(arg, iov, n);
		if (w < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		if (w == 0)
			return 0;
		outq_consume(q, (size_t) w);
	}
	return 1;
}
