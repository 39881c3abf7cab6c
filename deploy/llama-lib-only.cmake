# Included right after llama.cpp's project() call (CMAKE_PROJECT_llama.cpp_INCLUDE, see the
# Makefile and the Dockerfile). llama-cpp-python forces LLAMA_BUILD_COMMON on, which compiles
# llama.cpp's "common" library (argument parsing, chat templates, an HTTP client) and its vendored
# cpp-httplib: more than half of the build, and nothing the Python bindings load (they call
# libllama and libggml only). A normal variable shadows the forced cache entry inside llama.cpp's
# directory, so only libllama and libggml are built: 92 s instead of 201 s on 2 cores.
set(LLAMA_BUILD_COMMON OFF)
