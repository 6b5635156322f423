import Tensors

/// A weight matrix on the device: fp32 elements, or fp16 pairs packed in 32-bit words
/// (`VulkanBackend.WeightStorage.float16`), starting at element `offset`.
struct DeviceWeight {
    let storage: VulkanBuffer
    let offset: UInt32
    let half: Bool
}

/// A convolution's weight in [KH, KW, CI, CO] order (the B matrix of conv2d.comp) and its bias,
/// both on the device, converted once at load.
final class VulkanConv2dWeights: Conv2dWeights, @unchecked Sendable {
    let spec: Conv2dSpec
    let weight: DeviceWeight
    let bias: Tensor?
    init(spec: Conv2dSpec, weight: DeviceWeight, bias: Tensor?) { (self.spec, self.weight, self.bias) = (spec, weight, bias) }
}

/// A linear layer's PyTorch [out, in] weight (used as B transposed) and bias, on the device.
final class VulkanLinearWeights: LinearWeights, @unchecked Sendable {
    let weight: DeviceWeight
    let bias: Tensor?
    let inFeatures: Int, outFeatures: Int
    var hasBias: Bool { bias != nil }
    init(weight: DeviceWeight, bias: Tensor?, inFeatures: Int, outFeatures: Int) {
        (self.weight, self.bias, self.inFeatures, self.outFeatures) = (weight, bias, inFeatures, outFeatures)
    }
}

/// Activation codes shared with activation.glsl's `activate`.
extension Activation {
    var shaderCode: UInt32 {
        switch self {
        case .silu: return 1
        case .gelu: return 2
        case .geluTanh: return 3
        case .quickGELU: return 4
        case .tanh: return 5
        }
    }
}

/// Push-constant words: sizes and offsets as UInt32 (checked), floats by their bit patterns.
struct Push {
    var words: [UInt32] = []

    mutating func add(_ values: Int..., op: String) throws {
        for v in values {
            guard let w = UInt32(exactly: v) else {
                throw TensorError.invalidArgument(op: op, message: "size \(v) exceeds the shaders' 32-bit indices")
            }
            words.append(w)
        }
    }

    mutating func add(_ values: UInt32...) { words += values }
    mutating func add(float values: Float...) { words += values.map(\.bitPattern) }
}
