/*
 * tables.h
 *	  Reading and writing the extension's tables without SPI: their names,
 *	  columns and keys (tables.c).  For the C code that does a statement's
 *	  work itself (notify_queue.c, row_update.c).
 */
#ifndef CHAT_TABLES_H
#define CHAT_TABLES_H

#include "access/skey.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

extern Oid	chat_table(const char *name);
extern AttrNumber chat_column(Relation rel, const char *name);
extern void chat_equal_key(ScanKey key, Relation rel, const char *name,
						   RegProcedure eq, Datum value);
extern Snapshot chat_statement_snapshot(void);

#endif							/* CHAT_TABLES_H */
