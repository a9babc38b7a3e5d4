/*
 * ratelimit.c - token buckets in a fixed, lock-striped table.
 */
#define _POSIX_C_SOURCE 200809L
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_SLOTS 8192 /* a power of two */
#define RATELIMIT_LOCKS 64

struct ratelimit_slot {
	char client[48];
	double tokens;
	uint64_t last_us;
};

struct ratelimit {
	double per_us;
	double burst;
	pthread_mutex_t locks[RATELIMIT_LOCKS];
	struct ratelimit_slot slots[RATELIMIT_SLOTS];
};

struct ratelimit *
ratelimit_new(long per_s, long burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	rl->per_us = (double)per_s / 1e6;
	rl->burst = (double)burst;
	for (int i = 0; i < RATELIMIT_LOCKS; i++)
		pthread_mutex_init(&rl->locks[i], NULL);
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (int i = 0; i < RATELIMIT_LOCKS; i++)
		pthread_mutex_destroy(&rl->locks[i]);
	free(rl);
}

static uint32_t
ratelimit_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

bool
ratelimit_allow(struct ratelimit *rl, const char *client, uint64_t now_us)
{
	uint32_t h = ratelimit_hash(client);
	struct ratelimit_slot *s = &rl->slots[h & (RATELIMIT_SLOTS - 1)];
	pthread_mutex_t *lock = &rl->locks[h % RATELIMIT_LOCKS];
	bool ok;

	pthread_mutex_lock(lock);
	if (strncmp(s->client, client, sizeof(s->client)) != 0) {
		strncpy(s->client, client, sizeof(s->client) - 1);
		s->client[sizeof(s->client) - 1] = '\0';
		s->tokens = rl->burst;
		s->last_us = now_us;
	}
	if (now_us > s->last_us) {
		s->tokens += (double)(now_us - s->last_us) * rl->per_us;
		if (s->tokens > rl->burst)
			s->tokens = rl->burst;
		s->last_us = now_us;
	}
	ok = s->tokens >= 1.0;
	if (ok)
		s->tokens -= 1.0;
	pthread_mutex_unlock(lock);
	return ok;
}
