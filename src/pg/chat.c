/*-------------------------------------------------------------------------
 *
 * chat.c
 *	  Module entry point.  The library only works when preloaded: the
 *	  WebSocket workers and the shared memory for presence must be set up by
 *	  the postmaster, so loading it any other way is refused with a hint.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "pg/events.h"
#include "pg/settings.h"
#include "pg/shmem.h"
#include "pg/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init defines the settings, asks for shared memory and registers the
 * workers; it refuses to run outside
 * shared_preload_libraries, where nothing that follows could work.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chat must be loaded via shared_preload_libraries"),
				 errhint("Add 'chat' to shared_preload_libraries in postgresql.conf and restart the server.")));

	chat_define_settings();
	chat_shmem_install_hooks();
	/* inherited by every backend forked from now on */
	chat_events_register_callbacks();
	chat_register_workers();
}
