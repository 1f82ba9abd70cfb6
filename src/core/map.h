/*
 * map.h
 *	  A string-keyed hash map (open addressing, linear probing) for the
 *	  core's indexes: channel id -> room, user id -> user.  Keys are copied.
 */
#ifndef CHAT_MAP_H
#define CHAT_MAP_H

#include <stddef.h>

typedef struct map_slot
{
	char	   *key;			/* NULL: empty; MAP_TOMBSTONE: deleted */
	void	   *value;
} map_slot;

typedef struct chat_map
{
	map_slot   *slots;
	size_t		cap;			/* power of two */
	size_t		used;			/* live keys */
	size_t		filled;			/* live keys + tombstones */
} chat_map;

extern void map_init(chat_map *m);
extern void map_destroy(chat_map *m);
extern void *map_get(const chat_map *m, const char *key);

/* map_put inserts or replaces; returns 0, or -1 when out of memory. */
extern int	map_put(chat_map *m, const char *key, void *value);

/* map_del removes key and returns its value (NULL if absent). */
extern void *map_del(chat_map *m, const char *key);

/* map_value_at is slot i's value, or NULL for an empty or deleted slot. */
extern void *map_value_at(const chat_map *m, size_t i);

/*
 * map_foreach(m, i, v) runs the statement after it with v set to each live
 * value of m.  The body may map_del the current key (a deletion leaves a
 * tombstone and moves nothing) but must not map_put.
 */
#define map_foreach(m, i, v) \
	for (size_t i = 0; i < (m)->cap; i++) \
		if (((v) = map_value_at((m), i)) != NULL)

#endif							/* CHAT_MAP_H */
