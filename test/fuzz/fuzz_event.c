/*
 * fuzz_event.c
 *	  libFuzzer target: the event record codec (core/event.c).
 *
 *	  The input is one text form as the NOTIFY bus could carry it, from any
 *	  role.  Checked beyond memory safety: whatever parses is a valid record
 *	  that formats back to text the parser reads as the same record; the
 *	  bus form (no user ids) of a record parses too and names no user.
 */
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "fuzz_util.h"

static bool
same(const chat_event *a, const chat_event *b)
{
	return a->kind == b->kind && a->online == b->online &&
		a->worker == b->worker && a->expires_ms == b->expires_ms &&
		a->seq == b->seq && strcmp(a->channel, b->channel) == 0 &&
		strcmp(a->user, b->user) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	chat_event	ev,
				back;
	char		buf[CHAT_EVENT_TEXT_MAX];
	int			n;

	if (!chat_event_parse((const char *) data, size, &ev))
		return 0;
	FZ_CHECK(chat_event_is_valid(&ev));
	n = chat_event_format(&ev, true, buf, sizeof(buf));
	FZ_CHECK(n > 0 && (size_t) n < sizeof(buf) && buf[n] == '\0');
	FZ_CHECK(chat_event_parse(buf, (size_t) n, &back));
	FZ_CHECK(same(&ev, &back));
	n = chat_event_format(&ev, false, buf, sizeof(buf));
	if (ev.kind == CHAT_EV_TYPING || ev.kind == CHAT_EV_TYPING_STOP ||
		ev.kind == CHAT_EV_PRESENCE)
		FZ_CHECK(n == -1);
	else
	{
		FZ_CHECK(n > 0);
		FZ_CHECK(chat_event_parse(buf, (size_t) n, &back));
		FZ_CHECK(back.user[0] == '\0' && back.kind == ev.kind &&
				 back.seq == ev.seq);
	}
	return 0;
}
