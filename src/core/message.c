/*
 * message.c
 *	  Release the malloc-owned parts of the exchange structs in message.h.
 */
#include <stdlib.h>
#include <string.h>

#include "core/message.h"

void
chat_message_clear(chat_message *m)
{
	free(m->sender_id);
	free(m->content);
	free(m->kind);
	free(m->attachments);
	memset(m, 0, sizeof(*m));
}

void
chat_channel_info_clear(chat_channel_info *c)
{
	for (size_t i = 0; i < c->n_online; i++)
		free(c->online[i]);
	free(c->online);
	free(c->name);
	memset(c, 0, sizeof(*c));
}
