#include "PortableTestKernels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *requested = "";

const char *portable_test_kernels_requested(void) { return requested; }

// OpenBLAS reads OPENBLAS_CORETYPE once, in its own constructor, which runs before this one (a
// library's constructors run before the executable's). So the variable only takes effect through a
// new image of the process: the same re-execution that `KernelPolicy.activate` does for `spio`.
// SPIO_KERNEL_CORE marks the variable as the project's own choice, so `spio` children started by
// tests treat it as their default rather than as a user's override.
__attribute__((constructor)) static void pin_portable_kernels(int argc, char **argv, char **envp) {
    (void)argc;
    (void)envp;
#if defined(__x86_64__)
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user != NULL && user[0] != '\0') {
        const char *mine = getenv("SPIO_KERNEL_CORE");
        if (mine != NULL && strcmp(mine, user) == 0) requested = user;
        return;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    setenv("SPIO_KERNEL_CORE", "Haswell", 1);
    execv("/proc/self/exe", argv);
    // If the re-execution fails the tests still run, on OpenBLAS's own choice of kernels.
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("SPIO_KERNEL_CORE");
#endif
}
