/*
 * map.c
 *	  String-keyed hash map with linear probing and tombstones.  Rooms and
 *	  users come and go all day, so deletion must be cheap and growth must
 *	  not be triggered by tombstones alone: a rehash drops them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/map.h"

static char map_tombstone;
#define MAP_TOMBSTONE (&map_tombstone)

/* FNV-1a: short keys (uuids, user ids), no attacker-chosen seeds needed
 * because keys are authenticated ids or validated uuids. */
static uint64_t
map_hash(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	for (; *s; s++)
	{
		h ^= (unsigned char) *s;
		h *= 1099511628211ULL;
	}
	return h;
}

void
map_init(chat_map *m)
{
	memset(m, 0, sizeof(*m));
}

void
map_destroy(chat_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != MAP_TOMBSTONE)
			free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static map_slot *
map_find(const chat_map *m, const char *key)
{
	size_t		i;

	if (m->cap == 0)
		return NULL;
	i = map_hash(key) & (m->cap - 1);
	for (;;)
	{
		map_slot   *s = &m->slots[i];

		if (s->key == NULL)
			return NULL;
		if (s->key != MAP_TOMBSTONE && strcmp(s->key, key) == 0)
			return s;
		i = (i + 1) & (m->cap - 1);
	}
}

void	   *
map_get(const chat_map *m, const char *key)
{
	map_slot   *s = map_find(m, key);

	return s ? s->value : NULL;
}

/* map_rehash moves every live key into a table of newcap slots. */
static int
map_rehash(chat_map *m, size_t newcap)
{
	map_slot   *old = m->slots;
	size_t		oldcap = m->cap;
	map_slot   *slots = calloc(newcap, sizeof(map_slot));

	if (slots == NULL)
		return -1;
	m->slots = slots;
	m->cap = newcap;
	m->filled = m->used;
	for (size_t i = 0; i < oldcap; i++)
	{
		size_t		j;

		if (old[i].key == NULL || old[i].key == MAP_TOMBSTONE)
			continue;
		j = map_hash(old[i].key) & (newcap - 1);
		while (slots[j].key != NULL)
			j = (j + 1) & (newcap - 1);
		slots[j] = old[i];
	}
	free(old);
	return 0;
}

int
map_put(chat_map *m, const char *key, void *value)
{
	map_slot   *s = map_find(m, key);
	size_t		i;
	char	   *copy;

	if (s)
	{
		s->value = value;
		return 0;
	}
	/* keep the load (tombstones included) under 3/4 */
	if ((m->filled + 1) * 4 >= m->cap * 3)
	{
		size_t		newcap = m->cap ? m->cap : 16;

		while ((m->used + 1) * 2 >= newcap)
			newcap *= 2;
		if (map_rehash(m, newcap) != 0)
			return -1;
	}
	copy = strdup(key);
	if (copy == NULL)
		return -1;
	i = map_hash(key) & (m->cap - 1);
	while (m->slots[i].key != NULL && m->slots[i].key != MAP_TOMBSTONE)
		i = (i + 1) & (m->cap - 1);
	if (m->slots[i].key == NULL)
		m->filled++;
	m->slots[i].key = copy;
	m->slots[i].value = value;
	m->used++;
	return 0;
}

void	   *
map_del(chat_map *m, const char *key)
{
	map_slot   *s = map_find(m, key);
	void	   *v;

	if (s == NULL)
		return NULL;
	v = s->value;
	free(s->key);
	s->key = MAP_TOMBSTONE;
	s->value = NULL;
	m->used--;
	return v;
}

void	   *
map_value_at(const chat_map *m, size_t i)
{
	const map_slot *s = &m->slots[i];

	return s->key != NULL && s->key != MAP_TOMBSTONE ? s->value : NULL;
}
