import ModelFiles
import Tensors

/// The VAE's single-head mid-block attention (diffusers `Attention` with group_norm, bias on
/// every projection, residual connection).
struct SpatialSelfAttention: Sendable {
    let norm: GroupNorm
    let attention: Attention
    let channels: Int

    init(_ scope: WeightScope, channels: Int, groups: Int) throws {
        norm = try GroupNorm(scope("group_norm"), groups: groups, channels: channels, eps: 1e-6)
        attention = try Attention(scope, queryDim: channels, contextDim: channels, heads: 1, headDim: channels,
                                  projectionBias: true)
        self.channels = channels
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let tokens = try x.reshaped([x.shape[0], x.shape[1] * x.shape[2], channels])
        let normed = try norm(tokens, outputDType: attention.backend.computeDType)
        return try attention(normed, residual: tokens).reshaped(x.shape)
    }
}

/// `UNetMidBlock2D` of the VAE: resnet, attention, resnet (no time embedding, eps 1e-6).
struct VAEMidBlock: Sendable {
    let first: ResnetBlock2D, attention: SpatialSelfAttention?, second: ResnetBlock2D

    init(_ scope: WeightScope, channels: Int, groups: Int, withAttention: Bool) throws {
        first = try ResnetBlock2D(scope("resnets")(0), inChannels: channels, outChannels: channels,
                                  timeEmbeddingChannels: nil, groups: groups, eps: 1e-6)
        attention = withAttention ? try SpatialSelfAttention(scope("attentions")(0), channels: channels, groups: groups) : nil
        second = try ResnetBlock2D(scope("resnets")(1), inChannels: channels, outChannels: channels,
                                   timeEmbeddingChannels: nil, groups: groups, eps: 1e-6)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try first(x, activatedEmbedding: nil)
        if let attention { h = try attention(h) }
        return try second(h, activatedEmbedding: nil)
    }
}

/// diffusers `AutoencoderKL` (the SD VAE): `encode` gives the latent distribution's mean,
/// `decode` maps latents back to an image. Images are NHWC in [-1, 1]; latents are unscaled
/// (callers multiply by `config.scalingFactor` after encoding and divide before decoding).
public struct AutoencoderKL: Sendable {
    public let config: AutoencoderKLConfig
    let encoderIn: Conv2d
    let encoderDown: [(resnets: [ResnetBlock2D], downsample: Conv2d?)]
    let encoderMid: VAEMidBlock
    let encoderNorm: GroupNorm, encoderOut: Conv2d
    let quant: Conv2d?
    let postQuant: Conv2d?
    let decoderIn: Conv2d
    let decoderMid: VAEMidBlock
    let decoderUp: [(resnets: [ResnetBlock2D], upsample: Conv2d?)]
    let decoderNorm: GroupNorm, decoderOut: Conv2d
    let backend: any Backend

    public init(_ scope: WeightScope, config: AutoencoderKLConfig) throws {
        do { try config.validate() } catch {
            throw ModelError.unsupportedConfig(path: "vae/config.json", reason: "\(error)")
        }
        self.config = config
        backend = scope.backend
        let ch = config.blockOutChannels, groups = config.normNumGroups, latent = config.latentChannels
        let e = scope("encoder"), d = scope("decoder")

        encoderIn = try Conv2d(e("conv_in"), inChannels: config.inChannels, outChannels: ch[0], kernel: 3)
        var down: [(resnets: [ResnetBlock2D], downsample: Conv2d?)] = []
        var previous = ch[0]
        for (level, out) in ch.enumerated() {
            let s = e("down_blocks")(level)
            let resnets = try (0..<config.layersPerBlock).map {
                try ResnetBlock2D(s("resnets")($0), inChannels: $0 == 0 ? previous : out, outChannels: out,
                                  timeEmbeddingChannels: nil, groups: groups, eps: 1e-6)
            }
            // diffusers pads (left 0, right 1, top 0, bottom 1) and convolves with stride 2, padding 0.
            let downsample = level < ch.count - 1
                ? try Conv2d(s("downsamplers")(0)("conv"), inChannels: out, outChannels: out, kernel: 3,
                             geometry: Conv2dGeometry(strideH: 2, strideW: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1))
                : nil
            down.append((resnets, downsample))
            previous = out
        }
        encoderDown = down
        let last = ch[ch.count - 1]
        encoderMid = try VAEMidBlock(e("mid_block"), channels: last, groups: groups, withAttention: config.midBlockAddAttention)
        encoderNorm = try GroupNorm(e("conv_norm_out"), groups: groups, channels: last, eps: 1e-6)
        encoderOut = try Conv2d(e("conv_out"), inChannels: last, outChannels: 2 * latent, kernel: 3)
        quant = config.useQuantConv
            ? try Conv2d(scope("quant_conv"), inChannels: 2 * latent, outChannels: 2 * latent, kernel: 1) : nil
        postQuant = config.usePostQuantConv
            ? try Conv2d(scope("post_quant_conv"), inChannels: latent, outChannels: latent, kernel: 1) : nil

        decoderIn = try Conv2d(d("conv_in"), inChannels: latent, outChannels: last, kernel: 3)
        decoderMid = try VAEMidBlock(d("mid_block"), channels: last, groups: groups, withAttention: config.midBlockAddAttention)
        var up: [(resnets: [ResnetBlock2D], upsample: Conv2d?)] = []
        previous = last
        for (level, out) in ch.reversed().enumerated() {
            let s = d("up_blocks")(level)
            let resnets = try (0...config.layersPerBlock).map {
                try ResnetBlock2D(s("resnets")($0), inChannels: $0 == 0 ? previous : out, outChannels: out,
                                  timeEmbeddingChannels: nil, groups: groups, eps: 1e-6)
            }
            let upsample = level < ch.count - 1
                ? try Conv2d(s("upsamplers")(0)("conv"), inChannels: out, outChannels: out, kernel: 3) : nil
            up.append((resnets, upsample))
            previous = out
        }
        decoderUp = up
        decoderNorm = try GroupNorm(d("conv_norm_out"), groups: groups, channels: ch[0], eps: 1e-6)
        decoderOut = try Conv2d(d("conv_out"), inChannels: ch[0], outChannels: config.outChannels, kernel: 3)
        try scope.requireAllUsed()
    }

