/// Backing memory of a tensor. Each backend has its own kind (host memory for the CPU backends,
/// device buffers for a GPU backend); ops receive tensors and never raw pointers.
public protocol TensorStorage: AnyObject, Sendable {
    var byteCount: Int { get }
}

/// An n-dimensional array: contiguous, row-major, with the channel dimension last for images
/// (NHWC). Views (`reshaped`, `slice(batch:)`) share storage and copy nothing.
public struct Tensor: Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let dtype: DType
    public let storage: any TensorStorage
    /// Offset of the first element inside `storage`, in bytes.
    public let byteOffset: Int

    public init(shape: [Int], dtype: DType, storage: any TensorStorage, byteOffset: Int = 0) {
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
        self.byteOffset = byteOffset
    }

    public var rank: Int { shape.count }
    public var count: Int { Tensor.count(of: shape) }
    public var byteCount: Int { count * dtype.byteSize }
    public var description: String { "Tensor(\(shape), \(dtype))" }

    public static func count(of shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Element count of a shape that came from outside: nil for a negative dimension or a count
    /// that does not fit in Int (a hostile header must not trap the process).
    public static func checkedCount(of shape: [Int]) -> Int? {
        var total = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// The same elements under another shape; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1, newShape.allSatisfy({ $0 >= 0 || $0 == -1 }) else {
            throw TensorError.invalidArgument(op: "reshape", message: "bad target shape \(newShape)")
        }
        if let at = inferred.first {
            guard let known = Tensor.checkedCount(of: newShape.filter { $0 != -1 }), known > 0, count % known == 0 else {
                throw TensorError.incompatibleShapes(op: "reshape", lhs: shape, rhs: newShape)
            }
            resolved[at] = count / known
        }
        guard Tensor.checkedCount(of: resolved) == count else {
            throw TensorError.incompatibleShapes(op: "reshape", lhs: shape, rhs: newShape)
        }
        return Tensor(shape: resolved, dtype: dtype, storage: storage, byteOffset: byteOffset)
    }

    /// Rows `range` of the first dimension, as a view.
    public func slice(batch range: Range<Int>) throws -> Tensor {
        guard rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.invalidArgument(op: "slice", message: "range \(range) outside \(shape)")
        }
        let rowBytes = Tensor.count(of: Array(shape.dropFirst())) * dtype.byteSize
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape, dtype: dtype, storage: storage,
                      byteOffset: byteOffset + range.lowerBound * rowBytes)
    }
}
