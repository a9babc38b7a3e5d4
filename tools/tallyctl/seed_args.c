/*
 * seed_args.c - URL, id list and split parsing for tallyctl seed.
 */
#define _DEFAULT_SOURCE
#include "seed_args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
seed_url_parse(const char *s, struct seed_url *u, const char **why)
{
	const char *host, *end, *colon, *slash;
	struct in_addr a;
	size_t hn;

	memset(u, 0, sizeof(*u));
	if (strncmp(s, "http://", 7) != 0) {
		*why = "must start with http:// (https is not supported)";
		return -1;
	}
	host = s + 7;
	slash = strchr(host, '/');
	end = slash != NULL ? slash : host + strlen(host);
	colon = memchr(host, ':', (size_t)(end - host));
	hn = (size_t)((colon != NULL ? colon : end) - host);
	if (hn == 0 || hn >= sizeof(u->host)) {
		*why = "has no host, or a host too long";
		return -1;
	}
	memcpy(u->host, host, hn);
	u->port = 80;
	if (colon != NULL) {
		char *pe;
		long p;

		errno = 0;
		p = strtol(colon + 1, &pe, 10);
		if (errno != 0 || pe != end || pe == colon + 1 || p < 1 ||
		    p > 65535) {
			*why = "has a bad port (1..65535)";
			return -1;
		}
		u->port = (int)p;
	}
	if (strcmp(u->host, "localhost") == 0)
		snprintf(u->ip, sizeof(u->ip), "127.0.0.1");
	else if (inet_pton(AF_INET, u->host, &a) == 1)
		(void)inet_ntop(AF_INET, &a, u->ip, sizeof(u->ip));
	else {
		*why = "host must be an IPv4 address or localhost";
		return -1;
	}
	if (slash == NULL)
		snprintf(u->path, sizeof(u->path), "/");
	else if (strlen(slash) >= sizeof(u->path)) {
		*why = "path is too long";
		return -1;
	} else
		snprintf(u->path, sizeof(u->path), "%s", slash);
	if (strpbrk(u->path, " \r\n?#") != NULL) {
		*why = "path may not hold spaces, a query or a fragment";
		return -1;
	}
	return 0;
}

int
seed_list_parse(const char *s, struct seed_list *l, const char **why)
{
	const char *p = s;

	memset(l, 0, sizeof(*l));
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);

		if (l->n == SEED_MAX_LIST) {
			*why = "has too many entries (at most 16)";
			return -1;
		}
		if (vote_copy_id(l->id[l->n], p, n) != 0) {
			*why = "holds an id that is not 1-64 of [a-z0-9_-]";
			return -1;
		}
		for (unsigned i = 0; i < l->n; i++) {
			if (strcmp(l->id[i], l->id[l->n]) == 0) {
				*why = "holds the same id twice";
				return -1;
			}
		}
		l->n++;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

int
seed_split_parse(const char *s, unsigned n, unsigned *weights, const char **why)
{
	const char *p = s;
	unsigned i = 0;
	unsigned long sum = 0;

	for (;;) {
		char *end;
		unsigned long w;

		errno = 0;
		w = strtoul(p, &end, 10);
		if (errno != 0 || end == p || w > 1000000 || *p == '-' ||
		    *p == '+' || *p == ' ') {
			*why = "must be whole numbers separated by ':', like 2:1";
			return -1;
		}
		if (i == n) {
			*why = "has more weights than there are options";
			return -1;
		}
		weights[i++] = (unsigned)w;
		sum += w;
		if (*end == '\0')
			break;
		if (*end != ':') {
			*why = "must be whole numbers separated by ':', like 2:1";
			return -1;
		}
		p = end + 1;
	}
	if (i != n) {
		*why = "needs one weight per option";
		return -1;
	}
	if (sum == 0) {
		*why = "needs at least one weight above zero";
		return -1;
	}
	return 0;
}

unsigned
seed_wrr_next(const unsigned *weights, long long *current, unsigned n)
{
	long long total = 0;
	unsigned best = 0;

	for (unsigned i = 0; i < n; i++) {
		current[i] += weights[i];
		total += weights[i];
		if (current[i] > current[best])
			best = i;
	}
	current[best] -= total;
	return best;
}
