import CVulkan
import Tensors

extension VulkanBackend {
    func typed<T>(_ weights: Any, _ op: String) throws -> T {
        guard let w = weights as? T else {
            throw TensorError.invalidArgument(op: op, message: "weights were prepared by another backend")
        }
        return w
    }

    /// Workgroups for a grid-stride elementwise pass over `count` elements.
    func elementwiseGroups(_ count: Int) -> (Int, Int, Int) {
        (min((count + Shader.workgroupSize - 1) / Shader.workgroupSize, device.maxWorkgroupCount[0], 65535), 1, 1)
    }

    /// A 2-D grid of at least `count` workgroups (one per row or group; shaders use flatGroup()).
    func rowGroups(_ count: Int) -> (Int, Int, Int) {
        let x = min(count, device.maxWorkgroupCount[0], 65535)
        return (x, (count + x - 1) / max(x, 1), 1)
    }

    // MARK: weights

    /// `weight` as the products read it: as is (fp32), or packed into fp16 pairs.
    func deviceWeight(_ weight: Tensor, _ op: String) throws -> DeviceWeight {
        let source = try bound(weight, op)
        guard let storage = weight.storage as? VulkanBuffer else {
            throw TensorError.invalidArgument(op: op, message: "tensor \(weight.shape) was not made by this Vulkan backend")
        }
        guard weightStorage == .float16 else { return DeviceWeight(storage: storage, offset: source.offset, half: false) }
        let words = (weight.count + 1) / 2
        let packed = try captureState.map { try $0.arena.buffer(byteCount: max(words, 1) * 4) } ?? pool.buffer(byteCount: max(words, 1) * 4)
        var push = Push()
        try push.add(weight.count, op: op)
        push.add(source.offset, 0)
        try stream.dispatch(.packHalf, [source.buffer, bound(packed)], push: push.words, groups: elementwiseGroups(words))
        return DeviceWeight(storage: packed, offset: 0, half: true)
    }

    public func prepareConv2d(weight: Tensor, bias: Tensor?, geometry: Conv2dGeometry) throws -> any Conv2dWeights {
        let spec = try OpShapes.conv2dWeights(weight, bias, geometry)
        return try lock.withLock {
            let w = try bound(weight, "prepareConv2d")
            if let bias { _ = try bound(bias, "prepareConv2d bias") }
            let permuted = try output([spec.kernelH, spec.kernelW, spec.inChannels, spec.outChannels], "prepareConv2d")
            let p = try bound(permuted, "prepareConv2d")
            var push = Push()
            try push.add(weight.count, spec.outChannels, spec.inChannels, spec.kernelH, spec.kernelW, op: "prepareConv2d")
            push.add(w.offset, p.offset)
            try stream.dispatch(.convWeight, [w.buffer, p.buffer], push: push.words, groups: elementwiseGroups(weight.count))
            return VulkanConv2dWeights(spec: spec, weight: try deviceWeight(permuted, "prepareConv2d"), bias: bias)
        }
    }

    public func prepareLinear(weight: Tensor, bias: Tensor?) throws -> any LinearWeights {
        let (out, inFeatures) = try OpShapes.linearWeights(weight, bias)
        return try lock.withLock {
            if let bias { _ = try bound(bias, "prepareLinear bias") }
            return VulkanLinearWeights(weight: try deviceWeight(weight, "prepareLinear"), bias: bias, inFeatures: inFeatures, outFeatures: out)
        }
    }

    // MARK: convolution and products

    public func conv2d(_ x: Tensor, _ weights: any Conv2dWeights, addend: Tensor?, fusedReLU: Bool, outputDType: DType) throws -> Tensor {
        let w: VulkanConv2dWeights = try typed(weights, "conv2d")
        try VulkanBackend.requireFloat32(outputDType, "conv2d")
        let shape = try OpShapes.conv2d(x, w.spec, addend: addend)
        return try lock.withLock {
            let y = try output(shape, "conv2d")
            guard y.count > 0 else { return y }
            let (xb, yb) = (try bound(x, "conv2d"), try bound(y, "conv2d"))
            let wb = (buffer: bound(w.weight.storage), offset: w.weight.offset)
            let bb = try w.bias.map { try bound($0, "conv2d bias") } ?? xb
            let ab = try addend.map { try bound($0, "conv2d addend") } ?? xb
            let s = w.spec, g = s.geometry
            let m = shape[0] * shape[1] * shape[2], k = s.kernelH * s.kernelW * s.inChannels
            var push = Push()
            try push.add(1, m, s.outChannels, k, x.shape[1], x.shape[2], s.inChannels, shape[1], shape[2], s.kernelW,
                         g.strideH, g.strideW, g.padTop, g.padLeft, op: "conv2d")
            push.add(xb.offset, wb.offset, yb.offset, bb.offset, ab.offset)
            push.add(w.bias == nil ? 0 : 1, addend == nil ? 0 : (addend?.shape == shape ? 2 : 1), fusedReLU ? 1 : 0)
            let (shader, groups) = product(w.weight.half ? .conv2dHalf : .conv2d, m: m, n: s.outChannels, batch: 1)
            try stream.dispatch(shader, [xb.buffer, wb.buffer, yb.buffer, bb.buffer, ab.buffer], push: push.words, groups: groups)
            return y
        }
    }

