/*
 * citus.h
 *	  Whether this database's chat tables are distributed with Citus
 *	  (chat_distribute(), docs/scaling.md "Citus tier").
 */
#ifndef CHAT_PG_CITUS_H
#define CHAT_PG_CITUS_H

#include "postgres.h"

/*
 * chat_distributed tells whether chat_distribute() has run in this
 * database.  Needs a transaction (it reads the system caches); cheap.
 */
extern bool chat_distributed(void);

#endif							/* CHAT_PG_CITUS_H */
