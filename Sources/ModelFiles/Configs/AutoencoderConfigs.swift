import Foundation

/// `vae/config.json` of a diffusers `AutoencoderKL` (the SD VAE).
public struct AutoencoderKLConfig: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var latentChannels: Int
    public var normNumGroups: Int
    public var scalingFactor: Float
    public var shiftFactor: Float?
    public var useQuantConv: Bool
    public var usePostQuantConv: Bool
    public var midBlockAddAttention: Bool
    public var actFn: String

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block", latentChannels = "latent_channels", normNumGroups = "norm_num_groups"
        case scalingFactor = "scaling_factor", shiftFactor = "shift_factor", useQuantConv = "use_quant_conv"
        case usePostQuantConv = "use_post_quant_conv", midBlockAddAttention = "mid_block_add_attention", actFn = "act_fn"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3
        blockOutChannels = try c.decode([Int].self, forKey: .blockOutChannels)
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? 1
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 0.18215
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        useQuantConv = try c.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? true
        usePostQuantConv = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? true
        midBlockAddAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? true
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? "silu"
    }

    public func validate() throws {
        guard !blockOutChannels.isEmpty, blockOutChannels.allSatisfy({ $0 > 0 && $0 % normNumGroups == 0 }) else {
            throw ConfigError.invalid("block_out_channels must be positive multiples of norm_num_groups \(normNumGroups)")
        }
        guard actFn == "silu" else { throw ConfigError.invalid("act_fn \(actFn) is not supported") }
        guard layersPerBlock >= 1, latentChannels >= 1 else { throw ConfigError.invalid("sizes must be positive") }
    }

    /// The SD 1.x/2.x VAE (`vae/config.json` of SD 1.5, SD 2.1 and sd-turbo).
    public static var sd: AutoencoderKLConfig {
        // A constant, decoded by the tests; it cannot fail at run time.
        try! ConfigFile.decode(AutoencoderKLConfig.self, from: Data("""
        {"in_channels": 3, "out_channels": 3, "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
         "latent_channels": 4, "norm_num_groups": 32, "scaling_factor": 0.18215, "act_fn": "silu"}
        """.utf8), path: "<preset>")
    }
}

/// `config.json` of a diffusers `AutoencoderTiny` (TAESD, `madebyollin/taesd`).
public struct AutoencoderTinyConfig: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var encoderBlockOutChannels: [Int]
    public var decoderBlockOutChannels: [Int]
    public var numEncoderBlocks: [Int]
    public var numDecoderBlocks: [Int]
    public var latentChannels: Int
    public var upsamplingScalingFactor: Int
    public var actFn: String
    public var scalingFactor: Float
    public var latentMagnitude: Float
    public var latentShift: Float

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels"
        case encoderBlockOutChannels = "encoder_block_out_channels", decoderBlockOutChannels = "decoder_block_out_channels"
        case numEncoderBlocks = "num_encoder_blocks", numDecoderBlocks = "num_decoder_blocks"
        case latentChannels = "latent_channels", upsamplingScalingFactor = "upsampling_scaling_factor", actFn = "act_fn"
        case scalingFactor = "scaling_factor", latentMagnitude = "latent_magnitude", latentShift = "latent_shift"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3
        encoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .encoderBlockOutChannels) ?? [64, 64, 64, 64]
        decoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .decoderBlockOutChannels) ?? [64, 64, 64, 64]
        numEncoderBlocks = try c.decodeIfPresent([Int].self, forKey: .numEncoderBlocks) ?? [1, 3, 3, 3]
        numDecoderBlocks = try c.decodeIfPresent([Int].self, forKey: .numDecoderBlocks) ?? [3, 3, 3, 1]
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4
        upsamplingScalingFactor = try c.decodeIfPresent(Int.self, forKey: .upsamplingScalingFactor) ?? 2
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? "relu"
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 1.0
        latentMagnitude = try c.decodeIfPresent(Float.self, forKey: .latentMagnitude) ?? 3
        latentShift = try c.decodeIfPresent(Float.self, forKey: .latentShift) ?? 0.5
    }

    public func validate() throws {
        guard encoderBlockOutChannels.count == numEncoderBlocks.count, decoderBlockOutChannels.count == numDecoderBlocks.count,
              !encoderBlockOutChannels.isEmpty, !decoderBlockOutChannels.isEmpty else {
            throw ConfigError.invalid("block channel and block count lists must have matching lengths")
        }
        guard actFn == "relu" else { throw ConfigError.invalid("act_fn \(actFn) is not supported (relu)") }
        guard upsamplingScalingFactor == 2 else { throw ConfigError.invalid("only upsampling_scaling_factor 2 is supported") }
    }

    /// `madebyollin/taesd` (diffusers format) — the defaults.
    public static var taesd: AutoencoderTinyConfig {
        // A constant, decoded by the tests; it cannot fail at run time.
        try! ConfigFile.decode(AutoencoderTinyConfig.self, from: Data("{}".utf8), path: "<preset>")
    }
}
