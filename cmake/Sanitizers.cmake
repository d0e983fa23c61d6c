# XENBAKED_SANITIZE builds every target with ASan + UBSan; CI runs the whole suite that way too.
if(XENBAKED_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()

# XENBAKED_FUZZ adds the libFuzzer targets (tests/fuzz). The whole tree is compiled with coverage
# instrumentation so the fuzzers are guided through the libraries they drive, not only through
# their own file. Such a build is for the fuzzers: the libxen shim it makes cannot be preloaded
# into an uninstrumented program (the sanitizer and coverage runtimes live in the executables),
# so CI runs the test suite from a separate sanitizer build.
if(XENBAKED_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "XENBAKED_FUZZ needs clang (CC=clang CXX=clang++): libFuzzer is Clang's")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
