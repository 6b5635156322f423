import CKernels

final class CPUConv2dWeights: Conv2dWeights, @unchecked Sendable {
    let spec: Conv2dSpec
    let handle: OpaquePointer

    init(spec: Conv2dSpec, handle: OpaquePointer) {
        self.spec = spec
        self.handle = handle
    }

    deinit { sd_conv_destroy(handle) }

    /// oneDNN's name for the kernel used by the most recent call.
    var implementation: String { String(cString: sd_conv_impl(handle)) }
}

final class CPULinearWeights: LinearWeights, @unchecked Sendable {
    let inFeatures: Int, outFeatures: Int, hasBias: Bool
    let handle: OpaquePointer

    init(inFeatures: Int, outFeatures: Int, hasBias: Bool, handle: OpaquePointer) {
        (self.inFeatures, self.outFeatures, self.hasBias, self.handle) = (inFeatures, outFeatures, hasBias, handle)
    }

    deinit { sd_linear_destroy(handle) }

    var implementation: String { String(cString: sd_linear_impl(handle)) }
}

extension CPUBackend {
    func cpuWeights<T>(_ weights: Any, _ type: T.Type, _ op: String) throws -> T {
        guard let typed = weights as? T else {
            throw TensorError.invalidArgument(op: op, message: "weights were prepared by another backend")
        }
        return typed
    }

    // MARK: weights

    public func prepareConv2d(weight: Tensor, bias: Tensor?, geometry: Conv2dGeometry) throws -> any Conv2dWeights {
        let spec = try OpShapes.conv2dWeights(weight, bias, geometry)
        let g = geometry
        var handle: OpaquePointer?
        try withExtendedLifetime((weight, bias)) {
            try CPUBackend.check("prepareConv2d") { err, len in
                handle = sd_conv_create(context, weight.floatPointer, bias?.floatPointer,
                                        Int32(spec.outChannels), Int32(spec.inChannels), Int32(spec.kernelH),
                                        Int32(spec.kernelW), Int32(g.strideH), Int32(g.strideW), Int32(g.padTop),
                                        Int32(g.padLeft), Int32(g.padBottom), Int32(g.padRight),
                                        computeDType.cCode, err, len)
                return handle == nil ? -1 : 0
            }
        }
        guard let handle else { throw TensorError.backendFailure(op: "prepareConv2d", message: "no handle") }
        return CPUConv2dWeights(spec: spec, handle: handle)
    }

    public func prepareLinear(weight: Tensor, bias: Tensor?) throws -> any LinearWeights {
        let (out, inFeatures) = try OpShapes.linearWeights(weight, bias)
        var handle: OpaquePointer?
        try withExtendedLifetime((weight, bias)) {
            try CPUBackend.check("prepareLinear") { err, len in
                handle = sd_linear_create(context, weight.floatPointer, bias?.floatPointer, Int32(out),
                                          Int32(inFeatures), computeDType.cCode, err, len)
                return handle == nil ? -1 : 0
            }
        }
        guard let handle else { throw TensorError.backendFailure(op: "prepareLinear", message: "no handle") }
        return CPULinearWeights(inFeatures: inFeatures, outFeatures: out, hasBias: bias != nil, handle: handle)
    }

    // MARK: convolution and products

    public func conv2d(_ x: Tensor, _ weights: any Conv2dWeights, addend: Tensor?, fusedReLU: Bool, outputDType: DType) throws -> Tensor {
        let w = try cpuWeights(weights, CPUConv2dWeights.self, "conv2d")
        let shape = try OpShapes.conv2d(x, w.spec, addend: addend)
        let src = try inComputeDType(x)
        let y = try output(shape, outputDType)
        let addendKind: Int32 = addend == nil ? 0 : (addend!.shape == shape ? 2 : 1)
        try withExtendedLifetime((src, addend)) {
            try CPUBackend.check("conv2d") { err, len in
                sd_conv_forward(w.handle, src.host, src.dtype.cCode, Int32(x.shape[0]), Int32(x.shape[1]),
                                Int32(x.shape[2]), y.host, outputDType.cCode, addend?.host, addendKind,
                                (addend?.dtype ?? .float32).cCode, fusedReLU ? 1 : 0, err, len)
            }
        }
        return y
    }

