/*
 * shmem.c
 *	  The state that several workers and SQL sessions share.  Presence lives
 *	  here and never in a table: a user is online while any worker holds one
 *	  of their connections.  Counts are kept per worker, so a worker that
 *	  restarts (and so lost every socket) clears exactly its own share and
 *	  leaves no ghost behind.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "core/jwt.h"
#include "pg/events.h"
#include "pg/gateway.h"
#include "pg/settings.h"
#include "pg/shmem.h"

/*
 * Users online at once that shared memory lists: chat.max_online_users
 * (read once, at shared memory sizing; a restart setting).  Client
 * addresses tracked for chat.max_connections_per_ip: as many (a full
 * table admits, see chat_ip_admit).
 */
#define PRESENCE_MAX_USERS chat_max_online_users

typedef struct presence_entry
{
	char		user_id[JWT_MAX_SUB + 1];	/* hash key */
	/* int32: one user may hold any number of connections per worker */
	int32		counts[CHAT_MAX_NODES];
	int32		total;
} presence_entry;

/* One client address and its connections, per worker. */
typedef struct ip_entry
{
	char		addr[64];		/* hash key, as net_accept writes it */
	int32		counts[CHAT_MAX_WORKERS];
	int32		total;
} ip_entry;

typedef struct chat_shared
{
	LWLock	   *lock;
	Oid			database;
	int32		conns[CHAT_MAX_WORKERS];	/* open WebSockets per worker */
} chat_shared;

static chat_shared *shared = NULL;
static HTAB *presence = NULL;
static HTAB *ip_table = NULL;
static shmem_request_hook_type prev_request_hook = NULL;
static shmem_startup_hook_type prev_startup_hook = NULL;

static Size
chat_shmem_size(void)
{
	return add_size(add_size(add_size(MAXALIGN(sizeof(chat_shared)),
									  hash_estimate_size(PRESENCE_MAX_USERS,
														 sizeof(presence_entry))),
							 hash_estimate_size(PRESENCE_MAX_USERS,
												sizeof(ip_entry))),
					add_size(chat_events_shmem_size(),
							 chat_gateways_shmem_size()));
}

static void
chat_shmem_request(void)
{
	if (prev_request_hook)
		prev_request_hook();
	RequestAddinShmemSpace(chat_shmem_size());
	RequestNamedLWLockTranche("chat", 1);
	RequestNamedLWLockTranche("chat events", 1);
	RequestNamedLWLockTranche("chat gateways", 1);
}

static void
chat_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_startup_hook)
		prev_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("chat", sizeof(chat_shared), &found);
	if (!found)
	{
		shared->lock = &(GetNamedLWLockTranche("chat"))->lock;
		shared->database = InvalidOid;
		memset(shared->conns, 0, sizeof(shared->conns));
	}
	memset(&info, 0, sizeof(info));
	info.keysize = JWT_MAX_SUB + 1;
	info.entrysize = sizeof(presence_entry);
	presence = ShmemInitHash("chat presence", PRESENCE_MAX_USERS,
							 PRESENCE_MAX_USERS, &info,
							 HASH_ELEM | HASH_STRINGS);
	memset(&info, 0, sizeof(info));
	info.keysize = 64;
	info.entrysize = sizeof(ip_entry);
	ip_table = ShmemInitHash("chat client addresses", PRESENCE_MAX_USERS,
							 PRESENCE_MAX_USERS, &info,
							 HASH_ELEM | HASH_STRINGS);
	chat_events_shmem_init();
	chat_gateways_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
chat_shmem_install_hooks(void)
{
	prev_request_hook = shmem_request_hook;
	shmem_request_hook = chat_shmem_request;
	prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = chat_shmem_startup;
}

static void
require_shared(void)
{
	if (shared == NULL || presence == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chat shared memory is not initialized"),
				 errhint("Add 'chat' to shared_preload_libraries.")));
}

/*
 * presence_full_warning says, at most once a minute per process, that the
 * presence table is full: the user is connected but listed offline.
 */
static void
presence_full_warning(const char *user_id)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (last != 0 && !TimestampDifferenceExceeds(last, now, 60 * 1000))
		return;
	last = now;
	ereport(WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("chat presence table is full: user \"%s\" is connected but not listed online",
					user_id),
			 errhint("Raise chat.max_online_users (now %d) and restart the server.",
					 chat_max_online_users)));
}

bool
chat_presence_add(const char *user_id, int worker)
{
	presence_entry *e;
	bool		found,
				first = false;

	if (shared == NULL || worker < 0 || worker >= CHAT_MAX_NODES)
		return false;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);

	/*
	 * A shared dynahash takes elements beyond its size from the segment's
	 * spare memory, which the lock tables need: the cap is counted here.
	 */
	e = hash_search(presence, user_id, HASH_FIND, &found);
	if (e == NULL && hash_get_num_entries(presence) < PRESENCE_MAX_USERS)
		e = hash_search(presence, user_id, HASH_ENTER_NULL, &found);
	if (e)
	{
		if (!found)
		{
			memset(e->counts, 0, sizeof(e->counts));
			e->total = 0;
		}
		e->counts[worker]++;
		first = e->total++ == 0;
	}
	LWLockRelease(shared->lock);
	if (e == NULL)
		presence_full_warning(user_id);
	return first;
}

