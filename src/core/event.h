/*
 * event.h
 *	  Event records: the hints that tell a worker to look at the tables
 *	  ("channel C has messages up to seq S", "user U left channel C"), and
 *	  the ephemeral events workers hand each other (typing, presence).
 *
 *	  One struct for every kind, and one text form for the processes that
 *	  share no memory with the workers (the NOTIFY bus, docs/architecture.md).
 *	  The shared-memory ring of the PostgreSQL side stores the struct; the
 *	  text form is only ever made and read here.  A hint is never trusted
 *	  for content: the receiver reads the table it names.
 */
#ifndef CHAT_EVENT_H
#define CHAT_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/jwt.h"
#include "core/message.h"

typedef enum chat_event_kind
{
	CHAT_EV_MESSAGE = 'm',		/* channel, seq: messages up to seq exist */
	CHAT_EV_EDIT = 'u',			/* channel, seq: that message was edited */
	CHAT_EV_DELETE = 'd',		/* channel, seq: that message was deleted */
	CHAT_EV_REACTION = 'e',		/* channel, seq: its reactions changed */
	CHAT_EV_JOIN = 'j',			/* channel, user: added, or role changed */
	CHAT_EV_LEAVE = 'l',		/* channel, user: removed */
	CHAT_EV_READ = 'r',			/* channel, seq, user: read receipt */
	CHAT_EV_TYPING = 't',		/* worker, channel, expires_ms, user */
	CHAT_EV_TYPING_STOP = 's',	/* worker, channel, user */
	CHAT_EV_PRESENCE = 'p',		/* worker, online, user */
	CHAT_EV_RESYNC = 'x'		/* hints were lost: re-read every table */
} chat_event_kind;

typedef struct chat_event
{
	char		kind;			/* a chat_event_kind */
	bool		online;			/* PRESENCE */
	int32_t		worker;			/* TYPING, TYPING_STOP, PRESENCE */
	int32_t		expires_ms;		/* TYPING, > 0 */
	int64_t		seq;			/* MESSAGE, EDIT, DELETE, REACTION, READ; >= 0 */
	chat_uuid	channel;		/* all but PRESENCE and RESYNC */
	char		user[JWT_MAX_SUB + 1];	/* "" when the record names none */
} chat_event;

/* Longest text form, with its NUL. */
#define CHAT_EVENT_TEXT_MAX (2 + 12 + CHAT_UUID_LEN + 2 + 21 + JWT_MAX_SUB + 8)

/*
 * chat_event_parse reads one text form into *ev.  Every field is checked
 * (a channel is a canonical UUID, numbers are in range, a user id is
 * 1..JWT_MAX_SUB bytes); JOIN, LEAVE and READ may name no user.  Returns
 * false, leaving *ev unspecified, for anything else.
 */
extern bool chat_event_parse(const char *text, size_t len, chat_event *ev);

/*
 * chat_event_format writes ev's text form into buf (NUL-terminated) and
 * returns its length, or -1 when it does not fit or ev is not valid.
 * Without names_users the user id is left out: JOIN, LEAVE and READ then
 * name only the channel, and the ephemeral kinds (TYPING, TYPING_STOP,
 * PRESENCE), which mean nothing without one, are refused (-1).
 */
extern int	chat_event_format(const chat_event *ev, bool names_users,
							  char *buf, size_t len);

/* chat_event_is_valid checks the fields of ev as the parser would. */
extern bool chat_event_is_valid(const chat_event *ev);

#endif							/* CHAT_EVENT_H */
