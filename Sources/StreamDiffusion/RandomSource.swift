import Tensors

/// A source of standard-normal noise. The pipeline draws all its noise through this protocol, so
/// a stream can reproduce PyTorch's CPU generator (`TorchRandomSource`) or use another generator.
public protocol RandomSource {
    /// `count` samples of N(0, 1), in the order the generator produces them for one tensor of
    /// `count` elements (generators such as torch's treat a whole tensor at once).
    mutating func normal(count: Int) -> [Float]
}

extension RandomSource {
    /// A tensor of N(0, 1) noise with `shape` (row-major, in the generator's element order).
    public mutating func normalTensor(shape: [Int], on backend: any Backend) throws -> Tensor {
        guard let count = Tensor.checkedCount(of: shape) else {
            throw TensorError.invalidArgument(op: "normalTensor", message: "bad shape \(shape)")
        }
        return try backend.tensor(normal(count: count), shape: shape)
    }
}
