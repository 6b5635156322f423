import ModelFiles
import Tensors

/// diffusers `Attention` as used by SD's transformer blocks: q/k/v projections without bias,
/// `to_out.0` with bias; heads interleaved in the last dimension ([N, L, heads·headDim]).
public struct Attention: Sendable {
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    let heads: Int
    let backend: any Backend

    public init(_ scope: WeightScope, queryDim: Int, contextDim: Int, heads: Int, headDim: Int,
                projectionBias: Bool = false) throws {
        let inner = heads * headDim
        toQ = try Linear(scope("to_q"), inFeatures: queryDim, outFeatures: inner, bias: projectionBias)
        toK = try Linear(scope("to_k"), inFeatures: contextDim, outFeatures: inner, bias: projectionBias)
        toV = try Linear(scope("to_v"), inFeatures: contextDim, outFeatures: inner, bias: projectionBias)
        toOut = try Linear(scope("to_out")(0), inFeatures: inner, outFeatures: queryDim)
        self.heads = heads
        backend = scope.backend
    }

    /// Self-attention when `context` is nil; the output projection adds `residual`.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, residual: Tensor?) throws -> Tensor {
        try self(x, keyValue: keyValue(context ?? x), residual: residual)
    }

    /// Attention over keys and values already projected (`keyValue(_:)`): the cross-attention of
    /// a fixed prompt reuses them every call.
    func callAsFunction(_ x: Tensor, keyValue: CrossAttentionContext.KeyValue, residual: Tensor?) throws -> Tensor {
        let q = try toQ(x, outputDType: backend.computeDType)
        let attended = try backend.attention(query: q, key: keyValue.key, value: keyValue.value, heads: heads)
        return try toOut(attended, residual: residual)
    }

    /// `to_k` and `to_v` of `source`, in the compute dtype the attention kernel reads.
    func keyValue(_ source: Tensor) throws -> CrossAttentionContext.KeyValue {
        let compute = backend.computeDType
        return try .init(key: toK(source, outputDType: compute), value: toV(source, outputDType: compute))
    }
}

/// diffusers `BasicTransformerBlock` (norm_type "layer_norm", GEGLU feed-forward):
/// h += attn1(norm1(h)); h += attn2(norm2(h), context); h += ff(norm3(h)).
public struct BasicTransformerBlock: Sendable {
    let norm1: LayerNorm, attn1: Attention
    let norm2: LayerNorm, attn2: Attention
    let norm3: LayerNorm, feedForwardIn: Linear, feedForwardOut: Linear
    let backend: any Backend

    public init(_ scope: WeightScope, channels: Int, heads: Int, headDim: Int, contextDim: Int) throws {
        norm1 = try LayerNorm(scope("norm1"), channels: channels, eps: 1e-5)
        attn1 = try Attention(scope("attn1"), queryDim: channels, contextDim: channels, heads: heads, headDim: headDim)
        norm2 = try LayerNorm(scope("norm2"), channels: channels, eps: 1e-5)
        attn2 = try Attention(scope("attn2"), queryDim: channels, contextDim: contextDim, heads: heads, headDim: headDim)
        norm3 = try LayerNorm(scope("norm3"), channels: channels, eps: 1e-5)
        // FeedForward(mult 4, GEGLU): net.0.proj doubles the width (value half, then gate half);
        // net.1 is dropout; net.2 projects back.
        let inner = 4 * channels
        feedForwardIn = try Linear(scope("ff")("net")(0)("proj"), inFeatures: channels, outFeatures: 2 * inner)
        feedForwardOut = try Linear(scope("ff")("net")(2), inFeatures: inner, outFeatures: channels)
        backend = scope.backend
    }

    /// `h`: [N, L, C] fp32; `crossAttention`: attn2's keys and values of the prompt [N, 77, inner].
    func callAsFunction(_ h: Tensor, crossAttention: CrossAttentionContext.KeyValue) throws -> Tensor {
        let compute = backend.computeDType
        var h = try attn1(norm1(h, outputDType: compute), residual: h)
        h = try attn2(norm2(h, outputDType: compute), keyValue: crossAttention, residual: h)
        let gated = try backend.geglu(feedForwardIn(norm3(h, outputDType: compute)), outputDType: compute)
        return try feedForwardOut(gated, residual: h)
    }
}

/// diffusers `Transformer2DModel` (continuous input): GroupNorm (eps 1e-6), proj_in, transformer
/// blocks, proj_out, plus the input as residual. SD 1.x projects with 1×1 convolutions, SD 2.x
/// with linear layers (`use_linear_projection`); in NHWC both are the same product.
public struct Transformer2DModel: Sendable {
    let norm: GroupNorm
    let projectIn: Linear, projectOut: Linear
    let blocks: [BasicTransformerBlock]
    let channels: Int
    let backend: any Backend

    public init(_ scope: WeightScope, channels: Int, heads: Int, contextDim: Int, layers: Int, groups: Int) throws {
        norm = try GroupNorm(scope("norm"), groups: groups, channels: channels, eps: 1e-6)
        // Conv projections are stored [C, C, 1, 1]; WeightScope binds them as [C, C] linear weights.
        projectIn = try Linear(scope("proj_in"), inFeatures: channels, outFeatures: channels)
        projectOut = try Linear(scope("proj_out"), inFeatures: channels, outFeatures: channels)
        blocks = try (0..<layers).map {
            try BasicTransformerBlock(scope("transformer_blocks")($0), channels: channels, heads: heads,
                                      headDim: channels / heads, contextDim: contextDim)
        }
        self.channels = channels
        backend = scope.backend
    }

    /// x: [N, H, W, C]; `crossAttention`: one key/value pair per block (`crossAttention(_:)`).
    func callAsFunction(_ x: Tensor, crossAttention: ArraySlice<CrossAttentionContext.KeyValue>) throws -> Tensor {
        let (n, height, width) = (x.shape[0], x.shape[1], x.shape[2])
        let tokens = try x.reshaped([n, height * width, channels])
        var h = try projectIn(norm(tokens, outputDType: backend.computeDType))
        for (block, keyValue) in zip(blocks, crossAttention) { h = try block(h, crossAttention: keyValue) }
        return try projectOut(h, residual: tokens).reshaped([n, height, width, channels])
    }

    /// The blocks' cross-attention keys and values of `context` [N, T, contextDim].
    func crossAttention(_ context: Tensor) throws -> [CrossAttentionContext.KeyValue] {
        try blocks.map { try $0.attn2.keyValue(context) }
    }
}
