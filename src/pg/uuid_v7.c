/*
 * uuid_v7.c
 *	  chat._uuid_v7(): time-ordered UUIDs (RFC 9562, version 7) for
 *	  chat.messages.id.
 *
 *	  Random (version 4) keys land anywhere in the primary key's btree, so
 *	  every insert descends to a leaf that is often cold.  Keys that grow
 *	  with time always land in the rightmost leaf, which btree caches
 *	  (its "fastpath" insert skips the descent), and ids of messages sent
 *	  together sit together on disk.  The 12 bits after the version carry
 *	  the sub-millisecond part of the clock, and a backend never hands out
 *	  a key at or below its previous one, so one worker's keys increase
 *	  strictly even when the clock stands still or steps back.  The last 62
 *	  bits are random.
 */
#include "postgres.h"

#include <time.h>

#include "fmgr.h"
#include "port.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(chat_uuid_v7);

Datum
chat_uuid_v7(PG_FUNCTION_ARGS)
{
	/* the last (milliseconds, 12-bit fraction) handed out by this backend */
	static uint64 last_ms = 0;
	static uint32 last_frac = 0;
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));
	struct timespec ts;
	uint64		ms;
	uint32		frac;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64) ts.tv_sec * 1000 + (uint64) ts.tv_nsec / 1000000;
	frac = (uint32) (((uint64) (ts.tv_nsec % 1000000) * 4096) / 1000000);
	if (ms < last_ms || (ms == last_ms && frac <= last_frac))
	{
		/* the clock did not move forward: count up from the last key */
		ms = last_ms;
		frac = last_frac + 1;
		if (frac > 0xfff)
		{
			ms++;
			frac = 0;
		}
	}
	last_ms = ms;
	last_frac = frac;

	if (!pg_strong_random(u->data + 8, 8))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	for (int i = 0; i < 6; i++)
		u->data[i] = (uint8) (ms >> (8 * (5 - i)));
	u->data[6] = (uint8) (0x70 | (frac >> 8));	/* version 7 */
	u->data[7] = (uint8) (frac & 0xff);
	u->data[8] = (uint8) (0x80 | (u->data[8] & 0x3f));	/* variant 10 */
	PG_RETURN_UUID_P(u);
}
