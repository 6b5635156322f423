import CKernels
import Foundation

/// The op benchmark behind `streamdiffusion bench ops`: Stable Diffusion's hottest shapes at
/// batch 1, timed as the median of repeated runs, with the machine's measured peak for scale.
public enum OpBenchmark {
    /// What an op's speed is measured in: arithmetic (GFLOP/s) or memory traffic (GB/s).
    public enum Work: Sendable {
        case flops(Double)
        case bytes(Double)
    }

    public struct Case: Sendable {
        /// Identifier shared with tools/peer_ops_bench.py.
        public let key: String
        public let summary: String
        public let work: Work
        /// Builds inputs and weights on a backend; returns the timed call.
        public let prepare: @Sendable (any Backend) throws -> () throws -> Void
    }

    public static let cases: [Case] = [
        conv(channels: 320, side: 64), conv(channels: 640, side: 32), conv(channels: 1280, side: 16),
        Case(key: "linear_4096x320x1280", summary: "linear 4096×320 → 1280",
             work: .flops(2 * 4096 * 320 * 1280)) { backend in
            let w = try backend.prepareLinear(weight: random(backend, [1280, 320], scale: 0.05), bias: random(backend, [1280]))
            let x = try activation(backend, [4096, 320])
            return { _ = try backend.linear(x, w) }
        },
        attention(key: "attention_self_4096_5x64", summary: "self-attention 4096 tokens, 5 heads × 64", context: 4096),
        attention(key: "attention_cross_4096x77_5x64", summary: "cross-attention 4096 → 77 tokens, 5 × 64", context: 77),
        // GroupNorm reads its input twice (statistics, then normalise) and writes it once.
        Case(key: "groupnorm_c320_64x64", summary: "GroupNorm(32) 320 ch @ 64×64",
             work: .bytes(3 * 4 * 320 * 64 * 64)) { backend in
            let x = try random(backend, [1, 64, 64, 320])
            let g = try random(backend, [320]), b = try random(backend, [320])
            return { _ = try backend.groupNorm(x, groups: 32, weight: g, bias: b, eps: 1e-5) }
        },
    ]

    static func conv(channels c: Int, side: Int) -> Case {
        Case(key: "conv3x3_c\(c)_\(side)x\(side)", summary: "conv 3×3 \(c) → \(c) @ \(side)×\(side)",
             work: .flops(2 * 9 * Double(c * c * side * side))) { backend in
            let w = try backend.prepareConv2d(weight: random(backend, [c, c, 3, 3], scale: 0.02), bias: random(backend, [c]),
                                              geometry: Conv2dGeometry(stride: 1, padding: 1))
            let x = try activation(backend, [1, side, side, c])
            return { _ = try backend.conv2d(x, w) }
        }
    }

    /// Two products per head: Q·Kᵀ and P·V, each 2·Lq·Lk·D flops.
    static func attention(key: String, summary: String, context: Int) -> Case {
        Case(key: key, summary: summary, work: .flops(4 * 5 * 4096 * Double(context) * 64)) { backend in
            let q = try activation(backend, [1, 4096, 320])
            let kv = try activation(backend, [1, context, 320])
            return { _ = try backend.attention(query: q, key: kv, value: kv, heads: 5) }
        }
    }

    /// Deterministic uniform values in [-scale, scale] (an LCG: fast, and the same on every run).
    public static func random(_ backend: any Backend, _ shape: [Int], scale: Float = 1) throws -> Tensor {
        var state: UInt32 = 0x1234_5678
        let values = (0..<Tensor.count(of: shape)).map { _ -> Float in
            state = state &* 1_664_525 &+ 1_013_904_223
            return (Float(state >> 8) / Float(1 << 24) - 0.5) * 2 * scale
        }
        return try backend.tensor(values, shape: shape)
    }

    /// Inputs of matrix ops arrive in the compute dtype, as they do inside the models (the
    /// normalisation before them writes that dtype directly).
    static func activation(_ backend: any Backend, _ shape: [Int]) throws -> Tensor {
        let x = try random(backend, shape)
        return x.dtype == backend.computeDType ? x : try backend.convert(x, to: backend.computeDType)
    }

    /// Milliseconds of each timed run, after `warmup` untimed runs.
    public static func time(warmup: Int, repeats: Int, _ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        return try (0..<max(1, repeats)).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
    }

    public static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Measured arithmetic peak in GFLOP/s on `threads` threads (fp32 FMA or bf16 dot products);
    /// the best of a few 0.1-second runs. Zero when the CPU lacks the instructions.
    public static func peakGFLOPS(threads: Int, bfloat16: Bool) -> Double {
        var best = 0.0
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            let flops = sd_fma_peak_flops(Int32(threads), bfloat16 ? 1 : 0, 4_000_000)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = max(best, flops / seconds / 1e9)
        }
        return best
    }

    /// memcpy bandwidth in GB/s (bytes read plus bytes written) for a buffer of `bytes`, run on
    /// `threads` threads: the yardstick for memory-bound ops.
    public static func copyGBps(bytes: Int, threads: Int) -> Double {
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let target = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { source.deallocate(); target.deallocate() }
        memset(source, 1, bytes)
        memset(target, 0, bytes)
        let ms = median(time(warmup: 3, repeats: 20) { sd_copy(Int32(threads), source, target, bytes) })
        return 2 * Double(bytes) / (ms / 1e3) / 1e9
    }
}
