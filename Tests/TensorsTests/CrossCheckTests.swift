import Testing
@testable import Tensors

/// The fast CPU backend against the scalar reference on many random shapes: odd sizes, batch > 1,
/// 1 and 2 threads. fp32 tolerance: 1e-5 of the output's scale (differences come only from
/// summation order and from the kernels' polynomial exp/erf, both ~1e-7 relative).
@Suite struct CrossCheckTests {
    let reference = Backends.reference
    static let fastBackends: [CPUBackend] = [Backends.cpu, Backends.cpuSingleThread]

    /// Uploads the same values to both backends.
    func pair(_ values: [Float], _ shape: [Int], _ fast: CPUBackend) throws -> (Tensor, Tensor) {
        (try fast.tensor(values, shape: shape), try reference.tensor(values, shape: shape))
    }

    @Test(arguments: fastBackends)
    func conv2dMatchesReference(fast: CPUBackend) throws {
        var rng = SeededRandom(seed: 1)
        for trial in 0..<8 {
            let n = rng.int(1...2), h = rng.int(3...11), w = rng.int(3...11)
            let ci = rng.int(1...9), co = rng.int(1...10)
            let k = trial % 3 == 2 ? 1 : 3
            let stride = trial % 4 == 1 ? 2 : 1
            let pad = k == 3 ? 1 : 0
            let geometry = trial == 7 ? Conv2dGeometry(strideH: 2, strideW: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1)
                                      : Conv2dGeometry(stride: stride, padding: pad)
            let xv = rng.floats(n * h * w * ci), wv = rng.floats(co * ci * k * k, scale: 0.5), bv = rng.floats(co)
            let (xf, xr) = try pair(xv, [n, h, w, ci], fast)
            let wf = try fast.prepareConv2d(weight: fast.tensor(wv, shape: [co, ci, k, k]), bias: fast.tensor(bv, shape: [co]), geometry: geometry)
            let wr = try reference.prepareConv2d(weight: reference.tensor(wv, shape: [co, ci, k, k]), bias: reference.tensor(bv, shape: [co]), geometry: geometry)
            let shape = try OpShapes.conv2d(xr, wr.spec, addend: nil)
            // Trials alternate: no addend, per-(image, channel) addend, full-size addend.
            var addendValues: [Float]? = nil
            var addendShape = shape
            if trial % 3 == 1 { addendShape = [n, 1, 1, co]; addendValues = rng.floats(n * co) }
            if trial % 3 == 2 { addendValues = rng.floats(Tensor.count(of: shape)) }
            let af = try addendValues.map { try fast.tensor($0, shape: addendShape) }
            let ar = try addendValues.map { try reference.tensor($0, shape: addendShape) }
            let relu = trial % 2 == 0   // TAESD's fused ReLU, after the addend
            let yf = try fast.conv2d(xf, wf, addend: af, fusedReLU: relu, outputDType: .float32)
            let yr = try reference.conv2d(xr, wr, addend: ar, fusedReLU: relu, outputDType: .float32)
            #expect(yf.shape == yr.shape)
            expectClose(try fast.floats(yf), try reference.floats(yr), relative: 1e-5, "conv2d trial \(trial) \(xf.shape) k\(k) \(geometry) relu \(relu)")
        }
    }

    @Test(arguments: fastBackends)
    func linearAndMatmulMatchReference(fast: CPUBackend) throws {
        var rng = SeededRandom(seed: 2)
        for trial in 0..<6 {
            let rows = rng.int(1...37), inF = rng.int(1...70), outF = rng.int(1...50)
            let xv = rng.floats(rows * inF), wv = rng.floats(outF * inF), bv = rng.floats(outF), rv = rng.floats(rows * outF)
            let (xf, xr) = try pair(xv, [rows, inF], fast)
            let bias = trial % 2 == 0
            let lf = try fast.prepareLinear(weight: fast.tensor(wv, shape: [outF, inF]), bias: bias ? fast.tensor(bv, shape: [outF]) : nil)
            let lr = try reference.prepareLinear(weight: reference.tensor(wv, shape: [outF, inF]), bias: bias ? reference.tensor(bv, shape: [outF]) : nil)
            let residual = trial % 3 == 0
            let yf = try fast.linear(xf, lf, residual: residual ? fast.tensor(rv, shape: [rows, outF]) : nil)
            let yr = try reference.linear(xr, lr, residual: residual ? reference.tensor(rv, shape: [rows, outF]) : nil)
            expectClose(try fast.floats(yf), try reference.floats(yr), relative: 1e-5, "linear \(rows)x\(inF)->\(outF)")

            let batch = rng.int(1...3), m = rng.int(1...20), k = rng.int(1...30), n = rng.int(1...20)
            let transpose = trial % 2 == 1, shared = trial == 4
            let av = rng.floats(batch * m * k), bvals = rng.floats((shared ? 1 : batch) * k * n)
            let bShape = (shared ? [] : [batch]) + (transpose ? [n, k] : [k, n])
            let (af, ar) = try pair(av, [batch, m, k], fast)
            let (bf, br) = try pair(bvals, bShape, fast)
            let mf = try fast.matmul(af, bf, transposeB: transpose), mr = try reference.matmul(ar, br, transposeB: transpose)
            #expect(mf.shape == [batch, m, n])
            expectClose(try fast.floats(mf), try reference.floats(mr), relative: 1e-5, "matmul \(batch)x\(m)x\(k)x\(n) T=\(transpose)")
        }
    }

