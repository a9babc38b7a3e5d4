/*
 * gateway_json.c - libFuzzer target: the gateway's json vote-body parser.
 *
 * parse_vote reads common bodies on a fast path of its own and hands the
 * rest to jansson; on every input it must agree with the jansson-only
 * reference, result, message and vote alike.
 */
#include "gateway_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vote fast, ref;
	const char *why_fast = NULL, *why_ref = NULL;
	enum parse_result r_fast, r_ref;

	r_fast = parse_vote(PARSE_FORMAT_JSON, (const char *)data, size, &fast,
	    &why_fast);
	r_ref = parse_vote_json_reference((const char *)data, size, &ref,
	    &why_ref);
	if (r_fast != r_ref || memcmp(&fast, &ref, sizeof(fast)) != 0 ||
	    (why_fast == NULL) != (why_ref == NULL) ||
	    (why_fast != NULL && strcmp(why_fast, why_ref) != 0))
		abort();
	return fuzz_gateway_body(PARSE_FORMAT_JSON, data, size);
}
