import CBLAS
import Foundation

/// OpenBLAS picks its kernels by recognising the CPU when the library loads. A CPU newer than the
/// installed OpenBLAS (Debian 12 ships 0.3.21) is not recognised and gets the generic x86-64
/// kernels ("Prescott"), about 4× slower than the AVX-512 or AVX2 ones the CPU can run.
/// `OPENBLAS_CORETYPE` overrides the choice, but only before the library loads, so a program
/// that finds the choice wrong restarts itself once with the variable set.
public enum BLASCore {
    /// The kernel family OpenBLAS chose (`Haswell`, `SkylakeX`, `Zen`, `Prescott`, …).
    public static var name: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The kernel family this CPU can run when OpenBLAS chose a weaker one, else nil.
    public static func betterCoreType(cpuFlags: Set<String>, chosen: String) -> String? {
        let chosen = chosen.lowercased()
        let avx512 = ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy(cpuFlags.contains)
        let avx2 = cpuFlags.contains("avx2") && cpuFlags.contains("fma")
        let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
        let avx2Cores = avx512Cores.union(["haswell", "zen", "skylake"])
        if avx512 && !avx512Cores.contains(chosen) && !chosen.hasPrefix("zen") { return "SkylakeX" }
        if avx2 && !avx2Cores.contains(chosen) && !chosen.hasPrefix("zen") { return "Haswell" }
        return nil
    }

    /// The CPU's feature flags from /proc/cpuinfo (empty where there is none).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    /// Restarts the running program with `OPENBLAS_CORETYPE` set when OpenBLAS chose kernels
    /// weaker than the CPU supports. Call first thing in `main`, before any thread starts.
    /// Does nothing when the variable is already set (by the user, or by the restart).
    public static func restartWithBetterKernelsIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["RUNPIPE_KEEP_BLAS_CORE"] == nil,
              let better = betterCoreType(cpuFlags: cpuFlags(), chosen: name) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure: carry on with the kernels OpenBLAS chose.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
