/*
 * notify.c
 *	  LISTEN/NOTIFY reception in a background worker.
 *
 *	  SQL LISTEN is refused in a background process, and async.c delivers a
 *	  notification by "sending" protocol message 'A' to the frontend only
 *	  when whereToSendOutput is DestRemote.  A worker has no frontend, so we
 *	  install our own PQcommMethods (as pqmq.c does for parallel workers)
 *	  whose putmessage captures 'A' and drops everything else, then call
 *	  Async_Listen() from C.  No libpq, no connection slot, no pg_hba entry.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"

#include "pg/notify.h"

static chat_notify_fn notify_fn;
static void *notify_arg;

static void
cap_comm_reset(void)
{
}

static int
cap_flush(void)
{
	return 0;
}

static int
cap_flush_if_writable(void)
{
	return 0;
}

static bool
cap_is_send_pending(void)
{
	return false;
}

/*
 * cap_putmessage parses an 'A' message: int32 pid, channel\0, payload\0.
 * Errors and notices ('E', 'N') have no frontend to go to: the server log
 * already has them.
 */
static int
cap_putmessage(char msgtype, const char *s, size_t len)
{
	const char *channel,
			   *payload,
			   *end = s + len;

	if (msgtype != 'A' || len < 6 || notify_fn == NULL)
		return 0;
	channel = s + 4;
	payload = memchr(channel, '\0', end - channel);
	if (payload == NULL || ++payload >= end || memchr(payload, '\0',
													   end - payload) == NULL)
		return 0;
	notify_fn(channel, payload, notify_arg);
	return 0;
}

static void
cap_putmessage_noblock(char msgtype, const char *s, size_t len)
{
	(void) cap_putmessage(msgtype, s, len);
}

static const PQcommMethods capture_methods = {
	cap_comm_reset,
	cap_flush,
	cap_flush_if_writable,
	cap_is_send_pending,
	cap_putmessage,
	cap_putmessage_noblock
};

/*
 * chat_notify_start registers the capture and listens on channel.  Must be
 * called outside a transaction; it runs its own.
 */
void
chat_notify_start(const char *channel, chat_notify_fn fn, void *arg)
{
	notify_fn = fn;
	notify_arg = arg;
	PqCommMethods = &capture_methods;
	whereToSendOutput = DestRemote;

	StartTransactionCommand();
	Async_Listen(channel);
	CommitTransactionCommand();
}

/*
 * chat_notify_drain_now reads every notification committed so far.  The
 * signal that announces them may still be on its way; reading the queue
 * without it is what async.c itself does when the signal arrives.
 */
void
chat_notify_drain_now(void)
{
	notifyInterruptPending = true;
	ProcessNotifyInterrupt(false);
}

void
chat_notify_drain(void)
{
	if (notifyInterruptPending)
		ProcessNotifyInterrupt(false);
}