    @Test(arguments: fastBackends)
    func attentionMatchesReference(fast: CPUBackend) throws {
        var rng = SeededRandom(seed: 3)
        // (heads, head dim, query tokens, key tokens): head dims up to 160 and 77-token contexts run
        // the fused kernel (partial key tiles, padded head dims, several query blocks); head dim 192
        // runs the blocked oneDNN path used beyond 160 (the VAE's single 512-wide head).
        let cases = [(1, 8, 5, 5), (5, 16, 37, 37), (2, 40, 19, 77), (2, 160, 9, 77), (3, 24, 70, 13), (8, 5, 300, 17),
                     (2, 64, 130, 200), (1, 192, 20, 30), (4, 64, 77, 77), (2, 32, 200, 200), (1, 192, 40, 40)]
        for (heads, dim, lq, lk) in cases {
            let n = rng.int(1...2), width = heads * dim
            let (qf, qr) = try pair(rng.floats(n * lq * width, scale: 2), [n, lq, width], fast)
            let (kf, kr) = try pair(rng.floats(n * lk * width, scale: 2), [n, lk, width], fast)
            let (vf, vr) = try pair(rng.floats(n * lk * width), [n, lk, width], fast)
            let yf = try fast.attention(query: qf, key: kf, value: vf, heads: heads)
            let yr = try reference.attention(query: qr, key: kr, value: vr, heads: heads)
            expectClose(try fast.floats(yf), try reference.floats(yr), relative: 1e-5, "attention h\(heads) d\(dim) \(lq)x\(lk)")
            // Causal self-attention (CLIP's text encoder): query i sees keys 0...i.
            guard lq == lk else { continue }
            let cf = try fast.attention(query: qf, key: kf, value: vf, heads: heads, causal: true)
            let cr = try reference.attention(query: qr, key: kr, value: vr, heads: heads, causal: true)
            expectClose(try fast.floats(cf), try reference.floats(cr), relative: 1e-5, "causal attention h\(heads) d\(dim) \(lq)")
        }
    }

    @Test(arguments: fastBackends)
    func normalisationsMatchReference(fast: CPUBackend) throws {
        var rng = SeededRandom(seed: 4)
        for trial in 0..<6 {
            let groups = [1, 2, 4, 8, 32, 3][trial]
            let c = groups * rng.int(1...5), n = rng.int(1...3), h = rng.int(1...9), w = rng.int(1...9)
            let offset: Float = trial == 3 ? 50 : 0   // a large mean: the variance must stay accurate
            let (xf, xr) = try pair(rng.floats(n * h * w * c, scale: 3, offset: offset), [n, h, w, c], fast)
            let gv = rng.floats(c), bv = rng.floats(c)
            let (gf, gr) = try pair(gv, [c], fast), (bf, br) = try pair(bv, [c], fast)
            let silu = trial % 2 == 1
            // Every other trial adds a per-image, per-channel offset first (the time embedding).
            let ov = trial % 2 == 0 ? rng.floats(n * c, scale: 4) : nil
            let of = try ov.map { try fast.tensor($0, shape: [n, c]) }, or = try ov.map { try reference.tensor($0, shape: [n, c]) }
            let yf = try fast.groupNorm(xf, offset: of, groups: groups, weight: gf, bias: bf, eps: 1e-5, fusedSiLU: silu, outputDType: .float32)
            let yr = try reference.groupNorm(xr, offset: or, groups: groups, weight: gr, bias: br, eps: 1e-5, fusedSiLU: silu, outputDType: .float32)
            expectClose(try fast.floats(yf), try reference.floats(yr), relative: 1e-5, "groupNorm g\(groups) \(xf.shape) silu \(silu) offset \(ov != nil)")

            let lf = try fast.layerNorm(xf, weight: gf, bias: bf, eps: 1e-6)
            let lr = try reference.layerNorm(xr, weight: gr, bias: br, eps: 1e-6)
            expectClose(try fast.floats(lf), try reference.floats(lr), relative: 1e-5, "layerNorm \(xf.shape)")
        }
    }