    /// image [N, H, W, 3] in [-1, 1], H and W multiples of 2^(levels−1) → mean latents [N, H/f, W/f, L].
    public func encode(_ image: Tensor) throws -> Tensor { try encodeMoments(image).mean }

    /// The latent distribution: mean and log-variance [N, H/f, W/f, L] each (the log-variance
    /// clamped to [−30, 20] as diffusers does). Sampling is mean + exp(logvar / 2) · noise.
    public func encodeMoments(_ image: Tensor) throws -> (mean: Tensor, logVariance: Tensor) {
        let factor = 1 << (config.blockOutChannels.count - 1)
        guard image.rank == 4, image.shape[3] == config.inChannels, image.shape[1] % factor == 0,
              image.shape[2] % factor == 0, image.shape[1] > 0, image.shape[2] > 0 else {
            throw ModelError.badInput(model: "AutoencoderKL", reason: "image must be [N, H, W, \(config.inChannels)] with H, W multiples of \(factor); got \(image.shape)")
        }
        var h = try encoderIn(image)
        for block in encoderDown {
            for resnet in block.resnets { h = try resnet(h, activatedEmbedding: nil) }
            if let downsample = block.downsample { h = try downsample(h) }
        }
        h = try encoderMid(h)
        var moments = try encoderOut(encoderNorm(h, silu: true, outputDType: backend.computeDType))
        if let quant { moments = try quant(moments) }
        // Split the 2L channels on the host: latents are small (64 × 64 × 8 at 512²).
        let values = try backend.floats(moments), latent = config.latentChannels, pixels = moments.count / (2 * latent)
        var mean = [Float](), logVariance = [Float]()
        mean.reserveCapacity(pixels * latent)
        logVariance.reserveCapacity(pixels * latent)
        for p in 0..<pixels {
            mean.append(contentsOf: values[(p * 2 * latent)..<(p * 2 * latent + latent)])
            logVariance.append(contentsOf: values[(p * 2 * latent + latent)..<((p + 1) * 2 * latent)].map { min(max($0, -30), 20) })
        }
        let shape = [moments.shape[0], moments.shape[1], moments.shape[2], latent]
        return (try backend.tensor(mean, shape: shape), try backend.tensor(logVariance, shape: shape))
    }

    /// latents [N, h, w, L] → image [N, h·f, w·f, 3], roughly in [-1, 1] (not clamped).
    public func decode(_ latents: Tensor) throws -> Tensor {
        guard latents.rank == 4, latents.shape[3] == config.latentChannels else {
            throw ModelError.badInput(model: "AutoencoderKL", reason: "latents must be [N, h, w, \(config.latentChannels)], got \(latents.shape)")
        }
        var h = try postQuant.map { try $0(latents) } ?? latents
        h = try decoderMid(decoderIn(h))
        for block in decoderUp {
            for resnet in block.resnets { h = try resnet(h, activatedEmbedding: nil) }
            if let upsample = block.upsample { h = try upsample(backend.upsampleNearest2x(h)) }
        }
        return try decoderOut(decoderNorm(h, silu: true, outputDType: backend.computeDType))
    }
}
