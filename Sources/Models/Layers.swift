import ModelFiles
import Tensors

/// y = x Wᵀ + b over the last dimension (diffusers/PyTorch `nn.Linear`).
public struct Linear: Sendable {
    let weights: any LinearWeights
    let backend: any Backend

    public init(_ scope: WeightScope, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weights = try scope.linear(inFeatures: inFeatures, outFeatures: outFeatures, bias: bias)
        backend = scope.backend
    }

    /// `residual` (fp32, output shape) is added; `outputDType` lets the result feed the next
    /// matrix product in the backend's compute dtype without a conversion pass.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, outputDType: DType = .float32) throws -> Tensor {
        try backend.linear(x, weights, residual: residual, outputDType: outputDType)
    }
}

/// NHWC 2-D convolution (`nn.Conv2d`).
public struct Conv2d: Sendable {
    let weights: any Conv2dWeights
    let backend: any Backend

    public init(_ scope: WeightScope, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int? = nil, bias: Bool = true) throws {
        try self.init(scope, inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                      geometry: Conv2dGeometry(stride: stride, padding: padding ?? kernel / 2), bias: bias)
    }

    public init(_ scope: WeightScope, inChannels: Int, outChannels: Int, kernel: Int, geometry: Conv2dGeometry,
                bias: Bool = true) throws {
        weights = try scope.conv2d(inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                                   geometry: geometry, bias: bias)
        backend = scope.backend
    }

    /// `addend` is added after the bias: [N, 1, 1, C] per image and channel, or the full output;
    /// `relu` applies ReLU last. Both are fused into the convolution.
    public func callAsFunction(_ x: Tensor, addend: Tensor? = nil, relu: Bool = false,
                               outputDType: DType = .float32) throws -> Tensor {
        try backend.conv2d(x, weights, addend: addend, fusedReLU: relu, outputDType: outputDType)
    }
}

/// GroupNorm over NHWC (or [N, L, C]) activations, optionally fused with SiLU.
public struct GroupNorm: Sendable {
    let weight: Tensor, bias: Tensor
    let groups: Int, eps: Float
    let backend: any Backend

    public init(_ scope: WeightScope, groups: Int, channels: Int, eps: Float) throws {
        weight = try scope.tensor("weight", shape: [channels])
        bias = try scope.tensor("bias", shape: [channels])
        (self.groups, self.eps, backend) = (groups, eps, scope.backend)
    }

    /// `offset` [N, C] is added to x before normalising (see `Backend.groupNorm`).
    public func callAsFunction(_ x: Tensor, offset: Tensor? = nil, silu: Bool = false,
                               outputDType: DType = .float32) throws -> Tensor {
        try backend.groupNorm(x, offset: offset, groups: groups, weight: weight, bias: bias, eps: eps, fusedSiLU: silu,
                              outputDType: outputDType)
    }
}

/// LayerNorm over the last dimension.
public struct LayerNorm: Sendable {
    let weight: Tensor, bias: Tensor
    let eps: Float
    let backend: any Backend

    public init(_ scope: WeightScope, channels: Int, eps: Float) throws {
        weight = try scope.tensor("weight", shape: [channels])
        bias = try scope.tensor("bias", shape: [channels])
        (self.eps, backend) = (eps, scope.backend)
    }

    public func callAsFunction(_ x: Tensor, outputDType: DType = .float32) throws -> Tensor {
        try backend.layerNorm(x, weight: weight, bias: bias, eps: eps, outputDType: outputDType)
    }
}

/// Errors in how a model is called (as opposed to what its files contain).
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case unsupportedConfig(path: String, reason: String)
    case badInput(model: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedConfig(path, reason): return "\(path): unsupported configuration: \(reason)"
        case let .badInput(model, reason): return "\(model): \(reason)"
        }
    }
}
