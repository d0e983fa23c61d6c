# Warnings on everywhere in the project's own code; as errors only where the project asks for it
# (scripts/build.sh, CI and development builds). A packager's or user's plain
# `cmake -DCMAKE_BUILD_TYPE=Release` build must not fail on a new compiler's new warning.
option(XENBAKED_WERROR "Treat compiler warnings as errors (CI and development builds)" OFF)
add_compile_options(-Wall -Wextra)
if(XENBAKED_WERROR)
  add_compile_options(-Werror)
endif()
