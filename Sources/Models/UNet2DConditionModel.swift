import ModelFiles
import Tensors

/// diffusers `UNet2DConditionModel` for SD 1.x / 2.x / sd-turbo, built from its config: any number
/// of levels, CrossAttn/plain down and up blocks, conv or linear projections, per-level heads.
/// Activations are NHWC: sample [N, H, W, 4] → noise prediction [N, H, W, 4].
public struct UNet2DConditionModel: Sendable {
    public let config: UNetConfig
    let timeLinear1: Linear, timeLinear2: Linear
    let convIn: Conv2d
    let down: [DownBlock]
    let mid: (ResnetBlock2D, Transformer2DModel, ResnetBlock2D)
    let up: [UpBlock]
    let normOut: GroupNorm
    let convOut: Conv2d
    let backend: any Backend
    /// The transformer models in call order (down blocks, mid block, up blocks), and their blocks'
    /// count: the cross-attention layers a `CrossAttentionContext` holds, in that order.
    let transformers: [Transformer2DModel]
    let crossAttentionLayers: Int

    struct DownBlock: Sendable {
        var resnets: [ResnetBlock2D]
        var attentions: [Transformer2DModel]
        var downsample: Conv2d?
    }

    struct UpBlock: Sendable {
        var resnets: [ResnetBlock2D]
        var attentions: [Transformer2DModel]
        var upsample: Conv2d?
    }

    /// Binds every weight under `scope` (the root of `unet/diffusion_pytorch_model.safetensors`)
    /// and fails on a missing, misshaped or unused tensor.
    public init(_ scope: WeightScope, config: UNetConfig) throws {
        do { try config.validate() } catch {
            throw ModelError.unsupportedConfig(path: "unet/config.json", reason: "\(error)")
        }
        self.config = config
        backend = scope.backend
        let channels = config.blockOutChannels, levels = config.levels
        let heads = try config.headsPerLevel(), depth = try config.transformerLayersPerLevel()
        let groups = config.normNumGroups, eps = config.normEps, context = config.crossAttentionDim
        let timeChannels = 4 * channels[0]

        timeLinear1 = try Linear(scope("time_embedding")("linear_1"), inFeatures: channels[0], outFeatures: timeChannels)
        timeLinear2 = try Linear(scope("time_embedding")("linear_2"), inFeatures: timeChannels, outFeatures: timeChannels)
        convIn = try Conv2d(scope("conv_in"), inChannels: config.inChannels, outChannels: channels[0], kernel: 3)

        var down: [DownBlock] = []
        var previous = channels[0]
        for level in 0..<levels {
            let s = scope("down_blocks")(level), out = channels[level]
            let crossAttention = config.downBlockTypes[level] == "CrossAttnDownBlock2D"
            var block = DownBlock(resnets: [], attentions: [], downsample: nil)
            for i in 0..<config.layersPerBlock {
                block.resnets.append(try ResnetBlock2D(s("resnets")(i), inChannels: i == 0 ? previous : out, outChannels: out,
                                                       timeEmbeddingChannels: timeChannels, groups: groups, eps: eps))
                if crossAttention {
                    block.attentions.append(try Transformer2DModel(s("attentions")(i), channels: out, heads: heads[level],
                                                                   contextDim: context, layers: depth[level], groups: groups))
                }
            }
            if level < levels - 1 {
                block.downsample = try Conv2d(s("downsamplers")(0)("conv"), inChannels: out, outChannels: out, kernel: 3,
                                              stride: 2, padding: 1)
            }
            down.append(block)
            previous = out
        }
        self.down = down

        let last = channels[levels - 1], m = scope("mid_block")
        mid = (try ResnetBlock2D(m("resnets")(0), inChannels: last, outChannels: last, timeEmbeddingChannels: timeChannels,
                                 groups: groups, eps: eps),
               try Transformer2DModel(m("attentions")(0), channels: last, heads: heads[levels - 1], contextDim: context,
                                      layers: depth[levels - 1], groups: groups),
               try ResnetBlock2D(m("resnets")(1), inChannels: last, outChannels: last, timeEmbeddingChannels: timeChannels,
                                 groups: groups, eps: eps))

        // Up blocks walk the levels in reverse; resnet i concatenates the newest skip tensor.
        var up: [UpBlock] = []
        let reversedChannels = Array(channels.reversed()), reversedHeads = Array(heads.reversed())
        let reversedDepth = Array(depth.reversed())
        previous = last
        for level in 0..<levels {
            let s = scope("up_blocks")(level), out = reversedChannels[level]
            let skipLevelChannels = reversedChannels[min(level + 1, levels - 1)]
            let crossAttention = config.upBlockTypes[level] == "CrossAttnUpBlock2D"
            var block = UpBlock(resnets: [], attentions: [], upsample: nil)
            for i in 0...config.layersPerBlock {
                let skip = i == config.layersPerBlock ? skipLevelChannels : out
                let input = (i == 0 ? previous : out) + skip
                block.resnets.append(try ResnetBlock2D(s("resnets")(i), inChannels: input, outChannels: out,
                                                       timeEmbeddingChannels: timeChannels, groups: groups, eps: eps))
                if crossAttention {
                    block.attentions.append(try Transformer2DModel(s("attentions")(i), channels: out, heads: reversedHeads[level],
                                                                   contextDim: context, layers: reversedDepth[level], groups: groups))
                }
            }
            if level < levels - 1 {
                block.upsample = try Conv2d(s("upsamplers")(0)("conv"), inChannels: out, outChannels: out, kernel: 3)
            }
            up.append(block)
            previous = out
        }
        self.up = up
        transformers = down.flatMap(\.attentions) + [mid.1] + up.flatMap(\.attentions)
        crossAttentionLayers = transformers.reduce(0) { $0 + $1.blocks.count }

        normOut = try GroupNorm(scope("conv_norm_out"), groups: groups, channels: channels[0], eps: eps)
        convOut = try Conv2d(scope("conv_out"), inChannels: channels[0], outChannels: config.outChannels, kernel: 3)
        try scope.requireAllUsed()
    }

