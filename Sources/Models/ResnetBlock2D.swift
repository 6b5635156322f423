import ModelFiles
import Tensors

/// diffusers `ResnetBlock2D` (time_embedding_norm "default", output scale 1):
/// h = conv1(silu(norm1(x))) + time_emb_proj(silu(emb)); h = conv2(silu(norm2(h)));
/// out = shortcut(x) + h, where shortcut is a 1×1 conv only when channels change.
/// The time embedding is folded into norm2 (GroupNorm(h + t) with t as an offset: no pass and no
/// per-image split of conv1); the residual add rides on conv2 as a post-op.
public struct ResnetBlock2D: Sendable {
    let norm1: GroupNorm, conv1: Conv2d, norm2: GroupNorm, conv2: Conv2d
    let timeEmbeddingProjection: Linear?
    let shortcut: Conv2d?
    let outChannels: Int
    let backend: any Backend

    /// `timeEmbeddingChannels` is nil for the VAE's resnets (no time input).
    public init(_ scope: WeightScope, inChannels: Int, outChannels: Int, timeEmbeddingChannels: Int?,
                groups: Int, eps: Float) throws {
        norm1 = try GroupNorm(scope("norm1"), groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(scope("conv1"), inChannels: inChannels, outChannels: outChannels, kernel: 3)
        norm2 = try GroupNorm(scope("norm2"), groups: groups, channels: outChannels, eps: eps)
        conv2 = try Conv2d(scope("conv2"), inChannels: outChannels, outChannels: outChannels, kernel: 3)
        timeEmbeddingProjection = try timeEmbeddingChannels.map {
            try Linear(scope("time_emb_proj"), inFeatures: $0, outFeatures: outChannels)
        }
        shortcut = inChannels == outChannels ? nil
            : try Conv2d(scope("conv_shortcut"), inChannels: inChannels, outChannels: outChannels, kernel: 1)
        self.outChannels = outChannels
        backend = scope.backend
    }

    /// `activatedEmbedding` is silu(emb) [N, T], computed once per UNet call and shared by every block.
    public func callAsFunction(_ x: Tensor, activatedEmbedding: Tensor?) throws -> Tensor {
        let compute = backend.computeDType
        var time: Tensor? = nil
        if let projection = timeEmbeddingProjection, let embedding = activatedEmbedding {
            time = try projection(embedding)   // [N, outChannels]
        }
        let h = try conv1(norm1(x, silu: true, outputDType: compute))
        let skip = try shortcut.map { try $0(x) } ?? x
        return try conv2(norm2(h, offset: time, silu: true, outputDType: compute), addend: skip)
    }
}
