#ifndef PORTABLE_TEST_KERNELS_H
#define PORTABLE_TEST_KERNELS_H

/// The test executable runs on the portable OpenBLAS kernels (Haswell), as `spio` does by default:
/// a constructor in this target re-executes the test process with `OPENBLAS_CORETYPE=Haswell`
/// before any test runs, unless the user set that variable. Without it, tests that compare an
/// in-process computation with a `spio` child (audits) or with a bound measured on the portable
/// kernels (gradient checks) would depend on the kernels OpenBLAS picks for the host's CPU.
/// Returns the kernel name the constructor asked for, or an empty string when it left OpenBLAS alone.
const char *portable_test_kernels_requested(void);

#endif
