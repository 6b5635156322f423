import Testing
import Tensors
@testable import VulkanBackend

/// Every op on Vulkan against the fp32 CPU backend (the oracle, itself checked against the scalar
/// reference in TensorsTests) on random, odd shapes. Tolerance: 1e-4 of the output's scale, the
/// issue's bound for fp32. Observed errors are ~1e-6: both sides compute in fp32 and differ only
/// in summation order and in the transcendental functions (GLSL exp, our erf with < 1.2e-7
/// relative error, tanh through exp). Copies (resize, concat, clamp, binary) must be exact.
@Suite(.serialized) struct ConformanceTests {
    let cpu = Backends.cpu

    /// The same values on both backends.
    func pair(_ vk: VulkanBackend, _ values: [Float], _ shape: [Int]) throws -> (Tensor, Tensor) {
        (try vk.tensor(values, shape: shape), try cpu.tensor(values, shape: shape))
    }

    func compare(_ vk: VulkanBackend, _ v: Tensor, _ c: Tensor, _ relative: Float, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(v.shape == c.shape, "\(what): shape \(v.shape) vs \(c.shape)", sourceLocation: sourceLocation)
        expectClose(try vk.floats(v), try cpu.floats(c), relative: relative, what, sourceLocation: sourceLocation)
    }

    @Test func conv2d() throws {
        try withVulkan { vk in
            var rng = SeededRandom(seed: 11)
            for trial in 0..<8 {
                let n = rng.int(1...2), h = rng.int(3...9), w = rng.int(3...9)
                let ci = rng.int(1...9), co = rng.int(1...37)   // up to two 32-wide output tiles
                let k = trial % 3 == 2 ? 1 : 3
                let stride = trial % 4 == 1 ? 2 : 1
                let geometry = trial == 7 ? Conv2dGeometry(strideH: 2, strideW: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1)
                                          : Conv2dGeometry(stride: stride, padding: k == 3 ? 1 : 0)
                let xv = rng.floats(n * h * w * ci), wv = rng.floats(co * ci * k * k, scale: 0.5), bv = rng.floats(co)
                let (xg, xc) = try pair(vk, xv, [n, h, w, ci])
                let bias = trial != 3
                let wg = try vk.prepareConv2d(weight: vk.tensor(wv, shape: [co, ci, k, k]), bias: bias ? vk.tensor(bv, shape: [co]) : nil, geometry: geometry)
                let wc = try cpu.prepareConv2d(weight: cpu.tensor(wv, shape: [co, ci, k, k]), bias: bias ? cpu.tensor(bv, shape: [co]) : nil, geometry: geometry)
                guard let size = wc.spec.outputSize(h: h, w: w) else { continue }
                let shape = [n, size.h, size.w, co]
                // No addend, a per-(image, channel) addend, a full-size addend.
                var addend: ([Float], [Int])? = nil
                if trial % 3 == 1 { addend = (rng.floats(n * co), [n, 1, 1, co]) }
                if trial % 3 == 2 { addend = (rng.floats(Tensor.count(of: shape)), shape) }
                let ag = try addend.map { try vk.tensor($0.0, shape: $0.1) }, ac = try addend.map { try cpu.tensor($0.0, shape: $0.1) }
                let relu = trial % 2 == 0
                try compare(vk, vk.conv2d(xg, wg, addend: ag, fusedReLU: relu, outputDType: .float32),
                            cpu.conv2d(xc, wc, addend: ac, fusedReLU: relu, outputDType: .float32), 1e-4,
                            "conv2d trial \(trial) \(xg.shape) k\(k) \(geometry) relu \(relu)")
            }
        }
    }

