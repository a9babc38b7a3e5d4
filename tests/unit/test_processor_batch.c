/*
 * test_processor_batch: the latest cast per (poll, voter) within a batch.
 */
#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "check.h"

static void
set(struct store_cast *c, const char *poll, const char *voter,
    const char *option, uint64_t seq)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->vote.poll, sizeof(c->vote.poll), "%s", poll);
	snprintf(c->vote.voter, sizeof(c->vote.voter), "%s", voter);
	snprintf(c->vote.option, sizeof(c->vote.option), "%s", option);
	c->seq = seq;
}

int
main(void)
{
	struct store_cast c[8] = {0};
	const struct store_cast *out[8];
	size_t n;

	CHECK(batch_latest(c, 0, out) == 0);

	/* Out of order, repeats, two polls, an exact duplicate. */
	set(&c[0], "p", "bob", "a", 10);
	set(&c[1], "p", "alice", "a", 3);
	set(&c[2], "p", "alice", "b", 7);
	set(&c[3], "q", "alice", "x", 1);
	set(&c[4], "p", "alice", "a", 5);
	set(&c[5], "p", "bob", "a", 10);
	set(&c[6], "p", "bob", "c", 2);
	n = batch_latest(c, 7, out);
	CHECK(n == 3);
	/* Sorted by (poll, voter); highest seq of each. */
	CHECK_STR(out[0]->vote.voter, "alice");
	CHECK_STR(out[0]->vote.option, "b");
	CHECK(out[0]->seq == 7);
	CHECK_STR(out[1]->vote.voter, "bob");
	CHECK(out[1]->seq == 10);
	CHECK_STR(out[2]->vote.poll, "q");
	CHECK_STR(out[2]->vote.option, "x");

	/* A prefix voter is its own voter. */
	set(&c[0], "p", "al", "a", 1);
	set(&c[1], "p", "alice", "b", 2);
	n = batch_latest(c, 2, out);
	CHECK(n == 2);
	return check_done("test_processor_batch");
}
