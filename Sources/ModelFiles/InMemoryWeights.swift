import Tensors

/// Tensors held in memory: weights built by code (tests, generated models) or rewritten at load
/// time (LoRA fusing), served through the same `WeightSource` interface as files.
public final class InMemoryWeights: WeightSource, @unchecked Sendable {
    public let location: String
    private var storage: [String: (entry: TensorEntry, bytes: [UInt8])] = [:]

    public init(location: String = "<memory>") {
        self.location = location
    }

    /// Adds (or replaces) an fp32 tensor.
    public func set(_ name: String, shape: [Int], values: [Float]) {
        precondition(Tensor.count(of: shape) == values.count, "\(name): \(values.count) values for shape \(shape)")
        let bytes = values.withUnsafeBytes { Array($0) }
        storage[name] = (TensorEntry(name: name, format: .float32, shape: shape, byteRange: 0..<bytes.count), bytes)
    }

    /// Adds (or replaces) a tensor from raw little-endian bytes in `format`.
    public func set(_ name: String, shape: [Int], format: StorageFormat, bytes: [UInt8]) throws {
        guard let count = Tensor.checkedCount(of: shape), count * format.byteSize == bytes.count else {
            throw ModelFilesError.badTensor(path: location, tensor: name,
                                            reason: "\(bytes.count) bytes do not hold shape \(shape) of \(format)")
        }
        storage[name] = (TensorEntry(name: name, format: format, shape: shape, byteRange: 0..<bytes.count), bytes)
    }

    public var names: [String] { storage.keys.sorted() }

    public func entry(_ name: String) -> TensorEntry? { storage[name]?.entry }

    public func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer, TensorEntry) throws -> R) throws -> R {
        guard let item = storage[name] else { throw ModelFilesError.missingTensor(path: location, tensor: name) }
        return try item.bytes.withUnsafeBytes { try body($0, item.entry) }
    }
}
