import Tensors

/// One stored tensor: its name, element encoding, shape and where its bytes lie.
public struct TensorEntry: Sendable, Equatable {
    public let name: String
    public let format: StorageFormat
    public let shape: [Int]
    /// Byte range of the data, relative to the start of the data section of its file.
    public let byteRange: Range<Int>

    public init(name: String, format: StorageFormat, shape: [Int], byteRange: Range<Int>) {
        (self.name, self.format, self.shape, self.byteRange) = (name, format, shape, byteRange)
    }
}

/// A collection of named tensors: one safetensors file, a sharded checkpoint, or weights built in
/// memory (tests, LoRA-fused overlays). Models read their weights only through this protocol.
public protocol WeightSource: AnyObject, Sendable {
    /// Where the tensors come from, for error messages (a path, or a list of shard paths).
    var location: String { get }
    /// Every tensor name, sorted.
    var names: [String] { get }
    func entry(_ name: String) -> TensorEntry?
    /// Calls `body` with the tensor's raw little-endian bytes (which may be unaligned).
    /// Throws `ModelFilesError.missingTensor` when there is no such tensor.
    func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer, TensorEntry) throws -> R) throws -> R
}

extension WeightSource {
    /// Loads a tensor onto `backend` as `dtype`, converting from the stored encoding.
    public func tensor(_ name: String, on backend: any Backend, dtype: DType = .float32) throws -> Tensor {
        try withBytes(of: name) { bytes, entry in
            try backend.tensor(raw: bytes, format: entry.format, shape: entry.shape, dtype: dtype)
        }
    }
}
