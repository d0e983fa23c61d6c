# XENBAKED_SANITIZE builds every target with ASan + UBSan; CI runs the whole suite that way too.
if(XENBAKED_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()
