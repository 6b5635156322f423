import Testing
import Tensors
@testable import VulkanBackend

/// matmul, linear (fp32 and fp16-packed weights, bias, residual) and conv2d on cooperative matrices
/// against the fp32 CPU backend. The inputs are rounded to fp16 (11 significant bits) before the
/// fp32-accumulated products, so the bound is 4e-3 of the output's scale instead of 1e-4. Shapes
/// are odd and span several 4·TM × 4·TN blocks and 2·TK steps, so every edge is padded.
struct CooperativeProductChecks {
    let vk: VulkanBackend
    let cpu = Backends.cpu
    static let relative: Float = 4e-3

    func compare(_ on: VulkanBackend, _ v: Tensor, _ c: Tensor, _ what: String) throws {
        #expect(v.shape == c.shape, "\(what): shape \(v.shape) vs \(c.shape)")
        expectClose(try on.floats(v), try cpu.floats(c), relative: Self.relative, "cooperative matrix \(what)")
    }

    func run() throws {
        #expect(vk.cooperativeMatrix != nil)
        var rng = SeededRandom(seed: 41)
        for (batch, m, k, n, transpose, shared) in [(1, 150, 75, 70, false, false), (3, 17, 33, 129, true, false), (2, 64, 32, 64, true, true),
                                                    (1, 1, 5, 3, false, true)] {
            let bShape = (shared ? [] : [batch]) + (transpose ? [n, k] : [k, n])
            let av = rng.floats(batch * m * k), bv = rng.floats(Tensor.count(of: bShape))
            try compare(vk, vk.matmul(vk.tensor(av, shape: [batch, m, k]), vk.tensor(bv, shape: bShape), transposeB: transpose),
                        cpu.matmul(cpu.tensor(av, shape: [batch, m, k]), cpu.tensor(bv, shape: bShape), transposeB: transpose),
                        "matmul \(batch)x\(m)x\(k)x\(n) T=\(transpose) shared \(shared)")
        }
        let half = try VulkanBackend(options: .init(validation: true, weightStorage: .float16))
        for backend in [vk, half] {
            for (rows, inF, outF) in [(77, 320, 96), (5, 17, 300)] {
                let xv = rng.floats(rows * inF), wv = rng.floats(outF * inF, scale: 0.2), bv = rng.floats(outF), rv = rng.floats(rows * outF)
                let lg = try backend.prepareLinear(weight: backend.tensor(wv, shape: [outF, inF]), bias: backend.tensor(bv, shape: [outF]))
                let lc = try cpu.prepareLinear(weight: cpu.tensor(wv, shape: [outF, inF]), bias: cpu.tensor(bv, shape: [outF]))
                try compare(backend, backend.linear(backend.tensor(xv, shape: [rows, inF]), lg, residual: backend.tensor(rv, shape: [rows, outF]),
                                                    outputDType: .float32),
                            cpu.linear(cpu.tensor(xv, shape: [rows, inF]), lc, residual: cpu.tensor(rv, shape: [rows, outF]), outputDType: .float32),
                            "linear \(rows)x\(inF)->\(outF) \(backend.weightStorage)")
            }
            let (n, h, w, ci, co) = (2, 13, 11, 24, 70)
            let geometry = Conv2dGeometry(stride: 1, padding: 1)
            let xv = rng.floats(n * h * w * ci), wv = rng.floats(co * ci * 9, scale: 0.3), bv = rng.floats(co)
            let wg = try backend.prepareConv2d(weight: backend.tensor(wv, shape: [co, ci, 3, 3]), bias: backend.tensor(bv, shape: [co]), geometry: geometry)
            let wc = try cpu.prepareConv2d(weight: cpu.tensor(wv, shape: [co, ci, 3, 3]), bias: cpu.tensor(bv, shape: [co]), geometry: geometry)
            try compare(backend, backend.conv2d(backend.tensor(xv, shape: [n, h, w, ci]), wg, addend: nil, fusedReLU: true, outputDType: .float32),
                        cpu.conv2d(cpu.tensor(xv, shape: [n, h, w, ci]), wc, addend: nil, fusedReLU: true, outputDType: .float32),
                        "conv2d 3x3 \(n)x\(h)x\(w)x\(ci)->\(co) \(backend.weightStorage)")
            try backend.synchronize()
            #expect(backend.validationMessages.isEmpty, "validation layer: \(backend.validationMessages)")
        }
    }
}
