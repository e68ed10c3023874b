// Linked into moelab by sanitized builds only (the asan preset; app/CMakeLists.txt): dlclose keeps the library
// loaded. Mesa's GL and EGL drivers are dlopened and dlclosed again while allocations they made are still held,
// and LeakSanitizer can match its suppressions (tests/fuzz/lsan.supp: swrast_dri, libgallium, libEGL, ...) only
// against a library that is still mapped when it reports; an unloaded one shows as "<unknown module>" and the
// report fails the test. (Slow unwinding would name it too, but deadlocks in libgcc's unwinder under llvmpipe's
// JIT.) POSIX allows dlclose to keep a library loaded, so nothing else changes. The definition replaces the
// sanitizer runtime's weak dlclose interceptor and is exported through the runtime's dynamic symbol list.
extern "C" int dlclose(void*) { return 0; }
