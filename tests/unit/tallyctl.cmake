# tallyctl's pure helpers (tools/tallyctl/seed_*.c, vote_json.c).
foreach(t seed decode)
  tally_unit_test(test_tallyctl_${t} unit/test_tallyctl_${t}.c)
  target_link_libraries(test_tallyctl_${t} PRIVATE tallyctl_helpers)
endforeach()
