# The accounting engine over crafted record streams (accounting_engine_fuzzer.cc).
add_executable(accounting_engine_fuzzer accounting_engine_fuzzer.cc)
target_link_libraries(accounting_engine_fuzzer PRIVATE xenbaked_core tracefmt)
target_compile_options(accounting_engine_fuzzer PRIVATE -fsanitize=fuzzer)
target_link_options(accounting_engine_fuzzer PRIVATE -fsanitize=fuzzer)