    /// The shader for an M × N product (per batch) and its grid: the cooperative-matrix variant when
    /// the device has one enabled (gemm_coop.glsl: blocks of 4 × 4 hardware tiles, any shape — edges
    /// are zero-padded in shared memory), else the portable 32 × 32-tile shader.
    func product(_ portable: Shader, m: Int, n: Int, batch: Int) -> (Shader, (Int, Int, Int)) {
        if let shape = cooperativeMatrix, let coop = portable.cooperativeMatrixVariant {
            let block = Shader.cooperativeBlock(shape)
            return (coop, ((n + block.columns - 1) / block.columns, (m + block.rows - 1) / block.rows, batch))
        }
        return (portable, ((n + 31) / 32, (m + 31) / 32, batch))
    }

    /// C = A · B (+ bias) (+ residual) through matmul.comp.
    private func gemm(_ op: String, a: Tensor, b: Tensor?, weight: DeviceWeight? = nil, out: [Int], batch: Int, m: Int, n: Int, k: Int,
                      transposeB: Bool, sharedB: Bool, bias: Tensor?, residual: Tensor?) throws -> Tensor {
        try lock.withLock {
            let y = try output(out, op)
            guard y.count > 0 else { return y }
            let (ab, yb) = (try bound(a, op), try bound(y, op))
            let bb: (buffer: VkBuffer, offset: UInt32)
            if let weight { bb = (bound(weight.storage), weight.offset) } else if let b { bb = try bound(b, op) } else {
                throw TensorError.invalidArgument(op: op, message: "no B operand")
            }
            let biasB = try bias.map { try bound($0, op) } ?? ab
            let resB = try residual.map { try bound($0, op) } ?? ab
            var push = Push()
            try push.add(batch, m, n, k, op: op)
            push.add(ab.offset, bb.offset, yb.offset, biasB.offset, resB.offset)
            push.add(transposeB ? 1 : 0, sharedB ? 1 : 0, bias == nil ? 0 : 1, residual == nil ? 0 : 1)
            let (shader, groups) = product(weight?.half == true ? .matmulHalf : .matmul, m: m, n: n, batch: batch)
            try stream.dispatch(shader, [ab.buffer, bb.buffer, yb.buffer, biasB.buffer, resB.buffer], push: push.words, groups: groups)
            return y
        }
    }

    public func linear(_ x: Tensor, _ weights: any LinearWeights, residual: Tensor?, outputDType: DType) throws -> Tensor {
        let w: VulkanLinearWeights = try typed(weights, "linear")
        try VulkanBackend.requireFloat32(outputDType, "linear")
        let shape = try OpShapes.linear(x, w, residual: residual)
        let rows = x.count / max(1, w.inFeatures)
        return try gemm("linear", a: x, b: nil, weight: w.weight, out: shape, batch: 1, m: rows, n: w.outFeatures, k: w.inFeatures,
                        transposeB: true, sharedB: true, bias: w.bias, residual: residual)
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor {
        let p = try OpShapes.matmul(a, b, transposeB: transposeB)
        return try gemm("matmul", a: a, b: b, out: p.out, batch: p.batch, m: p.m, n: p.n, k: p.k, transposeB: transposeB,
                        sharedB: p.sharedB, bias: nil, residual: nil)
    }

    public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, scale: Float?, causal: Bool) throws -> Tensor {
        let p = try OpShapes.attention(query, key, value, heads: heads)
        let factor = scale ?? 1 / Float(p.headDim).squareRoot()
        return try lock.withLock {
            let y = try output(query.shape, "attention")
            guard y.count > 0 else { return y }
            let (q, k, v, yb) = (try bound(query, "attention"), try bound(key, "attention"), try bound(value, "attention"), try bound(y, "attention"))
            var push = Push()
            try push.add(p.lq, p.lk, heads, p.headDim, op: "attention")
            push.add(q.offset, k.offset, v.offset, yb.offset, causal ? 1 : 0)
            push.add(float: factor)
            // Shared-memory tiles when asked for, the head fits and the device has the memory (read at run time).
            let tiled = attentionKernel == .sharedMemoryTiles && p.headDim <= Shader.tiledAttentionMaxHeadDim
                && device.maxSharedMemory >= Shader.attentionTiled.sharedBytes
            try stream.dispatch(tiled ? .attentionTiled : .attention, [q.buffer, k.buffer, v.buffer, yb.buffer], push: push.words,
                                groups: ((p.lq + 63) / 64, p.n * heads, (p.headDim + 63) / 64))
            return y
        }
    }

