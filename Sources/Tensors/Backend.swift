import Foundation

/// Stride and zero padding of a 2-D convolution.
public struct Conv2dGeometry: Sendable, Equatable, CustomStringConvertible {
    public var strideH: Int, strideW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int

    public init(stride: Int = 1, padding: Int = 0) {
        self.init(strideH: stride, strideW: stride, padTop: padding, padLeft: padding,
                  padBottom: padding, padRight: padding)
    }

    public init(strideH: Int, strideW: Int, padTop: Int, padLeft: Int, padBottom: Int, padRight: Int) {
        (self.strideH, self.strideW) = (strideH, strideW)
        (self.padTop, self.padLeft, self.padBottom, self.padRight) = (padTop, padLeft, padBottom, padRight)
    }

    public var description: String {
        "stride \(strideH)x\(strideW), padding t\(padTop) l\(padLeft) b\(padBottom) r\(padRight)"
    }
}

/// What a prepared convolution computes: the kernel's shape and its geometry.
public struct Conv2dSpec: Sendable, Equatable {
    public var outChannels: Int, inChannels: Int, kernelH: Int, kernelW: Int
    public var geometry: Conv2dGeometry
    public var hasBias: Bool

    public init(outChannels: Int, inChannels: Int, kernelH: Int, kernelW: Int, geometry: Conv2dGeometry, hasBias: Bool) {
        (self.outChannels, self.inChannels, self.kernelH, self.kernelW) = (outChannels, inChannels, kernelH, kernelW)
        (self.geometry, self.hasBias) = (geometry, hasBias)
    }

    /// Output height and width for an input of `h` x `w`, or nil when the kernel does not fit.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int)? {
        let g = geometry
        let oh = (h + g.padTop + g.padBottom - kernelH) / g.strideH + 1
        let ow = (w + g.padLeft + g.padRight - kernelW) / g.strideW + 1
        guard h + g.padTop + g.padBottom >= kernelH, w + g.padLeft + g.padRight >= kernelW else { return nil }
        return (oh, ow)
    }
}

/// Convolution weights in the layout a backend wants, converted once at load.
public protocol Conv2dWeights: AnyObject, Sendable {
    var spec: Conv2dSpec { get }
}

/// Linear-layer weights (PyTorch [out, in]) in the layout a backend wants, converted once at load.
public protocol LinearWeights: AnyObject, Sendable {
    var inFeatures: Int { get }
    var outFeatures: Int { get }
    var hasBias: Bool { get }
}

public enum Activation: String, Sendable, CaseIterable {
    case silu
    /// Exact GELU, x·Φ(x) (PyTorch's default, used by GEGLU in diffusers).
    case gelu
    /// GELU with the tanh approximation (PyTorch approximate="tanh").
    case geluTanh
    /// x·sigmoid(1.702x), CLIP's activation.
    case quickGELU
    case tanh
}

public enum BinaryOp: String, Sendable, CaseIterable {
    case add, mul, sub
}

/// The op set of Stable Diffusion, implemented by each backend. Tensors are row-major with
/// channels last (NHWC). Ops allocate their results; inputs are never modified.
///
/// Ops that feed a convolution or a linear layer take an `outputDType`, so a backend computing
/// in bf16 receives bf16 activations without a separate conversion pass. Ops that consume
/// activations otherwise expect fp32 and throw `dtypeMismatch` for anything else.
public protocol Backend: AnyObject, Sendable, CustomStringConvertible {
    /// The dtype convolutions, linear layers and attention compute in.
    var computeDType: DType { get }

    // Data movement
    func tensor(_ values: [Float], shape: [Int]) throws -> Tensor
    /// A tensor from raw little-endian data (weights read from a file), converted to `dtype`.
    func tensor(raw: UnsafeRawBufferPointer, format: StorageFormat, shape: [Int], dtype: DType) throws -> Tensor
    func floats(_ tensor: Tensor) throws -> [Float]
    func convert(_ x: Tensor, to dtype: DType) throws -> Tensor

    // Weights
    /// `weight` is OIHW fp32, `bias` [O].
    func prepareConv2d(weight: Tensor, bias: Tensor?, geometry: Conv2dGeometry) throws -> any Conv2dWeights
    /// `weight` is [out, in] fp32, `bias` [out].
    func prepareLinear(weight: Tensor, bias: Tensor?) throws -> any LinearWeights

