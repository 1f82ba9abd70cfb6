/*
 * spi_plan.h
 *	  Plans kept for the backend's life (SPI_prepare + SPI_keepplan), for
 *	  the SQL-callable C functions and triggers that run the same statements
 *	  on every call (send.c, notify_queue.c, store_spi.c).
 */
#ifndef CHAT_PG_SPI_PLAN_H
#define CHAT_PG_SPI_PLAN_H

#include "executor/spi.h"

/*
 * chat_keep_plan returns *slot, first preparing sql (nargs arguments of
 * types) and keeping the plan there when *slot is NULL.  Raises an error
 * naming the statement when it cannot be planned.  Call inside SPI.
 */
extern SPIPlanPtr chat_keep_plan(SPIPlanPtr *slot, const char *sql, int nargs,
								 Oid *types);

#endif							/* CHAT_PG_SPI_PLAN_H */
