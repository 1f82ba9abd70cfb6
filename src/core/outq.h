/*
 * outq.h
 *	  Outbound WebSocket data frames.  A broadcast serialises a message once
 *	  into one refcounted frame that every receiver's queue shares; each
 *	  queue drains with writev, many frames per system call.
 */
#ifndef CHAT_OUTQ_H
#define CHAT_OUTQ_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct chat_frame
{
	int			refs;
	size_t		len;
	unsigned char data[];		/* header + payload, ready for the wire */
} chat_frame;

typedef struct outq
{
	chat_frame **frames;		/* ring */
	size_t		head;
	size_t		count;
	size_t		cap;
	size_t		offset;			/* bytes of frames[head] already written */
	size_t		bytes;			/* unwritten bytes queued */
} outq;

/*
 * frame_raw makes a frame of len bytes, copied from bytes (left for the
 * caller to fill when bytes is NULL): the one place a chat_frame is made.
 */
extern chat_frame *frame_raw(const void *bytes, size_t len);

/* frame_text builds a final, unmasked text frame around payload. */
extern chat_frame *frame_text(const char *payload, size_t len);
extern void frame_unref(chat_frame *f);

extern void outq_init(outq *q);
extern void outq_clear(outq *q);

/* outq_push takes a reference to f.  -1 when out of memory. */
extern int	outq_push(outq *q, chat_frame *f);

/*
 * outq_write writes what it can through writefn (writev semantics).
 * Returns 1 when the queue is empty, 0 when the peer would block, -1 on a
 * write error.  A frame is never interleaved: offset tracks a partial one.
 */
typedef ssize_t (*outq_writev_fn) (void *arg, const struct iovec *iov,
								   int iovcnt);
extern int	outq_write(outq *q, outq_writev_fn writefn, void *arg);

#endif							/* CHAT_OUTQ_H */
