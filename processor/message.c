/*
 * message.c - classify one stream message: a vote, or poison.
 */
#include "message.h"

#include <string.h>

#include "codec.h"
#include "natsconn.h"

enum message_verdict
message_decode(const char *subject, const uint8_t *data, size_t len,
    struct vote *v, const char **why)
{
	static const char prefix[] = NATSCONN_SUBJECT_PREFIX;
	const char *bad_field = NULL;

	*why = NULL;
	switch (codec_vote_decode(data, len, v, &bad_field)) {
	case CODEC_OK:
		break;
	case CODEC_INVALID:
		/* Static strings per field keep *why allocation-free. */
		if (bad_field != NULL && strcmp(bad_field, "poll") == 0)
			*why = "invalid poll";
		else if (bad_field != NULL && strcmp(bad_field, "voter") == 0)
			*why = "invalid voter";
		else if (bad_field != NULL &&
		    strcmp(bad_field, "option") == 0)
			*why = "invalid option";
		else if (bad_field != NULL &&
		    strcmp(bad_field, "cast_id") == 0)
			*why = "invalid cast_id";
		else
			*why = "invalid vote";
		return MESSAGE_POISON;
	default:
		*why = "undecodable";
		return MESSAGE_POISON;
	}
	/* A vote must be published on its own poll's subject: the subject is
	 * what nats tools, filters and per-poll limits see. */
	if (subject == NULL ||
	    strncmp(subject, prefix, sizeof(prefix) - 1) != 0 ||
	    strcmp(subject + sizeof(prefix) - 1, v->poll) != 0) {
		*why = "poll differs from subject";
		return MESSAGE_POISON;
	}
	return MESSAGE_VOTE;
}
