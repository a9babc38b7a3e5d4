/*
 * gateway_json.c - libFuzzer target: the gateway's json vote-body parser.
 */
#include "gateway_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_gateway_body(PARSE_FORMAT_JSON, data, size);
}