    @Test func linearAndMatmul() throws {
        try withVulkan { vk in
            var rng = SeededRandom(seed: 12)
            for trial in 0..<6 {
                let rows = rng.int(1...40), inF = rng.int(1...70), outF = rng.int(1...45)
                let xv = rng.floats(rows * inF), wv = rng.floats(outF * inF), bv = rng.floats(outF), rv = rng.floats(rows * outF)
                let (xg, xc) = try pair(vk, xv, [rows, inF])
                let bias = trial % 2 == 0, residual = trial % 3 == 0
                let lg = try vk.prepareLinear(weight: vk.tensor(wv, shape: [outF, inF]), bias: bias ? vk.tensor(bv, shape: [outF]) : nil)
                let lc = try cpu.prepareLinear(weight: cpu.tensor(wv, shape: [outF, inF]), bias: bias ? cpu.tensor(bv, shape: [outF]) : nil)
                try compare(vk, vk.linear(xg, lg, residual: residual ? vk.tensor(rv, shape: [rows, outF]) : nil),
                            cpu.linear(xc, lc, residual: residual ? cpu.tensor(rv, shape: [rows, outF]) : nil), 1e-4,
                            "linear \(rows)x\(inF)->\(outF) bias \(bias) residual \(residual)")

                let batch = rng.int(1...3), m = rng.int(1...40), k = rng.int(1...30), n = rng.int(1...40)
                let transpose = trial % 2 == 1, shared = trial == 4
                let bShape = (shared ? [] : [batch]) + (transpose ? [n, k] : [k, n])
                let (ag, ac) = try pair(vk, rng.floats(batch * m * k), [batch, m, k])
                let (bg, bc) = try pair(vk, rng.floats(Tensor.count(of: bShape)), bShape)
                try compare(vk, vk.matmul(ag, bg, transposeB: transpose), cpu.matmul(ac, bc, transposeB: transpose), 1e-4,
                            "matmul \(batch)x\(m)x\(k)x\(n) T=\(transpose) shared \(shared)")
            }
        }
    }

    static let tiledAttention: Result<VulkanBackend, Error> = Result {
        try VulkanBackend(options: .init(validation: true, attention: .sharedMemoryTiles, cooperativeMatrix: .off))
    }

    /// Both attention shaders: one invocation per query row, and keys staged through shared memory.
    @Test(arguments: VulkanBackend.AttentionKernel.allCases)
    func attention(kernel: VulkanBackend.AttentionKernel) throws {
        let tiled = try Self.tiledAttention.get()
        defer {
            #expect(tiled.validationMessages.isEmpty, "validation layer: \(tiled.validationMessages)")
        }
        try withVulkan { shared in
            let vk = kernel == .sharedMemoryTiles ? tiled : shared
            #expect(vk.attentionKernel == kernel)
            var rng = SeededRandom(seed: 13)
            // (heads, head dim, query tokens, key tokens): head dims below, at and above the shaders'
            // 64-wide chunk (160: three chunks, the last partial), 77-token contexts, Lq ≠ Lk, more
            // than one 64-row workgroup and 16-key tile; head dim 192 takes the untiled shader.
            let cases = [(1, 8, 5, 5), (5, 16, 37, 37), (2, 40, 19, 77), (2, 160, 9, 12), (3, 24, 70, 13), (1, 64, 65, 65),
                         (1, 192, 20, 30), (1, 192, 17, 17)]
            for (heads, dim, lq, lk) in cases {
                let n = rng.int(1...2), width = heads * dim
                let (qg, qc) = try pair(vk, rng.floats(n * lq * width, scale: 2), [n, lq, width])
                let (kg, kc) = try pair(vk, rng.floats(n * lk * width, scale: 2), [n, lk, width])
                let (vg, vc) = try pair(vk, rng.floats(n * lk * width), [n, lk, width])
                try compare(vk, vk.attention(query: qg, key: kg, value: vg, heads: heads),
                            cpu.attention(query: qc, key: kc, value: vc, heads: heads), 1e-4, "attention h\(heads) d\(dim) \(lq)x\(lk)")
                try compare(vk, vk.attention(query: qg, key: kg, value: vg, heads: heads, scale: 0.3, causal: false),
                            cpu.attention(query: qc, key: kc, value: vc, heads: heads, scale: 0.3, causal: false), 1e-4, "attention scale 0.3")
                guard lq == lk else { continue }
                try compare(vk, vk.attention(query: qg, key: kg, value: vg, heads: heads, causal: true),
                            cpu.attention(query: qc, key: kc, value: vc, heads: heads, causal: true), 1e-4, "causal attention h\(heads) d\(dim) \(lq)")
            }
        }
    }