    // Ops
    /// NHWC convolution plus bias; `addend` (fp32 or bf16) is added to the result and is either
    /// [N, 1, 1, O] (one value per image and channel: a ResNet's time embedding) or the full output;
    /// `fusedReLU` applies ReLU last (TAESD). Both are fused into the convolution's output pass.
    func conv2d(_ x: Tensor, _ weights: any Conv2dWeights, addend: Tensor?, fusedReLU: Bool, outputDType: DType) throws -> Tensor
    /// x [..., in] → [..., out]; `residual` (fp32, output shape) is added.
    func linear(_ x: Tensor, _ weights: any LinearWeights, residual: Tensor?, outputDType: DType) throws -> Tensor
    /// a [B..., M, K] × b [B..., K, N] (b [B..., N, K] when `transposeB`) → fp32 [B..., M, N];
    /// `b` may also be a single matrix shared by every batch.
    func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor
    /// x [N, H, W, C] (or [N, L, C]); statistics per image over each group of C/groups channels.
    /// `offset` [N, C] (fp32), when given, is added to x first — GroupNorm(h + t) for a ResNet's
    /// time embedding t, without a pass to form h + t.
    func groupNorm(_ x: Tensor, offset: Tensor?, groups: Int, weight: Tensor, bias: Tensor, eps: Float,
                   fusedSiLU: Bool, outputDType: DType) throws -> Tensor
    /// Normalises over the last dimension.
    func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, outputDType: DType) throws -> Tensor
    func activation(_ x: Tensor, _ kind: Activation) throws -> Tensor
    /// min(max(x, lower), upper)
    func clamp(_ x: Tensor, min lower: Float, max upper: Float) throws -> Tensor
    /// x · multiplier + offset
    func scale(_ x: Tensor, by multiplier: Float, adding offset: Float) throws -> Tensor
    /// Elementwise with NumPy broadcasting.
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor
    /// x [..., 2F] → [..., F]: first half · gelu(second half).
    func geglu(_ x: Tensor, outputDType: DType) throws -> Tensor
    /// Softmax over the last dimension.
    func softmax(_ x: Tensor) throws -> Tensor
    /// Scaled dot-product attention. query [N, Lq, H·D], key and value [N, Lk, H·D] → fp32
    /// [N, Lq, H·D]; scale defaults to 1/√D. With `causal`, query i attends to keys 0...i only
    /// (CLIP's text encoder). Never stores the full Lq × Lk score matrix.
    func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, scale: Float?, causal: Bool) throws -> Tensor
    /// Nearest-neighbour resize [N, H, W, C] → [N, height, width, C] with PyTorch's rule
    /// (source = ⌊destination · in / out⌋): 2× upsampling, or diffusers' `upsample_size`.
    func resizeNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor
    /// Concatenates along the last (channel) dimension.
    func concatChannels(_ xs: [Tensor]) throws -> Tensor
    /// Concatenates along the first (batch) dimension: the stream's rows of latents and noise.
    func concatRows(_ xs: [Tensor]) throws -> Tensor

    /// Waits until every op issued so far has finished. Ops on a GPU run asynchronously (reading a
    /// result with `floats` waits by itself); benchmarks call this to time whole calls. A no-op on
    /// backends that compute as they go.
    func synchronize() throws
}

extension Backend {
    public func synchronize() throws {}

    public func conv2d(_ x: Tensor, _ weights: any Conv2dWeights, addend: Tensor? = nil,
                       outputDType: DType = .float32) throws -> Tensor {
        try conv2d(x, weights, addend: addend, fusedReLU: false, outputDType: outputDType)
    }

    public func linear(_ x: Tensor, _ weights: any LinearWeights, residual: Tensor? = nil) throws -> Tensor {
        try linear(x, weights, residual: residual, outputDType: .float32)
    }

    public func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try matmul(a, b, transposeB: false) }

    public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, eps: Float,
                          fusedSiLU: Bool = false, outputDType: DType = .float32) throws -> Tensor {
        try groupNorm(x, offset: nil, groups: groups, weight: weight, bias: bias, eps: eps, fusedSiLU: fusedSiLU,
                      outputDType: outputDType)
    }

    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) throws -> Tensor {
        try layerNorm(x, weight: weight, bias: bias, eps: eps, outputDType: .float32)
    }

    public func geglu(_ x: Tensor) throws -> Tensor { try geglu(x, outputDType: .float32) }

    public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, causal: Bool = false) throws -> Tensor {
        try attention(query: query, key: key, value: value, heads: heads, scale: nil, causal: causal)
    }

    /// [N, H, W, C] → [N, 2H, 2W, C]
    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4 else { throw TensorError.invalidArgument(op: "upsampleNearest2x", message: "expected NHWC, got \(x.shape)") }
        return try resizeNearest(x, height: 2 * x.shape[1], width: 2 * x.shape[2])
    }

    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.add, a, b) }
    public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.mul, a, b) }
    public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.sub, a, b) }

    /// Sinusoidal timestep embedding exactly as diffusers' `get_timestep_embedding`, step for step
    /// in fp32: freq_i = exp(-ln(maxPeriod) · i / (half − downscaleFreqShift)); the result is
    /// [sin, cos] per timestep, or [cos, sin] with `flipSinToCos`; odd widths get a zero column.
    public func timestepEmbedding(_ timesteps: [Float], dim: Int, flipSinToCos: Bool,
                                  downscaleFreqShift: Float, scale: Float = 1,
                                  maxPeriod: Float = 10000) throws -> Tensor {
        let half = dim / 2
        guard dim >= 2, Float(half) != downscaleFreqShift else {
            throw TensorError.invalidArgument(op: "timestepEmbedding", message: "dim \(dim) too small")
        }
        // diffusers multiplies by the Python double -ln(maxPeriod), which torch rounds to fp32.
        let negLogPeriod = Float(-Foundation.log(Double(maxPeriod)))
        let frequencies = (0..<half).map { i in
            Foundation.exp(negLogPeriod * Float(i) / (Float(half) - downscaleFreqShift))
        }
        var values = [Float](repeating: 0, count: timesteps.count * dim)
        for (row, t) in timesteps.enumerated() {
            for i in 0..<half {
                let arg = scale * (t * frequencies[i])
                let (first, second) = flipSinToCos ? (Foundation.cos(arg), Foundation.sin(arg)) : (Foundation.sin(arg), Foundation.cos(arg))
                values[row * dim + i] = first
                values[row * dim + half + i] = second
            }
        }
        return try tensor(values, shape: [timesteps.count, dim])
    }
}
