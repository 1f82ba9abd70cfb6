/*
 * fuzz_store.h
 *	  A small in-memory chat_store for the WebSocket fuzz target: three
 *	  canned channels and two users, messages kept in arrays, and the
 *	  notifications the database would send (m:/u:/d:/r:/j:/l: and the
 *	  published typing and presence events) queued for the harness to hand
 *	  back through chat_server_notify().  The database is not what is fuzzed;
 *	  this only has to answer like one, including failures.
 *
 *	  A few message contents act on the store, so the fuzzer can reach the
 *	  paths that the database would otherwise trigger:
 *	    "/join"  alice joins channel 3 (j:)   "/leave"  alice leaves it (l:)
 *	    "/kick"  alice leaves channel 1 (l:)  "/resync" a notify overrun
 *	    "/fail"  this send fails              "/failbatch" the batch fails
 *	    "/faults" toggles failures of every read
 */
#ifndef CHAT_FUZZ_STORE_H
#define CHAT_FUZZ_STORE_H

#include "core/host.h"
#include "core/store.h"

#define FS_N_CHANNELS 3
#define FS_N_USERS 2

extern const char *const fs_users[FS_N_USERS];	/* "alice", "bob" */
extern const char *const fs_channel_ids[FS_N_CHANNELS];

typedef struct fs_channel
{
	const char *id;
	const char *type;
	const char *name;			/* NULL for direct */
	bool		member[FS_N_USERS];
	int64_t		read_seq[FS_N_USERS];
	chat_message *msgs;			/* msgs[i].seq == i + 1 */
	size_t		n_msgs;
	size_t		cap_msgs;
	int64_t		change;			/* edit/delete counter */
} fs_channel;

typedef struct fuzz_store
{
	fs_channel	ch[FS_N_CHANNELS];
	int			online[FS_N_USERS]; /* presence up minus down */
	char	   *others[8];		/* other users with a valid token ... */
	int			others_online[8];	/* ... and their presence count */
	int			admitted;		/* admit(+1) minus admit(-1) */
	bool		faults;			/* every read fails */
	bool		resync;			/* the harness calls chat_server_resync */
	uint64_t	next_id;
	char	  **notes;			/* payloads for chat_server_notify */
	size_t		n_notes;
	size_t		cap_notes;
} fuzz_store;

/*
 * fs_init fills st with the canned state, out with its storage callbacks
 * and host with its host services (presence, slots, publish).
 */
extern void fs_init(fuzz_store *st, chat_store *out, chat_host *host);
extern void fs_free(fuzz_store *st);

/*
 * fs_take_notes hands the queued notifications to the caller (an array of
 * malloc'd strings, *n of them) and empties the queue.
 */
extern char **fs_take_notes(fuzz_store *st, size_t *n);

#endif							/* CHAT_FUZZ_STORE_H */
