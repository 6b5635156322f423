import CVulkan
import Tensors

extension VulkanBackend {
    private func unary(_ op: String, _ x: Tensor, kind: UInt32, mul: Float = 1, add: Float = 0,
                       lo: Float = -.infinity, hi: Float = .infinity) throws -> Tensor {
        try OpShapes.requireDType(op, x)
        return try lock.withLock {
            let y = try output(x.shape, op)
            guard y.count > 0 else { return y }
            let (xb, yb) = (try bound(x, op), try bound(y, op))
            var push = Push()
            try push.add(x.count, op: op)
            push.add(xb.offset, yb.offset, kind)
            push.add(float: mul, add, lo, hi)
            try stream.dispatch(.unary, [xb.buffer, yb.buffer], push: push.words, groups: elementwiseGroups(x.count))
            return y
        }
    }

    public func activation(_ x: Tensor, _ kind: Activation) throws -> Tensor {
        try unary("activation", x, kind: kind.shaderCode)
    }

    public func clamp(_ x: Tensor, min lower: Float, max upper: Float) throws -> Tensor {
        guard lower <= upper else { throw TensorError.invalidArgument(op: "clamp", message: "min \(lower) above max \(upper)") }
        return try unary("clamp", x, kind: 0, lo: lower, hi: upper)
    }

    public func scale(_ x: Tensor, by multiplier: Float, adding offset: Float) throws -> Tensor {
        try unary("scale", x, kind: 0, mul: multiplier, add: offset)
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try OpShapes.requireDType("binary", a)
        try OpShapes.requireDType("binary", b)
        let plan = try OpShapes.broadcast(a.shape, b.shape)
        return try lock.withLock {
            let y = try output(plan.shape, "binary")
            guard y.count > 0 else { return y }
            let (ab, bb, yb) = (try bound(a, "binary"), try bound(b, "binary"), try bound(y, "binary"))
            let code: UInt32 = op == .add ? 0 : (op == .mul ? 1 : 2)
            func padded(_ values: [Int], _ fill: Int) -> [Int] { values + Array(repeating: fill, count: 8 - values.count) }
            var push = Push()
            try push.add(y.count, plan.shape.count, op: "binary")
            push.add(code, ab.offset, bb.offset, yb.offset)
            for values in [padded(plan.shape, 1), padded(plan.aStrides, 0), padded(plan.bStrides, 0)] {
                for v in values { try push.add(v, op: "binary") }
            }
            try stream.dispatch(.binary, [ab.buffer, bb.buffer, yb.buffer], push: push.words, groups: elementwiseGroups(y.count))
            return y
        }
    }

    public func geglu(_ x: Tensor, outputDType: DType) throws -> Tensor {
        try VulkanBackend.requireFloat32(outputDType, "geglu")
        let shape = try OpShapes.geglu(x)
        return try lock.withLock {
            let y = try output(shape, "geglu")
            guard y.count > 0 else { return y }
            let (xb, yb) = (try bound(x, "geglu"), try bound(y, "geglu"))
            var push = Push()
            try push.add(y.count, shape[shape.count - 1], op: "geglu")
            push.add(xb.offset, yb.offset)
            try stream.dispatch(.geglu, [xb.buffer, yb.buffer], push: push.words, groups: elementwiseGroups(y.count))
            return y
        }
    }

    public func softmax(_ x: Tensor) throws -> Tensor {
        try OpShapes.requireDType("softmax", x)
        try OpShapes.requireRank("softmax", x, 1...8)
        return try lock.withLock {
            let y = try output(x.shape, "softmax")
            guard y.count > 0 else { return y }
            let (xb, yb) = (try bound(x, "softmax"), try bound(y, "softmax"))
            let c = x.shape[x.rank - 1], rows = x.count / c
            var push = Push()
            try push.add(rows, c, op: "softmax")
            push.add(xb.offset, yb.offset)
            try stream.dispatch(.softmax, [xb.buffer, yb.buffer], push: push.words, groups: rowGroups(rows))
            return y
        }
    }

    // MARK: layout

    public func resizeNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        let shape = try OpShapes.resize(x, height, width)
        return try lock.withLock {
            let y = try output(shape, "resizeNearest")
            guard y.count > 0 else { return y }
            let (xb, yb) = (try bound(x, "resizeNearest"), try bound(y, "resizeNearest"))
            var push = Push()
            try push.add(y.count, x.shape[1], x.shape[2], x.shape[3], height, width, op: "resizeNearest")
            push.add(xb.offset, yb.offset)
            try stream.dispatch(.resize, [xb.buffer, yb.buffer], push: push.words, groups: elementwiseGroups(y.count))
            return y
        }
    }

    public func concatChannels(_ xs: [Tensor]) throws -> Tensor {
        let shape = try OpShapes.concatChannels(xs)
        return try lock.withLock {
            let y = try output(shape, "concatChannels")
            let total = shape[shape.count - 1]
            guard y.count > 0 else { return y }
            let yb = try bound(y, "concatChannels")
            var offset = 0
            for x in xs {
                let c = x.shape[x.rank - 1]
                defer { offset += c }
                guard x.count > 0 else { continue }
                let xb = try bound(x, "concatChannels")
                var push = Push()
                try push.add(x.count, c, total, offset, op: "concatChannels")
                push.add(xb.offset, yb.offset)
                try stream.dispatch(.copyColumns, [xb.buffer, yb.buffer], push: push.words, groups: elementwiseGroups(x.count))
            }
            return y
        }
    }

    public func concatRows(_ xs: [Tensor]) throws -> Tensor {
        let shape = try OpShapes.concatRows(xs)
        return try lock.withLock {
            let y = try output(shape, "concatRows")
            let yb = try bound(y, "concatRows")
            var offset = 0
            for x in xs {
                let xb = try bound(x, "concatRows")
                try stream.copy(from: xb.buffer, at: Int(xb.offset) * 4, to: yb.buffer, at: offset, bytes: x.byteCount)
                offset += x.byteCount
            }
            return y
        }
    }
}
