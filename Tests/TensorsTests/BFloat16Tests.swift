import Testing
@testable import Tensors

/// bf16 compute against the reference fed with the same bf16-rounded inputs and weights. Products
/// of two bf16 numbers are exact in fp32, so matrix ops differ only in summation order: 2e-5 of the
/// output scale. Where the backend rounds an intermediate to bf16 (attention probabilities, bf16
/// outputs) the bound is one bf16 rounding: 2^-8 ≈ 4e-3 of the output scale.
@Suite(.enabled(if: CPUBackend.hardwareSupportsBFloat16, "needs AVX-512 BF16"))
struct BFloat16Tests {
    let reference = Backends.reference
    var fast: CPUBackend { Backends.bf16! }

    func quantized(_ values: [Float]) -> [Float] { values.map(BFloat16.quantize) }

    @Test func reportsItsPrecision() throws {
        #expect(fast.computeDType == .bfloat16)
        #expect(try CPUBackend(threads: 1, precision: .automatic).computeDType == .bfloat16)
        #expect(try CPUBackend(threads: 1, precision: .float32).computeDType == .float32)
    }

    @Test func convolutionAndLinear() throws {
        var rng = SeededRandom(seed: 11)
        for (ci, co, stride) in [(5, 7, 1), (16, 32, 2), (33, 17, 1)] {
            let xv = rng.floats(2 * 9 * 10 * ci), wv = rng.floats(co * ci * 9), bv = rng.floats(co)
            let g = Conv2dGeometry(stride: stride, padding: 1)
            let wf = try fast.prepareConv2d(weight: fast.tensor(wv, shape: [co, ci, 3, 3]), bias: fast.tensor(bv, shape: [co]), geometry: g)
            let wr = try reference.prepareConv2d(weight: reference.tensor(quantized(wv), shape: [co, ci, 3, 3]),
                                                 bias: reference.tensor(bv, shape: [co]), geometry: g)
            let yf = try fast.conv2d(fast.tensor(xv, shape: [2, 9, 10, ci]), wf)
            let yr = try reference.conv2d(reference.tensor(quantized(xv), shape: [2, 9, 10, ci]), wr)
            expectClose(try fast.floats(yf), try reference.floats(yr), relative: 2e-5, "bf16 conv \(ci)->\(co)")
            // A bf16 output is the fp32 result rounded once.
            let yb = try fast.conv2d(fast.tensor(xv, shape: [2, 9, 10, ci]), wf, addend: nil, outputDType: .bfloat16)
            #expect(yb.dtype == .bfloat16)
            expectClose(try fast.floats(yb), try reference.floats(yr), relative: 4e-3, "bf16 conv output")
            // A bf16 addend and a fused ReLU (TAESD's residual blocks, all in bf16).
            let addend = try fast.convert(yb, to: .bfloat16)
            let fused = try fast.conv2d(fast.tensor(xv, shape: [2, 9, 10, ci]), wf, addend: addend, fusedReLU: true, outputDType: .bfloat16)
            let expected = try reference.floats(yr).map { max(2 * $0, 0) }
            expectClose(try fast.floats(fused), expected, relative: 8e-3, "bf16 conv + bf16 addend + ReLU")
        }
        let xv = rng.floats(45 * 64), wv = rng.floats(48 * 64), bv = rng.floats(48)
        let lf = try fast.prepareLinear(weight: fast.tensor(wv, shape: [48, 64]), bias: fast.tensor(bv, shape: [48]))
        let lr = try reference.prepareLinear(weight: reference.tensor(quantized(wv), shape: [48, 64]), bias: reference.tensor(bv, shape: [48]))
        expectClose(try fast.floats(fast.linear(fast.tensor(xv, shape: [45, 64]), lf)),
                    try reference.floats(reference.linear(reference.tensor(quantized(xv), shape: [45, 64]), lr)),
                    relative: 2e-5, "bf16 linear")
    }

    @Test func attentionAndMatmul() throws {
        var rng = SeededRandom(seed: 12)
        // Fused kernels: a padded head dim (40), a context shorter than one vector (5), head dim 160,
        // and a context past 128 keys (the long-context kernel, with online rescaling across tiles).
        for (n, lq, lk, heads, dim) in [(2, 50, 77, 4, 32), (2, 13, 5, 2, 40), (1, 30, 100, 1, 160), (1, 70, 300, 2, 64)] {
            let qv = rng.floats(n * lq * heads * dim, scale: 2), kv = rng.floats(n * lk * heads * dim, scale: 2)
            let vv = rng.floats(n * lk * heads * dim)
            let yf = try fast.attention(query: fast.tensor(qv, shape: [n, lq, heads * dim]), key: fast.tensor(kv, shape: [n, lk, heads * dim]),
                                        value: fast.tensor(vv, shape: [n, lk, heads * dim]), heads: heads)
            let yr = try reference.attention(query: reference.tensor(quantized(qv), shape: [n, lq, heads * dim]),
                                             key: reference.tensor(quantized(kv), shape: [n, lk, heads * dim]),
                                             value: reference.tensor(quantized(vv), shape: [n, lk, heads * dim]), heads: heads)
            expectClose(try fast.floats(yf), try reference.floats(yr), relative: 4e-3, "bf16 attention h\(heads) d\(dim) \(lq)x\(lk)")
        }

        let av = rng.floats(3 * 20 * 30), bvals = rng.floats(3 * 30 * 10)
        expectClose(try fast.floats(fast.matmul(fast.tensor(av, shape: [3, 20, 30]), fast.tensor(bvals, shape: [3, 30, 10]))),
                    try reference.floats(reference.matmul(reference.tensor(quantized(av), shape: [3, 20, 30]),
                                                          reference.tensor(quantized(bvals), shape: [3, 30, 10]))),
                    relative: 2e-5, "bf16 matmul")
    }

    /// Normalisations and GEGLU write bf16 directly (the fused store feeding the next conv/linear).
    @Test func fusedBFloat16Stores() throws {
        var rng = SeededRandom(seed: 13)
        let x = rng.floats(2 * 6 * 6 * 64, scale: 3), g = rng.floats(64), b = rng.floats(64)
        let xf = try fast.tensor(x, shape: [2, 6, 6, 64]), xr = try reference.tensor(x, shape: [2, 6, 6, 64])
        let (gf, bf) = (try fast.tensor(g, shape: [64]), try fast.tensor(b, shape: [64]))
        let (gr, br) = (try reference.tensor(g, shape: [64]), try reference.tensor(b, shape: [64]))
        let gn = try fast.groupNorm(xf, groups: 32, weight: gf, bias: bf, eps: 1e-5, fusedSiLU: true, outputDType: .bfloat16)
        #expect(gn.dtype == .bfloat16)
        expectClose(try fast.floats(gn), try reference.floats(reference.groupNorm(xr, groups: 32, weight: gr, bias: br, eps: 1e-5, fusedSiLU: true)),
                    relative: 4e-3, "groupNorm bf16 store")
        let ln = try fast.layerNorm(xf, weight: gf, bias: bf, eps: 1e-5, outputDType: .bfloat16)
        expectClose(try fast.floats(ln), try reference.floats(reference.layerNorm(xr, weight: gr, bias: br, eps: 1e-5)),
                    relative: 4e-3, "layerNorm bf16 store")
        let gg = try fast.geglu(xf, outputDType: .bfloat16)
        expectClose(try fast.floats(gg), try reference.floats(reference.geglu(xr)), relative: 4e-3, "geglu bf16 store")
    }
}
