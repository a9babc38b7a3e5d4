# Issue 9: the libFuzzer targets in the normal test run. The fuzzers need
# clang and their own build (TALLY_FUZZ=ON), so one test builds them in
# <build>/fuzz-build and runs each for FUZZ_SECONDS (fuzz/run). Skipped in
# the sanitizer build, which already runs everything under ASan + UBSan.
if(NOT TALLY_FUZZ AND NOT TALLY_SANITIZE)
  add_test(NAME fuzz.all COMMAND ${CMAKE_SOURCE_DIR}/fuzz/run
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # Alone with the system tests' servers: a fuzzer takes a whole core.
  set_tests_properties(fuzz.all PROPERTIES LABELS fuzz TIMEOUT 1200
    ENVIRONMENT "FUZZ_BUILD_DIR=${CMAKE_BINARY_DIR}/fuzz-build"
    RESOURCE_LOCK system_servers)
endif()
