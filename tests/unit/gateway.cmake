# Unit tests of tally-gateway's pure modules (no network).
tally_unit_test(test_gateway_parse unit/test_gateway_parse.c)
target_link_libraries(test_gateway_parse PRIVATE tally_gateway_core)
tally_unit_test(test_gateway_page unit/test_gateway_page.c)
target_link_libraries(test_gateway_page PRIVATE tally_gateway_core)