bool
chat_presence_remove(const char *user_id, int worker)
{
	presence_entry *e;
	bool		last = false;

	if (shared == NULL || worker < 0 || worker >= CHAT_MAX_NODES)
		return false;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	e = hash_search(presence, user_id, HASH_FIND, NULL);
	if (e && e->counts[worker] > 0)
	{
		e->counts[worker]--;
		if (--e->total == 0)
		{
			last = true;
			hash_search(presence, user_id, HASH_REMOVE, NULL);
		}
	}
	LWLockRelease(shared->lock);
	return last;
}

/*
 * chat_presence_filter sets online[i] when users[i] has a live connection
 * on any worker: the one answer to "who is online", for every reader
 * (ready, the presence frame, chat_online()), under one lock for the lot.
 */
void
chat_presence_filter(const char *const *users, int n, bool *online)
{
	require_shared();
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
		online[i] = users[i] != NULL &&
			hash_search(presence, users[i], HASH_FIND, NULL) != NULL;
	LWLockRelease(shared->lock);
}

void
chat_presence_reset_worker(int worker)
{
	HASH_SEQ_STATUS seq;
	presence_entry *e;

	if (shared == NULL || worker < 0 || worker >= CHAT_MAX_WORKERS)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->conns[worker] = 0;
	{
		ip_entry   *ie;

		hash_seq_init(&seq, ip_table);
		while ((ie = hash_seq_search(&seq)) != NULL)
		{
			ie->total -= ie->counts[worker];
			ie->counts[worker] = 0;
			if (ie->total <= 0)
				hash_search(ip_table, ie->addr, HASH_REMOVE, NULL);
		}
	}
	hash_seq_init(&seq, presence);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		e->total -= e->counts[worker];
		e->counts[worker] = 0;
		if (e->total <= 0)
			hash_search(presence, e->user_id, HASH_REMOVE, NULL);
	}
	LWLockRelease(shared->lock);
}

char	  **
chat_presence_drop_node(int node, int *n_offline)
{
	HASH_SEQ_STATUS seq;
	presence_entry *e;
	char	  **users;
	int			n = 0;

	*n_offline = 0;
	if (shared == NULL || node < 0 || node >= CHAT_MAX_NODES)
		return NULL;
	/* at most every user listed: allocate before taking the lock */
	users = palloc(sizeof(char *) * PRESENCE_MAX_USERS);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, presence);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->counts[node] == 0)
			continue;
		e->total -= e->counts[node];
		e->counts[node] = 0;
		if (e->total <= 0)
		{
			if (n < PRESENCE_MAX_USERS)
				users[n++] = pstrdup(e->user_id);
			hash_search(presence, e->user_id, HASH_REMOVE, NULL);
		}
	}
	LWLockRelease(shared->lock);
	*n_offline = n;
	return users;
}

/*
 * chat_conn_admit takes (delta > 0) or returns (delta < 0) a connection
 * slot of worker, refusing to go beyond max in total.
 */
bool
chat_conn_admit(int worker, int delta, int max)
{
	bool		ok = true;

	if (shared == NULL || worker < 0 || worker >= CHAT_MAX_WORKERS)
		return true;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (delta > 0)
	{
		int64		total = 0;

		for (int i = 0; i < CHAT_MAX_WORKERS; i++)
			total += shared->conns[i];
		ok = total + delta <= max;
	}
	if (ok)
		shared->conns[worker] = Max(0, shared->conns[worker] + delta);
	LWLockRelease(shared->lock);
	return ok;
}

/*
 * chat_ip_admit counts connections per client address across workers,
 * refusing to go beyond max.  A full table admits (fails open): the
 * global chat.max_connections still holds.
 */
bool
chat_ip_admit(int worker, const char *addr, int delta, int max)
{
	ip_entry   *e;
	bool		found,
				ok = true;
	char		key[64];

	if (shared == NULL || worker < 0 || worker >= CHAT_MAX_WORKERS)
		return true;
	strlcpy(key, addr, sizeof(key));
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (delta > 0)
	{
		e = hash_search(ip_table, key, HASH_FIND, &found);
		if (e == NULL && hash_get_num_entries(ip_table) < PRESENCE_MAX_USERS)
			e = hash_search(ip_table, key, HASH_ENTER_NULL, &found);
		if (e && !found)
		{
			memset(e->counts, 0, sizeof(e->counts));
			e->total = 0;
		}
		if (e && e->total + delta > max)
			ok = false;
		else if (e)
		{
			e->counts[worker] += delta;
			e->total += delta;
		}
	}
	else
	{
		e = hash_search(ip_table, key, HASH_FIND, NULL);
		if (e && e->counts[worker] > 0)
		{
			e->counts[worker]--;
			if (--e->total <= 0)
				hash_search(ip_table, key, HASH_REMOVE, NULL);
		}
	}
	LWLockRelease(shared->lock);
	return ok;
}

Oid
chat_shared_database(void)
{
	Oid			db;

	if (shared == NULL)
		return InvalidOid;
	LWLockAcquire(shared->lock, LW_SHARED);
	db = shared->database;
	LWLockRelease(shared->lock);
	return db;
}

void
chat_set_shared_database(Oid dboid)
{
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->database = dboid;
	LWLockRelease(shared->lock);
}
