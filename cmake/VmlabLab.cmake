# VmlabLab.cmake - lab builds (labs/README.md).
#
# A lab may ask students to write one file of the tree (emu/emu_privileged.c for the
# trap-and-emulate lab, backends/dbt/dbt_inline.c for the binary-translation lab). A lab build
# is an ordinary build configured with -DVMLAB_STUDENT_DIR=<folder>: every replaceable tree
# file that has a namesake in that folder is compiled from there instead. The tree's own file
# is the reference solution, so the two can never drift apart; CI grades the starter files
# against the current interfaces (scripts/run-tests.sh, labs/grade.sh).
set(VMLAB_STUDENT_DIR "" CACHE PATH
    "Lab build: compile the student's copies of the replaceable files from this folder")

# The tree files a lab build may replace (keep in step with labs/README.md).
set(VMLAB_LAB_REPLACEABLE emu/emu_privileged.c backends/dbt/dbt_inline.c mmu/page_walk.c)

# vmlab_lab_source(<var> <tree file>): the source to compile for <tree file>.
function(vmlab_lab_source out tree_file)
  list(FIND VMLAB_LAB_REPLACEABLE ${tree_file} known)
  if(known LESS 0)
    message(FATAL_ERROR "vmlab_lab_source: ${tree_file} is not in VMLAB_LAB_REPLACEABLE")
  endif()
  set(src ${CMAKE_SOURCE_DIR}/${tree_file})
  if(VMLAB_STUDENT_DIR)
    get_filename_component(name ${tree_file} NAME)
    if(EXISTS ${VMLAB_STUDENT_DIR}/${name})
      get_filename_component(src ${VMLAB_STUDENT_DIR}/${name} ABSOLUTE)
      message(STATUS "lab build: ${tree_file} compiled from ${src}")
    endif()
  endif()
  set(${out} ${src} PARENT_SCOPE)
endfunction()