    public func linear(_ x: Tensor, _ weights: any LinearWeights, residual: Tensor?, outputDType: DType) throws -> Tensor {
        let w = try cpuWeights(weights, CPULinearWeights.self, "linear")
        let shape = try OpShapes.linear(x, w, residual: residual)
        let src = try inComputeDType(x)
        let y = try output(shape, outputDType)
        let rows = x.count / w.inFeatures
        guard rows > 0 else { return y }
        try withExtendedLifetime((src, residual)) {
            try CPUBackend.check("linear") { err, len in
                sd_linear_forward(w.handle, src.host, src.dtype.cCode, rows, y.host, outputDType.cCode,
                                  residual?.floatPointer, err, len)
            }
        }
        return y
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor {
        let p = try OpShapes.matmul(a, b, transposeB: transposeB)
        let (ac, bc) = (try inComputeDType(a), try inComputeDType(b))
        let y = try output(p.out)
        guard y.count > 0 else { return y }
        let bBatchStride = p.sharedB ? 0 : p.k * p.n
        let (bRow, bCol) = transposeB ? (1, p.k) : (p.n, 1)
        try withExtendedLifetime((ac, bc)) {
            try CPUBackend.check("matmul") { err, len in
                sd_bmm(context, p.batch, p.m, p.n, p.k, ac.host, p.m * p.k, p.k, 1, bc.host, bBatchStride, bRow, bCol,
                       computeDType.cCode, y.host, p.m * p.n, p.n, Int32(SD_F32), 1, err, len)
            }
        }
        return y
    }

    public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, scale: Float?, causal: Bool) throws -> Tensor {
        let p = try OpShapes.attention(query, key, value, heads: heads)
        let (q, k, v) = (try inComputeDType(query), try inComputeDType(key), try inComputeDType(value))
        let y = try output(query.shape)
        let width = heads * p.headDim
        let factor = scale ?? 1 / Float(p.headDim).squareRoot()
        guard y.count > 0 else { return y }
        try withExtendedLifetime((q, k, v)) {
            try CPUBackend.check("attention") { err, len in
                sd_attention(context, p.n, p.lq, p.lk, p.heads, p.headDim, q.host, width, k.host, width, v.host, width,
                             computeDType.cCode, causal ? 1 : 0, y.floatPointer, factor, err, len)
            }
        }
        return y
    }

    // MARK: normalisation and elementwise

