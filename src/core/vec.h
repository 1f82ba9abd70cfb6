/*
 * vec.h
 *	  The one growable-array rule of the core: capacity doubles, and a
 *	  failed allocation leaves the array as it was.
 */
#ifndef CHAT_VEC_H
#define CHAT_VEC_H

#include <stddef.h>

/*
 * vec_reserve makes *arr (of *cap elements of elem bytes) hold at least
 * need elements.  Returns 0, or -1 (nothing changed) when out of memory.
 */
extern int	vec_reserve(void **arr, size_t *cap, size_t need, size_t elem);

#endif							/* CHAT_VEC_H */
