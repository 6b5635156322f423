/// Shape rules of every op, shared by all backends so they accept and reject exactly the same
/// inputs and report errors the same way (`package`: the Vulkan backend is another module).
package enum OpShapes {
    package static func requireDType(_ op: String, _ x: Tensor, _ dtype: DType = .float32) throws {
        guard x.dtype == dtype else { throw TensorError.dtypeMismatch(op: op, expected: dtype, actual: x.dtype) }
    }

    package static func requireRank(_ op: String, _ x: Tensor, _ ranks: ClosedRange<Int>) throws {
        guard ranks.contains(x.rank) else {
            throw TensorError.invalidArgument(op: op, message: "expected rank \(ranks), got shape \(x.shape)")
        }
    }

    package static func requireShape(_ op: String, _ x: Tensor, _ shape: [Int]) throws {
        guard x.shape == shape else { throw TensorError.shapeMismatch(op: op, expected: shape, actual: x.shape) }
    }

    /// Output shape of a convolution of NHWC `x`.
    package static func conv2d(_ x: Tensor, _ spec: Conv2dSpec, addend: Tensor?) throws -> [Int] {
        try requireRank("conv2d", x, 4...4)
        guard x.shape[3] == spec.inChannels else {
            throw TensorError.shapeMismatch(op: "conv2d", expected: [x.shape[0], x.shape[1], x.shape[2], spec.inChannels],
                                            actual: x.shape)
        }
        guard let size = spec.outputSize(h: x.shape[1], w: x.shape[2]) else {
            throw TensorError.invalidArgument(op: "conv2d", message: "input \(x.shape) smaller than the \(spec.kernelH)x\(spec.kernelW) kernel")
        }
        let out = [x.shape[0], size.h, size.w, spec.outChannels]
        if let addend {
            guard addend.shape == out || addend.shape == [out[0], 1, 1, out[3]] else {
                throw TensorError.shapeMismatch(op: "conv2d addend", expected: out, actual: addend.shape)
            }
        }
        return out
    }

    package static func conv2dWeights(_ weight: Tensor, _ bias: Tensor?, _ geometry: Conv2dGeometry) throws -> Conv2dSpec {
        try requireRank("prepareConv2d", weight, 4...4)
        try requireDType("prepareConv2d", weight)
        let s = weight.shape
        if let bias { try requireShape("prepareConv2d bias", bias, [s[0]]); try requireDType("prepareConv2d bias", bias) }
        let g = geometry
        guard g.strideH >= 1, g.strideW >= 1, [g.padTop, g.padLeft, g.padBottom, g.padRight].allSatisfy({ $0 >= 0 }),
              s.allSatisfy({ $0 >= 1 }) else {
            throw TensorError.invalidArgument(op: "prepareConv2d", message: "bad weight \(s) or \(g)")
        }
        return Conv2dSpec(outChannels: s[0], inChannels: s[1], kernelH: s[2], kernelW: s[3], geometry: g,
                          hasBias: bias != nil)
    }

    package static func linearWeights(_ weight: Tensor, _ bias: Tensor?) throws -> (out: Int, in: Int) {
        try requireRank("prepareLinear", weight, 2...2)
        try requireDType("prepareLinear", weight)
        if let bias {
            try requireShape("prepareLinear bias", bias, [weight.shape[0]])
            try requireDType("prepareLinear bias", bias)
        }
        return (weight.shape[0], weight.shape[1])
    }

    package static func linear(_ x: Tensor, _ w: any LinearWeights, residual: Tensor?) throws -> [Int] {
        try requireRank("linear", x, 1...8)
        guard x.shape.last == w.inFeatures else {
            throw TensorError.shapeMismatch(op: "linear", expected: x.shape.dropLast() + [w.inFeatures], actual: x.shape)
        }
        let out = x.shape.dropLast() + [w.outFeatures]
        if let residual {
            try requireDType("linear residual", residual)
            try requireShape("linear residual", residual, Array(out))
        }
        return Array(out)
    }

    package struct MatmulPlan { package var batch: Int, m: Int, k: Int, n: Int, sharedB: Bool, out: [Int] }

    package static func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> MatmulPlan {
        guard a.rank >= 2, b.rank >= 2 else { throw TensorError.incompatibleShapes(op: "matmul", lhs: a.shape, rhs: b.shape) }
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let (kb, n) = transposeB ? (b.shape[b.rank - 1], b.shape[b.rank - 2]) : (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        guard k == kb, batchB.isEmpty || batchA == batchB else {
            throw TensorError.incompatibleShapes(op: "matmul", lhs: a.shape, rhs: b.shape)
        }
        return MatmulPlan(batch: Tensor.count(of: batchA), m: m, k: k, n: n, sharedB: batchB.isEmpty,
                          out: batchA + [m, n])
    }

    package static func groupNorm(_ x: Tensor, offset: Tensor?, groups: Int, weight: Tensor, bias: Tensor) throws {
        try requireDType("groupNorm", x)
        try requireRank("groupNorm", x, 3...4)
        let c = x.shape[x.rank - 1]
        guard groups >= 1, c % groups == 0 else {
            throw TensorError.invalidArgument(op: "groupNorm", message: "\(c) channels do not split into \(groups) groups")
        }
        try requireShape("groupNorm weight", weight, [c])
        try requireShape("groupNorm bias", bias, [c])
        try requireDType("groupNorm weight", weight)
        try requireDType("groupNorm bias", bias)
        if let offset {
            try requireShape("groupNorm offset", offset, [x.shape[0], c])
            try requireDType("groupNorm offset", offset)
        }
    }

    package static func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor) throws {
        try requireDType("layerNorm", x)
        try requireRank("layerNorm", x, 1...8)
        let c = x.shape[x.rank - 1]
        try requireShape("layerNorm weight", weight, [c])
        try requireShape("layerNorm bias", bias, [c])
        try requireDType("layerNorm weight", weight)
        try requireDType("layerNorm bias", bias)
    }

    /// NumPy broadcasting: the output shape and each operand's element strides in it.
    package static func broadcast(_ a: [Int], _ b: [Int]) throws -> (shape: [Int], aStrides: [Int], bStrides: [Int]) {
        let rank = max(a.count, b.count)
        guard rank <= 8 else { throw TensorError.invalidArgument(op: "binary", message: "rank above 8") }
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        var shape = [Int](repeating: 1, count: rank)
        for d in 0..<rank {
            guard pa[d] == pb[d] || pa[d] == 1 || pb[d] == 1 else {
                throw TensorError.incompatibleShapes(op: "binary", lhs: a, rhs: b)
            }
            shape[d] = max(pa[d], pb[d])
        }
        func strides(_ s: [Int]) -> [Int] {
            var out = [Int](repeating: 0, count: rank), step = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                out[d] = s[d] == 1 ? 0 : step
                step *= s[d]
            }
            return out
        }
        return (shape, strides(pa), strides(pb))
    }

    package static func geglu(_ x: Tensor) throws -> [Int] {
        try requireDType("geglu", x)
        guard let last = x.shape.last, last % 2 == 0 else {
            throw TensorError.invalidArgument(op: "geglu", message: "last dimension of \(x.shape) must be even")
        }
        return x.shape.dropLast() + [last / 2]
    }

    package struct AttentionPlan { package var n: Int, lq: Int, lk: Int, heads: Int, headDim: Int }

    package static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int) throws -> AttentionPlan {
        for (name, t) in [("query", q), ("key", k), ("value", v)] {
            guard t.rank == 3 else {
                throw TensorError.invalidArgument(op: "attention", message: "\(name) must be [N, L, H·D], got \(t.shape)")
            }
        }
        let width = q.shape[2]
        guard heads >= 1, width % heads == 0 else {
            throw TensorError.invalidArgument(op: "attention", message: "width \(width) does not split into \(heads) heads")
        }
        guard k.shape[0] == q.shape[0], k.shape[2] == width, k.shape[1] >= 1 else {
            throw TensorError.incompatibleShapes(op: "attention", lhs: q.shape, rhs: k.shape)
        }
        try requireShape("attention value", v, k.shape)
        guard q.dtype == k.dtype, k.dtype == v.dtype else {
            throw TensorError.dtypeMismatch(op: "attention", expected: q.dtype, actual: q.dtype == k.dtype ? v.dtype : k.dtype)
        }
        return AttentionPlan(n: q.shape[0], lq: q.shape[1], lk: k.shape[1], heads: heads, headDim: width / heads)
    }

    package static func resize(_ x: Tensor, _ height: Int, _ width: Int) throws -> [Int] {
        try requireRank("resizeNearest", x, 4...4)
        guard height >= 1, width >= 1, x.shape[1] >= 1, x.shape[2] >= 1,
              Tensor.checkedCount(of: [x.shape[0], height, width, x.shape[3]]) != nil else {
            throw TensorError.invalidArgument(op: "resizeNearest", message: "cannot resize \(x.shape) to \(height)×\(width)")
        }
        return [x.shape[0], height, width, x.shape[3]]
    }

    package static func concatChannels(_ xs: [Tensor]) throws -> [Int] {
        guard let first = xs.first else { throw TensorError.invalidArgument(op: "concatChannels", message: "no inputs") }
        var channels = 0
        for x in xs {
            guard x.rank == first.rank, x.shape.dropLast() == first.shape.dropLast(), x.rank >= 1 else {
                throw TensorError.incompatibleShapes(op: "concatChannels", lhs: first.shape, rhs: x.shape)
            }
            guard x.dtype == first.dtype else {
                throw TensorError.dtypeMismatch(op: "concatChannels", expected: first.dtype, actual: x.dtype)
            }
            channels += x.shape[x.rank - 1]
        }
        return first.shape.dropLast() + [channels]
    }

    package static func concatRows(_ xs: [Tensor]) throws -> [Int] {
        guard let first = xs.first, first.rank >= 1 else {
            throw TensorError.invalidArgument(op: "concatRows", message: "no inputs")
        }
        var rows = 0
        for x in xs {
            guard x.rank == first.rank, x.shape.dropFirst() == first.shape.dropFirst() else {
                throw TensorError.incompatibleShapes(op: "concatRows", lhs: first.shape, rhs: x.shape)
            }
            guard x.dtype == first.dtype else {
                throw TensorError.dtypeMismatch(op: "concatRows", expected: first.dtype, actual: x.dtype)
            }
            rows += x.shape[0]
        }
        return [rows] + first.shape.dropFirst()
    }

    package static func raw(_ raw: UnsafeRawBufferPointer, _ format: StorageFormat, _ shape: [Int]) throws {
        guard let count = Tensor.checkedCount(of: shape) else {
            throw TensorError.invalidArgument(op: "tensor", message: "shape \(shape) has a negative or overflowing size")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: format.byteSize)
        guard !overflow, bytes == raw.count else {
            throw TensorError.invalidArgument(op: "tensor", message: "\(raw.count) bytes of \(format) do not fill shape \(shape)")
        }
    }
}
