# Unit tests of tally-processor's pure modules (no network).
foreach(t message batch)
  tally_unit_test(test_processor_${t} unit/test_processor_${t}.c)
  target_link_libraries(test_processor_${t} PRIVATE tally_processor_core)
endforeach()
