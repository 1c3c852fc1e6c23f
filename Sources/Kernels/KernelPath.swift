// Which compiled version of the C kernels runs: every kernel (products, LoRA, attention) has an
// AVX2/FMA/F16C version and a portable twin, chosen once from CPUID.

internal import CKernels

/// Which compiled version of the C kernels to run.
public enum KernelPath: Sendable, CaseIterable, CustomStringConvertible {
    /// AVX2/FMA/F16C code; falls back to `.portable` on a CPU without them.
    case avx2
    /// Baseline C (SSE2 on x86-64), for any CPU; tests force it to check the twin.
    case portable

    /// The fastest path this CPU runs (decided once from CPUID).
    public static let best: KernelPath = lorad_cpu_has_avx2_fma_f16c() != 0 ? .avx2 : .portable

    /// `self` if this CPU can run it, else `.portable`.
    var usable: KernelPath { self == .avx2 && KernelPath.best != .avx2 ? .portable : self }

    public var description: String { self == .avx2 ? "avx2" : "portable" }
}
