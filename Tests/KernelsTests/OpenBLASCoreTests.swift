// OpenBLAS runs kernels of this CPU's generation: a DYNAMIC_ARCH OpenBLAS older than the CPU falls
// back to its SSE3 "Prescott" kernels (Debian 12's 0.3.21 on Zen 5 or Intel family 6 model 207), which ComputePool's set-up
// replaces by Haswell or SkylakeX ones (CKernels' openblas_core.c) unless OPENBLAS_CORETYPE chose.

import Foundation
import Kernels
import Testing

@Suite struct OpenBLASCoreTests {
    @Test func anAVX2MachineDoesNotRunPrescottKernels() {
        let core = ComputePool.openBLASCore
        print("OpenBLAS core: \(core)")
        let chosen = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        if KernelPath.best == .avx2 && (chosen == nil || chosen?.lowercased() != "prescott") {
            #expect(core.lowercased() != "prescott", "OpenBLAS runs its SSE3 kernels on an AVX2 CPU")
        }
        #expect(!core.isEmpty)
    }
}
