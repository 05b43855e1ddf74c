# generate.cmake - included by bench/CMakeLists.txt (so the rule belongs to the directory that
# compiles the workload blobs): workloads/footprint.c, the large-footprint workload, written at
# build time by footprint_gen (C: no scripting language needed on the build machine) into the
# build tree, where the blob rule of bench/CMakeLists.txt finds it.
add_executable(footprint_gen ${CMAKE_CURRENT_SOURCE_DIR}/workloads/footprint_gen.c)
add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/workloads/footprint.c
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/workloads
  COMMAND footprint_gen ${CMAKE_CURRENT_BINARY_DIR}/workloads/footprint.c 3000 30
  DEPENDS footprint_gen COMMENT "Generating the large-footprint workload" VERBATIM)