    /// sample: [N, H, W, in]; timesteps: one per row; context: [N, T, crossAttentionDim]. Any latent
    /// size works; sizes that do not halve evenly follow diffusers' `upsample_size` path.
    public func callAsFunction(_ sample: Tensor, timesteps: [Float], context: Tensor) throws -> Tensor {
        try checkInputs(sample, timesteps, context)
        return try self(sample, timesteps: timesteps, context: crossAttention(context))
    }

    /// The prompt's keys and values for every cross-attention layer, computed once (`context`:
    /// [N, T, crossAttentionDim]); pass the result to `callAsFunction(_:timesteps:context:)` every frame.
    public func crossAttention(_ context: Tensor) throws -> CrossAttentionContext {
        guard context.rank == 3, context.shape[0] > 0, context.shape[2] == config.crossAttentionDim else {
            throw ModelError.badInput(model: "UNet", reason: "context must be [N, T, \(config.crossAttentionDim)], got \(context.shape)")
        }
        return CrossAttentionContext(embeddings: context, layers: try transformers.flatMap { try $0.crossAttention(context) })
    }

    /// As `callAsFunction(_:timesteps:context:)` with the prompt's keys and values already projected.
    public func callAsFunction(_ sample: Tensor, timesteps: [Float], context: CrossAttentionContext) throws -> Tensor {
        try checkInputs(sample, timesteps, context.embeddings)
        guard context.layers.count == crossAttentionLayers else {
            throw ModelError.badInput(model: "UNet", reason: "cross-attention context has \(context.layers.count) layers, this UNet \(crossAttentionLayers)")
        }
        // Each transformer model takes the next `blocks.count` key/value pairs.
        var cursor = 0
        func attend(_ transformer: Transformer2DModel, _ h: Tensor) throws -> Tensor {
            defer { cursor += transformer.blocks.count }
            return try transformer(h, crossAttention: context.layers[cursor..<(cursor + transformer.blocks.count)])
        }
        let c0 = config.blockOutChannels[0]
        // Sinusoidal embedding [cos, sin] (flip_sin_to_cos) → linear → SiLU → linear; every resnet
        // applies SiLU to it again, so that is done once here.
        let sinusoid = try backend.timestepEmbedding(timesteps, dim: c0, flipSinToCos: config.flipSinToCos,
                                                     downscaleFreqShift: Float(config.freqShift))
        let embedding = try timeLinear2(backend.activation(timeLinear1(sinusoid), .silu))
        let activated = try backend.activation(embedding, .silu)

        var h = try convIn(sample)
        var skips = [h]
        for block in down {
            for (i, resnet) in block.resnets.enumerated() {
                h = try resnet(h, activatedEmbedding: activated)
                if !block.attentions.isEmpty { h = try attend(block.attentions[i], h) }
                skips.append(h)
            }
            if let downsample = block.downsample {
                h = try downsample(h)
                skips.append(h)
            }
        }
        h = try mid.0(h, activatedEmbedding: activated)
        h = try attend(mid.1, h)
        h = try mid.2(h, activatedEmbedding: activated)
        for block in up {
            for (i, resnet) in block.resnets.enumerated() {
                guard let skip = skips.popLast() else {
                    throw ModelError.badInput(model: "UNet", reason: "skip connections exhausted")
                }
                h = try resnet(backend.concatChannels([h, skip]), activatedEmbedding: activated)
                if !block.attentions.isEmpty { h = try attend(block.attentions[i], h) }
            }
            // Nearest 2× — or, when a size did not halve evenly on the way down, straight to the size
            // of the skip tensor the next block concatenates (diffusers' upsample_size).
            if let upsample = block.upsample, let next = skips.last {
                h = try upsample(backend.resizeNearest(h, height: next.shape[1], width: next.shape[2]))
            }
        }
        return try convOut(normOut(h, silu: true, outputDType: backend.computeDType))
    }

    func checkInputs(_ sample: Tensor, _ timesteps: [Float], _ context: Tensor) throws {
        guard sample.rank == 4, sample.shape[3] == config.inChannels, sample.shape[1] > 0, sample.shape[2] > 0 else {
            throw ModelError.badInput(model: "UNet", reason: "sample must be [N, H, W, \(config.inChannels)], got \(sample.shape)")
        }
        guard timesteps.count == sample.shape[0] else {
            throw ModelError.badInput(model: "UNet", reason: "\(timesteps.count) timesteps for a batch of \(sample.shape[0])")
        }
        guard context.rank == 3, context.shape[0] == sample.shape[0], context.shape[2] == config.crossAttentionDim else {
            throw ModelError.badInput(model: "UNet", reason: "context must be [\(sample.shape[0]), T, \(config.crossAttentionDim)], got \(context.shape)")
        }
    }
}
