/* The unit tests' random numbers: xorshift64, reproducible from the seed in *state. */
#ifndef MEMPROF_UNIT_RAND_H
#define MEMPROF_UNIT_RAND_H

#include <stdint.h>

static inline uint64_t unit_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

#endif
