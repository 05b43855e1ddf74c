# embed_blob.cmake - cmake -DIN=file.bin -DOUT=file.c -DNAME=sym -P embed_blob.cmake
# Writes `const unsigned char NAME[]` and `const unsigned long NAME_size` with the file's bytes
# (no xxd needed on a fresh machine).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
if(hexlen EQUAL 0)
  message(FATAL_ERROR "embed_blob: ${IN} is empty")
endif()
set(body "")
set(pos 0)
while(pos LESS hexlen)
  string(SUBSTRING "${hex}" ${pos} 32 chunk)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1, " chunk "${chunk}")
  string(STRIP "${chunk}" chunk)
  string(APPEND body "    ${chunk}\n")
  math(EXPR pos "${pos} + 32")
endwhile()
math(EXPR size "${hexlen} / 2")
file(WRITE ${OUT} "/* generated from ${IN} by bench/embed_blob.cmake: do not edit */\n"
  "const unsigned char ${NAME}[] = {\n${body}};\n"
  "const unsigned long ${NAME}_size = ${size};\n")