    public func groupNorm(_ x: Tensor, offset: Tensor?, groups: Int, weight: Tensor, bias: Tensor, eps: Float,
                          fusedSiLU: Bool, outputDType: DType) throws -> Tensor {
        try OpShapes.groupNorm(x, offset: offset, groups: groups, weight: weight, bias: bias)
        let y = try output(x.shape, outputDType)
        let c = x.shape[x.rank - 1], pixels = x.count / max(1, x.shape[0] * c)
        guard y.count > 0 else { return y }
        let status = sd_group_norm(nthreads, x.floatPointer, offset?.floatPointer, y.host, outputDType.cCode, x.shape[0], pixels, c, groups,
                                   weight.floatPointer, bias.floatPointer, eps, fusedSiLU ? 1 : 0)
        guard status == 0 else { throw TensorError.outOfMemory(bytes: 16 * x.shape[0] * c * (threads + 1)) }
        return y
    }

    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, outputDType: DType) throws -> Tensor {
        try OpShapes.layerNorm(x, weight: weight, bias: bias)
        let y = try output(x.shape, outputDType)
        let c = x.shape[x.rank - 1]
        guard y.count > 0 else { return y }
        sd_layer_norm(nthreads, x.floatPointer, y.host, outputDType.cCode, x.count / c, c,
                      weight.floatPointer, bias.floatPointer, eps)
        return y
    }

    public func activation(_ x: Tensor, _ kind: Activation) throws -> Tensor {
        try OpShapes.requireDType("activation", x)
        let y = try output(x.shape)
        let code: Int32
        switch kind {
        case .silu: code = Int32(SD_SILU)
        case .gelu: code = Int32(SD_GELU_ERF)
        case .geluTanh: code = Int32(SD_GELU_TANH)
        case .quickGELU: code = Int32(SD_QUICK_GELU)
        case .tanh: code = Int32(SD_TANH)
        }
        sd_unary(nthreads, code, x.floatPointer, y.floatPointer, x.count)
        return y
    }

    public func clamp(_ x: Tensor, min lower: Float, max upper: Float) throws -> Tensor {
        try affine(x, 1, 0, lower, upper, "clamp")
    }

    public func scale(_ x: Tensor, by multiplier: Float, adding offset: Float) throws -> Tensor {
        try affine(x, multiplier, offset, -.infinity, .infinity, "scale")
    }

    private func affine(_ x: Tensor, _ mul: Float, _ add: Float, _ lo: Float, _ hi: Float, _ op: String) throws -> Tensor {
        try OpShapes.requireDType(op, x)
        guard lo <= hi else { throw TensorError.invalidArgument(op: op, message: "min \(lo) above max \(hi)") }
        let y = try output(x.shape)
        sd_affine_clamp(nthreads, x.floatPointer, y.floatPointer, x.count, mul, add, lo, hi)
        return y
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try OpShapes.requireDType("binary", a)
        try OpShapes.requireDType("binary", b)
        let plan = try OpShapes.broadcast(a.shape, b.shape)
        let y = try output(plan.shape)
        guard y.count > 0 else { return y }
        let code: Int32 = op == .add ? Int32(SD_ADD) : (op == .mul ? Int32(SD_MUL) : Int32(SD_SUB))
        sd_binary(nthreads, code, Int32(plan.shape.count), plan.shape, a.floatPointer, plan.aStrides,
                  b.floatPointer, plan.bStrides, y.floatPointer)
        return y
    }

    public func geglu(_ x: Tensor, outputDType: DType) throws -> Tensor {
        let shape = try OpShapes.geglu(x)
        let y = try output(shape, outputDType)
        let f = shape[shape.count - 1]
        guard y.count > 0 else { return y }
        sd_geglu(nthreads, x.floatPointer, y.host, outputDType.cCode, y.count / f, f)
        return y
    }

    public func softmax(_ x: Tensor) throws -> Tensor {
        try OpShapes.requireDType("softmax", x)
        try OpShapes.requireRank("softmax", x, 1...8)
        let y = try output(x.shape)
        let c = x.shape[x.rank - 1]
        guard y.count > 0 else { return y }
        sd_softmax(nthreads, x.floatPointer, y.floatPointer, x.count / c, c)
        return y
    }

    public func resizeNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        let y = try output(try OpShapes.resize(x, height, width), x.dtype)
        sd_resize_nearest(nthreads, x.host, y.host, x.shape[0], x.shape[1], x.shape[2], x.shape[3], height, width,
                          x.dtype.byteSize)
        return y
    }

    public func concatChannels(_ xs: [Tensor]) throws -> Tensor {
        let shape = try OpShapes.concatChannels(xs)
        let y = try output(shape, xs[0].dtype)
        let total = shape[shape.count - 1]
        let pixels = total == 0 ? 0 : y.count / total
        var offset = 0
        for x in xs {
            let c = x.shape[x.rank - 1]
            sd_copy_columns(nthreads, x.host, c, y.host, total, offset, pixels, x.dtype.byteSize)
            offset += c
        }
        return y
    }

    public func concatRows(_ xs: [Tensor]) throws -> Tensor {
        let y = try output(try OpShapes.concatRows(xs), xs[0].dtype)
        var offset = 0
        for x in xs {
            sd_copy(nthreads, x.host, y.host + offset, x.byteCount)
            offset += x.byteCount
        }
        return y
    }
}
