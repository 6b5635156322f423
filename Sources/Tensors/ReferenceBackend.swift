import Foundation

/// Plain scalar Swift, written for obviousness rather than speed: the oracle that tests hold the
/// fast backends against on many random shapes. Sums accumulate in Double. It computes in fp32
/// whatever the inputs; bf16 outputs are rounded from the fp32 result.
public final class ReferenceBackend: Backend, @unchecked Sendable {
    public let computeDType: DType = .float32
    let pool = BufferPool()

    public init() {}

    public var description: String { "reference (scalar Swift)" }

    final class ConvWeights: Conv2dWeights, @unchecked Sendable {
        let spec: Conv2dSpec
        let weight: [Float], bias: [Float]?
        init(spec: Conv2dSpec, weight: [Float], bias: [Float]?) { (self.spec, self.weight, self.bias) = (spec, weight, bias) }
    }

    final class DenseWeights: LinearWeights, @unchecked Sendable {
        let inFeatures: Int, outFeatures: Int
        let weight: [Float], bias: [Float]?
        var hasBias: Bool { bias != nil }
        init(inFeatures: Int, outFeatures: Int, weight: [Float], bias: [Float]?) {
            (self.inFeatures, self.outFeatures, self.weight, self.bias) = (inFeatures, outFeatures, weight, bias)
        }
    }

    // MARK: data movement

    func values(_ t: Tensor) -> [Float] {
        if t.dtype == .float32 {
            return Array(UnsafeBufferPointer(start: t.floatPointer, count: t.count))
        }
        let p = t.host.assumingMemoryBound(to: UInt16.self)
        return (0..<t.count).map { BFloat16.float(p[$0]) }
    }

