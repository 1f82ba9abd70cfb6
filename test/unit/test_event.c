/*
 * test_event.c
 *	  Unit tests for core/event.c, the one codec of event records: every
 *	  kind round-trips through its text form, the bus form names no user,
 *	  and malformed or out-of-range text is refused.
 */
#include <stdint.h>

#include "core/event.h"
#include "unit.h"

#define CH "0b0e8f1e-3a57-4c43-9d1e-7a9c2b1f0001"

static bool
parse(const char *s, chat_event *ev)
{
	return chat_event_parse(s, strlen(s), ev);
}

/* roundtrip: text -> struct -> text gives the same text back. */
static void
roundtrip(const char *s)
{
	chat_event	ev;
	char		buf[CHAT_EVENT_TEXT_MAX];

	CHECK(parse(s, &ev));
	CHECK(chat_event_format(&ev, true, buf, sizeof(buf)) == (int) strlen(s));
	CHECK_STR(buf, s);
}

static void
test_every_kind_round_trips(void)
{
	roundtrip("m:" CH ":42");
	roundtrip("u:" CH ":1");
	roundtrip("e:" CH ":3");
	roundtrip("d:" CH ":9223372036854775807");
	roundtrip("j:" CH ":alice");
	roundtrip("l:" CH ":bob:with:colons");
	roundtrip("j:" CH);
	roundtrip("r:" CH ":7:carol");
	roundtrip("r:" CH ":7");
	roundtrip("t:3:" CH ":3000:dave");
	roundtrip("s:0:" CH ":dave");
	roundtrip("p:15:1:erin");
	roundtrip("p:2:0:erin");
	roundtrip("x:");
}

static void
test_fields_are_parsed(void)
{
	chat_event	ev;

	CHECK(parse("t:3:" CH ":3000:da:ve", &ev));
	CHECK(ev.kind == CHAT_EV_TYPING && ev.worker == 3 && ev.expires_ms == 3000);
	CHECK_STR(ev.channel, CH);
	CHECK_STR(ev.user, "da:ve");
	CHECK(parse("p:7:1:u", &ev));
	CHECK(ev.kind == CHAT_EV_PRESENCE && ev.worker == 7 && ev.online);
	CHECK(parse("r:" CH ":12:u", &ev));
	CHECK(ev.kind == CHAT_EV_READ && ev.seq == 12);
	/* upper-case hex is accepted and made canonical */
	CHECK(parse("m:0B0E8F1E-3A57-4C43-9D1E-7A9C2B1F0001:1", &ev));
	CHECK_STR(ev.channel, CH);
}

static void
test_bus_form_names_no_user(void)
{
	chat_event	ev;
	char		buf[CHAT_EVENT_TEXT_MAX];

	CHECK(parse("j:" CH ":alice", &ev));
	CHECK(chat_event_format(&ev, false, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "j:" CH);
	CHECK(parse("r:" CH ":5:alice", &ev));
	CHECK(chat_event_format(&ev, false, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "r:" CH ":5");
	/* typing and presence mean nothing without a user: never on the bus */
	CHECK(parse("t:1:" CH ":100:alice", &ev));
	CHECK(chat_event_format(&ev, false, buf, sizeof(buf)) == -1);
	CHECK(parse("s:1:" CH ":alice", &ev));
	CHECK(chat_event_format(&ev, false, buf, sizeof(buf)) == -1);
	CHECK(parse("p:1:1:alice", &ev));
	CHECK(chat_event_format(&ev, false, buf, sizeof(buf)) == -1);
}

static void
test_malformed_is_refused(void)
{
	static const char *const bad[] = {
		"", "m", "m:", "q:" CH ":1", "m:" CH, "m:" CH ":", "m:" CH ":-1",
		"m:" CH ":1x", "m:" CH ":9223372036854775808", "m:" CH ":1:u",
		"m:0b0e8f1e3a574c439d1e7a9c2b1f0001xxxx:1", "m:{" CH "}:1",
		"m:0b0e8f1e-3a57-4c43-9d1e-7a9c2b1f000g:1", "j:" CH ":",
		"j:" CH "x", "r:" CH, "r:" CH ":1:", "t:1:" CH ":0:u",
		"t:1:" CH ":3000", "t:-1:" CH ":3000:u", "t:2147483648:" CH ":1:u",
		"s:1:" CH, "p:1:2:u", "p:1:1:", "p:1:1", "p::1:u", "x:y", "x",
	};
	chat_event	ev;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &ev))
		{
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
			CHECK(!"a malformed record was accepted");
		}
}

static void
test_user_length_and_nul(void)
{
	char		text[CHAT_EVENT_TEXT_MAX + 16];
	char		user[JWT_MAX_SUB + 2];
	chat_event	ev;

	memset(user, 'a', sizeof(user));
	user[JWT_MAX_SUB] = '\0';
	snprintf(text, sizeof(text), "j:" CH ":%s", user);
	CHECK(parse(text, &ev));	/* exactly the longest user id */
	user[JWT_MAX_SUB] = 'a';
	user[JWT_MAX_SUB + 1] = '\0';
	snprintf(text, sizeof(text), "j:" CH ":%s", user);
	CHECK(!parse(text, &ev));	/* one byte longer */
	/* a NUL inside the user id is refused, not cut short */
	CHECK(!chat_event_parse("j:" CH ":a\0b", strlen("j:" CH ":a") + 2, &ev));
}

static void
test_format_bounds(void)
{
	chat_event	ev;
	char		small[8];

	CHECK(parse("m:" CH ":1", &ev));
	CHECK(chat_event_format(&ev, true, small, sizeof(small)) == -1);
	memset(&ev, 0, sizeof(ev));
	ev.kind = 'q';
	CHECK(chat_event_format(&ev, true, small, sizeof(small)) == -1);
	CHECK(!chat_event_is_valid(&ev));
	/* a channel that is not 36 bytes is not a valid record */
	memset(&ev, 0, sizeof(ev));
	ev.kind = CHAT_EV_MESSAGE;
	strcpy(ev.channel, "short");
	CHECK(!chat_event_is_valid(&ev));
}

int
main(void)
{
	RUN(test_every_kind_round_trips);
	RUN(test_fields_are_parsed);
	RUN(test_bus_form_names_no_user);
	RUN(test_malformed_is_refused);
	RUN(test_user_length_and_nul);
	RUN(test_format_bounds);
	UNIT_EXIT();
}