    @Test(arguments: fastBackends)
    func elementwiseMatchesReference(fast: CPUBackend) throws {
        var rng = SeededRandom(seed: 5)
        let count = 1000 + rng.int(0...4000)
        let (xf, xr) = try pair(rng.floats(count, scale: 8), [count], fast)
        for kind in Activation.allCases {
            expectClose(try fast.floats(fast.activation(xf, kind)), try reference.floats(reference.activation(xr, kind)),
                        relative: 1e-5, "\(kind)")
        }
        expectClose(try fast.floats(fast.clamp(xf, min: -1, max: 2)), try reference.floats(reference.clamp(xr, min: -1, max: 2)), relative: 0, "clamp")
        expectClose(try fast.floats(fast.scale(xf, by: 0.18215, adding: 0.5)), try reference.floats(reference.scale(xr, by: 0.18215, adding: 0.5)),
                    relative: 1e-6, "scale")
        let rows = rng.int(1...9), f = rng.int(1...300)
        let (gf, gr) = try pair(rng.floats(rows * 2 * f, scale: 3), [rows, 2 * f], fast)
        expectClose(try fast.floats(fast.geglu(gf)), try reference.floats(reference.geglu(gr)), relative: 1e-5, "geglu")
        let (sf, sr) = try pair(rng.floats(rows * 77, scale: 20), [rows, 77], fast)
        expectClose(try fast.floats(fast.softmax(sf)), try reference.floats(reference.softmax(sr)), relative: 1e-5, "softmax")
    }

    @Test(arguments: fastBackends)
    func broadcastingBinaryMatchesReference(fast: CPUBackend) throws {
        var rng = SeededRandom(seed: 6)
        let pairs: [([Int], [Int])] = [([2, 3, 4, 5], [5]), ([2, 3, 4, 5], [2, 1, 1, 5]), ([2, 3, 4, 5], [2, 3, 4, 5]),
                                       ([3, 1, 7], [1, 4, 1]), ([6], []), ([1, 9], [4, 1]), ([2, 33, 17], [33, 1])]
        for (sa, sb) in pairs {
            let (af, ar) = try pair(rng.floats(Tensor.count(of: sa)), sa, fast)
            let (bf, br) = try pair(rng.floats(Tensor.count(of: sb)), sb, fast)
            for op in BinaryOp.allCases {
                let yf = try fast.binary(op, af, bf), yr = try reference.binary(op, ar, br)
                #expect(yf.shape == yr.shape)
                expectClose(try fast.floats(yf), try reference.floats(yr), relative: 0, "\(op) \(sa) \(sb)")
            }
        }
    }

    @Test(arguments: fastBackends)
    func layoutOpsMatchReference(fast: CPUBackend) throws {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<4 {
            let n = rng.int(1...3), h = rng.int(1...6), w = rng.int(1...6), c = rng.int(1...9)
            let (xf, xr) = try pair(rng.floats(n * h * w * c), [n, h, w, c], fast)
            expectClose(try fast.floats(fast.upsampleNearest2x(xf)), try reference.floats(reference.upsampleNearest2x(xr)), relative: 0, "upsample")
            let (oh, ow) = (rng.int(1...13), rng.int(1...13))   // any size: diffusers' upsample_size
            // bf16 activations resize too (TAESD keeps its activations in the compute dtype).
            let halfResized = try fast.resizeNearest(fast.convert(xf, to: .bfloat16), height: oh, width: ow)
            #expect(halfResized.dtype == .bfloat16)
            expectClose(try fast.floats(halfResized),
                        try reference.floats(reference.resizeNearest(reference.convert(xr, to: .bfloat16), height: oh, width: ow)),
                        relative: 0, "bf16 resize")
            expectClose(try fast.floats(fast.resizeNearest(xf, height: oh, width: ow)),
                        try reference.floats(reference.resizeNearest(xr, height: oh, width: ow)), relative: 0, "resize \(oh)x\(ow)")
            let c2 = rng.int(1...7)
            let (yf, yr) = try pair(rng.floats(n * h * w * c2), [n, h, w, c2], fast)
            let cf = try fast.concatChannels([xf, yf, xf]), cr = try reference.concatChannels([xr, yr, xr])
            #expect(cf.shape == [n, h, w, 2 * c + c2])
            expectClose(try fast.floats(cf), try reference.floats(cr), relative: 0, "concat")
            let rf = try fast.concatRows([xf, xf.slice(batch: 0..<1)]), rr = try reference.concatRows([xr, xr.slice(batch: 0..<1)])
            #expect(rf.shape == [n + 1, h, w, c])
            expectClose(try fast.floats(rf), try reference.floats(rr), relative: 0, "concatRows")
            #expect(throws: TensorError.self) { try fast.concatRows([xf, xf.reshaped([n, h * w, c])]) }
        }
    }
}
