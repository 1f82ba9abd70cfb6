/*
 * vec.c
 *	  Growable arrays (vec.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/vec.h"

int
vec_reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t		ncap;
	void	   *n;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 4;
	while (ncap < need)
	{
		if (ncap > SIZE_MAX / 2 / elem)
			return -1;
		ncap *= 2;
	}
	n = realloc(*arr, ncap * elem);
	if (n == NULL)
		return -1;
	*arr = n;
	*cap = ncap;
	return 0;
}
