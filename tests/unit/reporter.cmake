# tally-reporter's unit tests: each links the reporter's core library.
foreach(t page tallies)
  tally_unit_test(test_reporter_${t} unit/test_reporter_${t}.c)
  target_link_libraries(test_reporter_${t} PRIVATE tally_reporter_core)
endforeach()