    @Test func normalisations() throws {
        try withVulkan { vk in
            var rng = SeededRandom(seed: 14)
            for trial in 0..<6 {
                let groups = [1, 2, 4, 8, 32, 3][trial]
                let c = groups * rng.int(1...4), n = rng.int(1...3), h = rng.int(1...9), w = rng.int(1...9)
                let offset: Float = trial == 3 ? 50 : 0   // a large mean: the variance must stay accurate
                let (xg, xc) = try pair(vk, rng.floats(n * h * w * c, scale: 3, offset: offset), [n, h, w, c])
                let gv = rng.floats(c), bv = rng.floats(c)
                let (gg, gc) = try pair(vk, gv, [c]), (bg, bc) = try pair(vk, bv, [c])
                let silu = trial % 2 == 1
                let ov = trial % 2 == 0 ? rng.floats(n * c, scale: 4) : nil
                let og = try ov.map { try vk.tensor($0, shape: [n, c]) }, oc = try ov.map { try cpu.tensor($0, shape: [n, c]) }
                try compare(vk, vk.groupNorm(xg, offset: og, groups: groups, weight: gg, bias: bg, eps: 1e-5, fusedSiLU: silu, outputDType: .float32),
                            cpu.groupNorm(xc, offset: oc, groups: groups, weight: gc, bias: bc, eps: 1e-5, fusedSiLU: silu, outputDType: .float32),
                            1e-4, "groupNorm g\(groups) \(xg.shape) silu \(silu) offset \(ov != nil)")
                // [N, L, C] input (a transformer's tokens) too.
                let tokens = try xg.reshaped([n, h * w, c]), tokensC = try xc.reshaped([n, h * w, c])
                try compare(vk, vk.groupNorm(tokens, groups: groups, weight: gg, bias: bg, eps: 1e-6),
                            cpu.groupNorm(tokensC, groups: groups, weight: gc, bias: bc, eps: 1e-6), 1e-4, "groupNorm tokens")
                try compare(vk, vk.layerNorm(xg, weight: gg, bias: bg, eps: 1e-6), cpu.layerNorm(xc, weight: gc, bias: bc, eps: 1e-6),
                            1e-4, "layerNorm \(xg.shape)")
            }
        }
    }

    /// Groups above 8,192 values take the three-pass path (chunk statistics merged with Chan's
    /// formula): whole and partial 4,096-value chunks, a large mean, the offset and SiLU.
    @Test func groupNormOfLargeGroups() throws {
        try withVulkan { vk in
            var rng = SeededRandom(seed: 18)
            for (n, h, w, c, groups, mean) in [(1, 64, 64, 64, 2, Float(0)), (2, 33, 45, 30, 3, 50), (1, 40, 40, 320, 32, 0)] {
                // A ramp across the picture: every chunk has its own mean, which the merge must weigh.
                let count = n * h * w * c
                let values = rng.floats(count, scale: 3, offset: mean).enumerated().map { $1 + 20 * Float($0 % (h * w * c)) / Float(h * w * c) }
                let (xg, xc) = try pair(vk, values, [n, h, w, c])
                let (gg, gc) = try pair(vk, rng.floats(c), [c]), (bg, bc) = try pair(vk, rng.floats(c), [c])
                let (og, oc) = try pair(vk, rng.floats(n * c, scale: 4), [n, c])
                for silu in [false, true] {
                    try compare(vk, vk.groupNorm(xg, offset: og, groups: groups, weight: gg, bias: bg, eps: 1e-5, fusedSiLU: silu, outputDType: .float32),
                                cpu.groupNorm(xc, offset: oc, groups: groups, weight: gc, bias: bc, eps: 1e-5, fusedSiLU: silu, outputDType: .float32),
                                1e-4, "large groupNorm \(xg.shape) g\(groups) mean \(mean) silu \(silu)")
                }
                try compare(vk, vk.groupNorm(xg, groups: groups, weight: gg, bias: bg, eps: 1e-6),
                            cpu.groupNorm(xc, groups: groups, weight: gc, bias: bc, eps: 1e-6), 1e-4, "large groupNorm without offset")
            }
        }
    }

    @Test func elementwise() throws {
        try withVulkan { vk in
            var rng = SeededRandom(seed: 15)
            let count = 1000 + rng.int(0...3000)
            let (xg, xc) = try pair(vk, rng.floats(count, scale: 8), [count])
            for kind in Activation.allCases {
                try compare(vk, vk.activation(xg, kind), cpu.activation(xc, kind), 1e-4, "\(kind)")
            }
            // Large arguments: no overflow to NaN in tanh, SiLU or GELU.
            let (bigG, bigC) = try pair(vk, [-100, -30, -9.5, 0, 9.5, 30, 100], [7])
            for kind in Activation.allCases { try compare(vk, vk.activation(bigG, kind), cpu.activation(bigC, kind), 1e-4, "\(kind) large") }
            try compare(vk, vk.clamp(xg, min: -1, max: 2), cpu.clamp(xc, min: -1, max: 2), 0, "clamp")
            try compare(vk, vk.scale(xg, by: 0.18215, adding: 0.5), cpu.scale(xc, by: 0.18215, adding: 0.5), 1e-6, "scale")
            #expect(throws: TensorError.self) { try vk.clamp(xg, min: 2, max: 1) }
            let rows = rng.int(1...9), f = rng.int(1...300)
            let (gg, gc) = try pair(vk, rng.floats(rows * 2 * f, scale: 3), [rows, 2 * f])
            try compare(vk, vk.geglu(gg), cpu.geglu(gc), 1e-4, "geglu")
            for width in [1, 77, 200] {
                let (sg, sc) = try pair(vk, rng.floats(rows * width, scale: 20), [rows, width])
                try compare(vk, vk.softmax(sg), cpu.softmax(sc), 1e-4, "softmax width \(width)")
            }
        }
    }