    // MARK: normalisation

    /// Groups larger than this are normalised in three passes spread over many workgroups (one
    /// workgroup per group would leave most of a GPU idle: UNet GroupNorms have 32 groups).
    static let splitNormElements = 8192
    /// Elements per workgroup in the first of those passes.
    static let normChunk = 4096

    private func normalise(_ op: String, _ x: Tensor, offset: Tensor?, images: Int, pixels: Int, channels: Int, groups: Int,
                           weight: Tensor, bias: Tensor, eps: Float, silu: Bool) throws -> Tensor {
        try lock.withLock {
            let y = try output(x.shape, op)
            guard y.count > 0 else { return y }
            let (xb, wb, bb, yb) = (try bound(x, op), try bound(weight, op), try bound(bias, op), try bound(y, op))
            let ob = try offset.map { try bound($0, op) } ?? xb
            let elements = pixels * (channels / groups)
            if elements > Self.splitNormElements {
                let chunks = (elements + Self.normChunk - 1) / Self.normChunk, count = images * groups
                let stats = try output([count * chunks * 3], op), result = try output([count * 2], op)
                let (sb, rb) = (try bound(stats, op), try bound(result, op))
                var first = Push()
                try first.add(pixels, channels, groups, offset == nil ? 0 : 1, Self.normChunk, chunks, op: op)
                first.add(xb.offset, ob.offset)
                try stream.dispatch(.normStats, [xb.buffer, ob.buffer, sb.buffer], push: first.words, groups: (chunks, count, 1))
                var second = Push()
                try second.add(count, chunks, op: op)
                second.add(float: eps)
                try stream.dispatch(.normCombine, [sb.buffer, rb.buffer], push: second.words,
                                    groups: ((count + Shader.workgroupSize - 1) / Shader.workgroupSize, 1, 1))
                var third = Push()
                try third.add(x.count, pixels, channels, groups, offset == nil ? 0 : 1, silu ? 1 : 0, op: op)
                third.add(xb.offset, ob.offset, wb.offset, bb.offset, yb.offset)
                try stream.dispatch(.normApply, [xb.buffer, ob.buffer, wb.buffer, bb.buffer, rb.buffer, yb.buffer], push: third.words,
                                    groups: elementwiseGroups(x.count))
                return y
            }
            var push = Push()
            try push.add(images, pixels, channels, groups, op: op)
            push.add(offset == nil ? 0 : 1, silu ? 1 : 0, xb.offset, ob.offset, wb.offset, bb.offset, yb.offset)
            push.add(float: eps)
            try stream.dispatch(.norm, [xb.buffer, ob.buffer, wb.buffer, bb.buffer, yb.buffer], push: push.words,
                                groups: rowGroups(images * groups))
            return y
        }
    }

    public func groupNorm(_ x: Tensor, offset: Tensor?, groups: Int, weight: Tensor, bias: Tensor, eps: Float,
                          fusedSiLU: Bool, outputDType: DType) throws -> Tensor {
        try VulkanBackend.requireFloat32(outputDType, "groupNorm")
        try OpShapes.groupNorm(x, offset: offset, groups: groups, weight: weight, bias: bias)
        let c = x.shape[x.rank - 1], n = x.shape[0]
        return try normalise("groupNorm", x, offset: offset, images: n, pixels: x.count / max(1, n * c), channels: c,
                             groups: groups, weight: weight, bias: bias, eps: eps, silu: fusedSiLU)
    }

    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, outputDType: DType) throws -> Tensor {
        try VulkanBackend.requireFloat32(outputDType, "layerNorm")
        try OpShapes.layerNorm(x, weight: weight, bias: bias)
        let c = x.shape[x.rank - 1]
        return try normalise("layerNorm", x, offset: nil, images: x.count / max(1, c), pixels: 1, channels: c, groups: 1,
                             weight: weight, bias: bias, eps: eps, silu: false)
    }
}