    func make(_ values: [Float], _ shape: [Int], _ dtype: DType = .float32) throws -> Tensor {
        let t = try pool.tensor(shape: shape, dtype: dtype)
        if dtype == .float32 {
            values.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { t.host.copyMemory(from: base, byteCount: bytes.count) }
        }
        } else {
            let p = t.host.assumingMemoryBound(to: UInt16.self)
            for (i, v) in values.enumerated() { p[i] = BFloat16.round(v) }
        }
        return t
    }

    public func tensor(_ values: [Float], shape: [Int]) throws -> Tensor {
        guard Tensor.checkedCount(of: shape) == values.count else {
            throw TensorError.invalidArgument(op: "tensor", message: "\(values.count) values do not fill shape \(shape)")
        }
        return try make(values, shape)
    }

    public func tensor(raw: UnsafeRawBufferPointer, format: StorageFormat, shape: [Int], dtype: DType) throws -> Tensor {
        try OpShapes.raw(raw, format, shape)
        let count = Tensor.count(of: shape)
        let decoded: [Float] = (0..<count).map { i in
            switch format {
            case .float32: return raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            case .bfloat16: return BFloat16.float(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            case .float16: return Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        }
        return try make(decoded, shape, dtype)
    }

    public func floats(_ tensor: Tensor) throws -> [Float] { values(tensor) }

    public func convert(_ x: Tensor, to dtype: DType) throws -> Tensor { try make(values(x), x.shape, dtype) }

    // MARK: weights

    public func prepareConv2d(weight: Tensor, bias: Tensor?, geometry: Conv2dGeometry) throws -> any Conv2dWeights {
        let spec = try OpShapes.conv2dWeights(weight, bias, geometry)
        return ConvWeights(spec: spec, weight: values(weight), bias: bias.map(values))
    }

    public func prepareLinear(weight: Tensor, bias: Tensor?) throws -> any LinearWeights {
        let (out, inFeatures) = try OpShapes.linearWeights(weight, bias)
        return DenseWeights(inFeatures: inFeatures, outFeatures: out, weight: values(weight), bias: bias.map(values))
    }

    func typed<T>(_ weights: Any, _ op: String) throws -> T {
        guard let w = weights as? T else {
            throw TensorError.invalidArgument(op: op, message: "weights were prepared by another backend")
        }
        return w
    }

    // MARK: ops

    public func conv2d(_ x: Tensor, _ weights: any Conv2dWeights, addend: Tensor?, fusedReLU: Bool, outputDType: DType) throws -> Tensor {
        let w: ConvWeights = try typed(weights, "conv2d")
        let s = w.spec, g = s.geometry
        let shape = try OpShapes.conv2d(x, s, addend: addend)
        let (n, h, wd, ci) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow, co) = (shape[1], shape[2], shape[3])
        let input = values(x), extra = addend.map(values)
        var out = [Float](repeating: 0, count: Tensor.count(of: shape))
        for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for o in 0..<co {
            var acc = Double(w.bias?[o] ?? 0)
            for ky in 0..<s.kernelH {
                let iy = oy * g.strideH - g.padTop + ky
                guard iy >= 0, iy < h else { continue }
                for kx in 0..<s.kernelW {
                    let ix = ox * g.strideW - g.padLeft + kx
                    guard ix >= 0, ix < wd else { continue }
                    for c in 0..<ci {
                        acc += Double(input[((b * h + iy) * wd + ix) * ci + c]) *
                            Double(w.weight[((o * ci + c) * s.kernelH + ky) * s.kernelW + kx])
                    }
                }
            }
            let at = ((b * oh + oy) * ow + ox) * co + o
            if let extra { acc += Double(extra.count == out.count ? extra[at] : extra[b * co + o]) }
            out[at] = Float(fusedReLU ? max(acc, 0) : acc)
        } } } }
        return try make(out, shape, outputDType)
    }

    public func linear(_ x: Tensor, _ weights: any LinearWeights, residual: Tensor?, outputDType: DType) throws -> Tensor {
        let w: DenseWeights = try typed(weights, "linear")
        let shape = try OpShapes.linear(x, w, residual: residual)
        let input = values(x), res = residual.map(values)
        let rows = x.count / max(1, w.inFeatures)
        var out = [Float](repeating: 0, count: rows * w.outFeatures)
        for r in 0..<rows { for o in 0..<w.outFeatures {
            var acc = Double(w.bias?[o] ?? 0)
            for i in 0..<w.inFeatures { acc += Double(input[r * w.inFeatures + i]) * Double(w.weight[o * w.inFeatures + i]) }
            out[r * w.outFeatures + o] = Float(acc + Double(res?[r * w.outFeatures + o] ?? 0))
        } }
        return try make(out, shape, outputDType)
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor {
        let p = try OpShapes.matmul(a, b, transposeB: transposeB)
        let av = values(a), bv = values(b)
        var out = [Float](repeating: 0, count: p.batch * p.m * p.n)
        for z in 0..<p.batch {
            let bz = p.sharedB ? 0 : z * p.k * p.n
            for i in 0..<p.m { for j in 0..<p.n {
                var acc = 0.0
                for k in 0..<p.k {
                    let bval = transposeB ? bv[bz + j * p.k + k] : bv[bz + k * p.n + j]
                    acc += Double(av[(z * p.m + i) * p.k + k]) * Double(bval)
                }
                out[(z * p.m + i) * p.n + j] = Float(acc)
            } }
        }
        return try make(out, p.out)
    }

    public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, scale: Float?, causal: Bool) throws -> Tensor {
        let p = try OpShapes.attention(query, key, value, heads: heads)
        let q = values(query), k = values(key), v = values(value)
        let width = heads * p.headDim
        let factor = Double(scale ?? 1 / Float(p.headDim).squareRoot())
        var out = [Float](repeating: 0, count: query.count)
        var scores = [Double](repeating: 0, count: p.lk)
        for b in 0..<p.n { for h in 0..<heads { for i in 0..<p.lq {
            let qRow = (b * p.lq + i) * width + h * p.headDim
            for j in 0..<p.lk {
                let kRow = (b * p.lk + j) * width + h * p.headDim
                var dot = 0.0
                for d in 0..<p.headDim { dot += Double(q[qRow + d]) * Double(k[kRow + d]) }
                scores[j] = causal && j > i ? -Double.infinity : dot * factor
            }
            let top = scores.max() ?? 0
            let weights = scores.map { Foundation.exp($0 - top) }
            let total = weights.reduce(0, +)
            for d in 0..<p.headDim {
                var acc = 0.0
                for j in 0..<p.lk { acc += weights[j] * Double(v[(b * p.lk + j) * width + h * p.headDim + d]) }
                out[qRow + d] = Float(acc / total)
            }
        } } }
        return try make(out, query.shape)
    }

    public func groupNorm(_ x: Tensor, offset: Tensor?, groups: Int, weight: Tensor, bias: Tensor, eps: Float,
                          fusedSiLU: Bool, outputDType: DType) throws -> Tensor {
        try OpShapes.groupNorm(x, offset: offset, groups: groups, weight: weight, bias: bias)
        var input = values(x)
        let gamma = values(weight), beta = values(bias)
        let c = x.shape[x.rank - 1], per = c / groups, images = x.shape[0]
        let pixels = x.count / max(1, images * c)
        if let offset {
            let b = values(offset)
            for i in input.indices { input[i] += b[(i / (pixels * c)) * c + i % c] }
        }
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<images { for g in 0..<groups {
            var sum = 0.0
            for p in 0..<pixels { for j in 0..<per { sum += Double(input[(b * pixels + p) * c + g * per + j]) } }
            let mean = sum / Double(pixels * per)
            var sq = 0.0
            for p in 0..<pixels { for j in 0..<per { let d = Double(input[(b * pixels + p) * c + g * per + j]) - mean; sq += d * d } }
            let rstd = 1 / (sq / Double(pixels * per) + Double(eps)).squareRoot()
            for p in 0..<pixels { for j in 0..<per {
                let ch = g * per + j, at = (b * pixels + p) * c + ch
                let y = (Double(input[at]) - mean) * rstd * Double(gamma[ch]) + Double(beta[ch])
                out[at] = Float(fusedSiLU ? y / (1 + Foundation.exp(-y)) : y)
            } }
        } }
        return try make(out, x.shape, outputDType)
    }

    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, outputDType: DType) throws -> Tensor {
        try OpShapes.layerNorm(x, weight: weight, bias: bias)
        let input = values(x), gamma = values(weight), beta = values(bias)
        let c = x.shape[x.rank - 1]
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<(x.count / max(1, c)) {
            let row = input[(r * c)..<(r * c + c)].map(Double.init)
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            let rstd = 1 / (variance + Double(eps)).squareRoot()
            for j in 0..<c { out[r * c + j] = Float((row[j] - mean) * rstd * Double(gamma[j]) + Double(beta[j])) }
        }
        return try make(out, x.shape, outputDType)
    }

    static func apply(_ kind: Activation, _ x: Double) -> Double {
        switch kind {
        case .silu: return x / (1 + Foundation.exp(-x))
        case .gelu: return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .quickGELU: return x / (1 + Foundation.exp(-1.702 * x))
        case .tanh: return Foundation.tanh(x)
        }
    }

    func map(_ x: Tensor, _ op: String, _ f: (Double) -> Double) throws -> Tensor {
        try OpShapes.requireDType(op, x)
        return try make(values(x).map { Float(f(Double($0))) }, x.shape)
    }

    public func activation(_ x: Tensor, _ kind: Activation) throws -> Tensor {
        try map(x, "activation") { ReferenceBackend.apply(kind, $0) }
    }

    public func clamp(_ x: Tensor, min lower: Float, max upper: Float) throws -> Tensor {
        guard lower <= upper else { throw TensorError.invalidArgument(op: "clamp", message: "min \(lower) above max \(upper)") }
        return try map(x, "clamp") { Swift.min(Swift.max($0, Double(lower)), Double(upper)) }
    }

    public func scale(_ x: Tensor, by multiplier: Float, adding offset: Float) throws -> Tensor {
        try map(x, "scale") { $0 * Double(multiplier) + Double(offset) }
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try OpShapes.requireDType("binary", a)
        try OpShapes.requireDType("binary", b)
        let plan = try OpShapes.broadcast(a.shape, b.shape)
        let av = values(a), bv = values(b)
        let count = Tensor.count(of: plan.shape)
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count {
            var rem = i, ia = 0, ib = 0
            for d in stride(from: plan.shape.count - 1, through: 0, by: -1) {
                let coord = rem % plan.shape[d]
                rem /= plan.shape[d]
                ia += coord * plan.aStrides[d]
                ib += coord * plan.bStrides[d]
            }
            switch op {
            case .add: out[i] = av[ia] + bv[ib]
            case .mul: out[i] = av[ia] * bv[ib]
            case .sub: out[i] = av[ia] - bv[ib]
            }
        }
        return try make(out, plan.shape)
    }

    public func geglu(_ x: Tensor, outputDType: DType) throws -> Tensor {
        let shape = try OpShapes.geglu(x)
        let input = values(x), f = shape[shape.count - 1]
        var out = [Float](repeating: 0, count: Tensor.count(of: shape))
        for r in 0..<(out.count / max(1, f)) { for j in 0..<f {
            out[r * f + j] = Float(Double(input[r * 2 * f + j]) * ReferenceBackend.apply(.gelu, Double(input[r * 2 * f + f + j])))
        } }
        return try make(out, shape, outputDType)
    }

    public func softmax(_ x: Tensor) throws -> Tensor {
        try OpShapes.requireDType("softmax", x)
        try OpShapes.requireRank("softmax", x, 1...8)
        let input = values(x), c = x.shape[x.rank - 1]
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<(x.count / max(1, c)) {
            let row = input[(r * c)..<(r * c + c)].map(Double.init)
            let top = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - top) }
            let total = e.reduce(0, +)
            for j in 0..<c { out[r * c + j] = Float(e[j] / total) }
        }
        return try make(out, x.shape)
    }

    public func resizeNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        let shape = try OpShapes.resize(x, height, width)
        let input = values(x)   // bf16 values are exact in fp32 and round-trip unchanged
        let (h, w, c) = (x.shape[1], x.shape[2], x.shape[3])
        var out = [Float](repeating: 0, count: Tensor.count(of: shape))
        for b in 0..<x.shape[0] { for oy in 0..<height { for ox in 0..<width { for ch in 0..<c {
            out[((b * height + oy) * width + ox) * c + ch] = input[((b * h + oy * h / height) * w + ox * w / width) * c + ch]
        } } } }
        return try make(out, shape, x.dtype)
    }

    public func concatChannels(_ xs: [Tensor]) throws -> Tensor {
        let shape = try OpShapes.concatChannels(xs)
        let total = shape[shape.count - 1]
        let pixels = total == 0 ? 0 : Tensor.count(of: shape) / total
        var out = [Float](repeating: 0, count: Tensor.count(of: shape))
        var offset = 0
        for x in xs {
            let v = values(x), c = x.shape[x.rank - 1]
            for p in 0..<pixels { for j in 0..<c { out[p * total + offset + j] = v[p * c + j] } }
            offset += c
        }
        return try make(out, shape, xs[0].dtype)
    }

    public func concatRows(_ xs: [Tensor]) throws -> Tensor {
        let shape = try OpShapes.concatRows(xs)
        return try make(xs.flatMap(values), shape, xs[0].dtype)
    }
}