    @Test func broadcastingBinary() throws {
        try withVulkan { vk in
            var rng = SeededRandom(seed: 16)
            let pairs: [([Int], [Int])] = [([2, 3, 4, 5], [5]), ([2, 3, 4, 5], [2, 1, 1, 5]), ([2, 3, 4, 5], [2, 3, 4, 5]),
                                           ([3, 1, 7], [1, 4, 1]), ([6], []), ([1, 9], [4, 1]), ([2, 33, 17], [33, 1])]
            for (sa, sb) in pairs {
                let (ag, ac) = try pair(vk, rng.floats(Tensor.count(of: sa)), sa)
                let (bg, bc) = try pair(vk, rng.floats(Tensor.count(of: sb)), sb)
                for op in BinaryOp.allCases { try compare(vk, vk.binary(op, ag, bg), cpu.binary(op, ac, bc), 0, "\(op) \(sa) \(sb)") }
            }
            let (a, _) = try pair(vk, [1, 2, 3], [3])
            #expect(throws: TensorError.self) { try vk.add(a, vk.tensor([1, 2], shape: [2])) }
        }
    }

    @Test func layoutOpsAndViews() throws {
        try withVulkan { vk in
            var rng = SeededRandom(seed: 17)
            for _ in 0..<4 {
                let n = rng.int(1...3), h = rng.int(1...6), w = rng.int(1...6), c = rng.int(1...9)
                let (xg, xc) = try pair(vk, rng.floats(n * h * w * c), [n, h, w, c])
                try compare(vk, vk.upsampleNearest2x(xg), cpu.upsampleNearest2x(xc), 0, "upsample")
                let (oh, ow) = (rng.int(1...13), rng.int(1...13))
                try compare(vk, vk.resizeNearest(xg, height: oh, width: ow), cpu.resizeNearest(xc, height: oh, width: ow), 0, "resize \(oh)x\(ow)")
                let c2 = rng.int(1...7)
                let (yg, yc) = try pair(vk, rng.floats(n * h * w * c2), [n, h, w, c2])
                try compare(vk, vk.concatChannels([xg, yg, xg]), cpu.concatChannels([xc, yc, xc]), 0, "concat")
                // Slices are views at a byte offset inside a shared buffer: every op must honour it.
                let last = try xg.slice(batch: (n - 1)..<n), lastC = try xc.slice(batch: (n - 1)..<n)
                try compare(vk, vk.concatRows([xg, last]), cpu.concatRows([xc, lastC]), 0, "concatRows")
                try compare(vk, vk.activation(last, .silu), cpu.activation(lastC, .silu), 1e-4, "silu of a slice")
                try compare(vk, vk.mul(last, last), cpu.mul(lastC, lastC), 0, "mul of slices")
                try compare(vk, vk.convert(last, to: .float32), lastC, 0, "convert of a slice")
                let lastValues = try vk.floats(last), lastExpected = try cpu.floats(lastC)
                #expect(lastValues == lastExpected)
                #expect(throws: TensorError.self) { try vk.concatRows([xg, xg.reshaped([n, h * w, c])]) }
            }
            // Empty tensors pass through every path without a dispatch.
            let empty = try vk.tensor([], shape: [0, 4])
            #expect(try vk.floats(vk.activation(empty, .gelu)).isEmpty)
            #expect(try vk.concatRows([empty, vk.tensor([1, 2, 3, 4], shape: [1, 4])]).shape == [1, 4])
        }
    }

    @Test func timestepEmbeddingMatches() throws {
        try withVulkan { vk in
            for (flip, shift, dim) in [(true, Float(0), 32), (false, Float(1), 33)] {
                let g = try vk.timestepEmbedding([0, 1, 999, 500.5], dim: dim, flipSinToCos: flip, downscaleFreqShift: shift)
                let c = try cpu.timestepEmbedding([0, 1, 999, 500.5], dim: dim, flipSinToCos: flip, downscaleFreqShift: shift)
                try compare(vk, g, c, 0, "timestep embedding dim \(dim)")
            }
        }
    }
}
