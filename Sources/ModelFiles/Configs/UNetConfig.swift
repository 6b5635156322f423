import Foundation

/// `unet/config.json` of a diffusers `UNet2DConditionModel`. Defaults are diffusers' own, so a
/// config that omits a key means what it means to diffusers.
public struct UNetConfig: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var layersPerBlock: Int
    /// diffusers quirk: in SD 1.x/2.x configs this is the number of heads, not their width.
    public var attentionHeadDim: IntOrList
    public var numAttentionHeads: IntOrList?
    public var crossAttentionDim: Int
    public var transformerLayersPerBlock: IntOrList
    public var useLinearProjection: Bool
    public var normNumGroups: Int
    public var normEps: Float
    public var flipSinToCos: Bool
    public var freqShift: Int
    public var actFn: String
    public var upcastAttention: Bool
    public var sampleSize: Int?
    public var midBlockType: String?
    public var addEmbeddingType: String?
    public var classEmbedType: String?
    public var timeCondProjDim: Int?
    public var resnetTimeScaleShift: String
    public var onlyCrossAttention: Bool
    public var dualCrossAttention: Bool
    public var centerInputSample: Bool
    public var timeEmbeddingType: String

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels"
        case blockOutChannels = "block_out_channels", downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case layersPerBlock = "layers_per_block", attentionHeadDim = "attention_head_dim"
        case numAttentionHeads = "num_attention_heads", crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block", useLinearProjection = "use_linear_projection"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps", flipSinToCos = "flip_sin_to_cos"
        case freqShift = "freq_shift", actFn = "act_fn", upcastAttention = "upcast_attention", sampleSize = "sample_size"
        case midBlockType = "mid_block_type", addEmbeddingType = "addition_embed_type", classEmbedType = "class_embed_type"
        case timeCondProjDim = "time_cond_proj_dim", resnetTimeScaleShift = "resnet_time_scale_shift"
        case onlyCrossAttention = "only_cross_attention", dualCrossAttention = "dual_cross_attention"
        case centerInputSample = "center_input_sample", timeEmbeddingType = "time_embedding_type"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 4
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 4
        blockOutChannels = try c.decode([Int].self, forKey: .blockOutChannels)
        downBlockTypes = try c.decode([String].self, forKey: .downBlockTypes)
        upBlockTypes = try c.decode([String].self, forKey: .upBlockTypes)
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? 2
        attentionHeadDim = try c.decodeIfPresent(IntOrList.self, forKey: .attentionHeadDim) ?? .single(8)
        numAttentionHeads = try c.decodeIfPresent(IntOrList.self, forKey: .numAttentionHeads)
        crossAttentionDim = try c.decode(Int.self, forKey: .crossAttentionDim)
        transformerLayersPerBlock = try c.decodeIfPresent(IntOrList.self, forKey: .transformerLayersPerBlock) ?? .single(1)
        useLinearProjection = try c.decodeIfPresent(Bool.self, forKey: .useLinearProjection) ?? false
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32
        normEps = try c.decodeIfPresent(Float.self, forKey: .normEps) ?? 1e-5
        flipSinToCos = try c.decodeIfPresent(Bool.self, forKey: .flipSinToCos) ?? true
        freqShift = try c.decodeIfPresent(Int.self, forKey: .freqShift) ?? 0
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? "silu"
        upcastAttention = try c.decodeIfPresent(Bool.self, forKey: .upcastAttention) ?? false
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        midBlockType = try c.decodeIfPresent(String.self, forKey: .midBlockType) ?? "UNetMidBlock2DCrossAttn"
        addEmbeddingType = try c.decodeIfPresent(String.self, forKey: .addEmbeddingType)
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
        resnetTimeScaleShift = try c.decodeIfPresent(String.self, forKey: .resnetTimeScaleShift) ?? "default"
        onlyCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .onlyCrossAttention) ?? false
        dualCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .dualCrossAttention) ?? false
        centerInputSample = try c.decodeIfPresent(Bool.self, forKey: .centerInputSample) ?? false
        timeEmbeddingType = try c.decodeIfPresent(String.self, forKey: .timeEmbeddingType) ?? "positional"
    }

    public var levels: Int { blockOutChannels.count }

    /// Heads per level, with the attention_head_dim quirk resolved in this one place: diffusers
    /// uses `num_attention_heads` when present, else `attention_head_dim` *as the head count*.
    public func headsPerLevel() throws -> [Int] {
        try (numAttentionHeads ?? attentionHeadDim).perLevel(levels, key: "attention_head_dim")
    }

    public func transformerLayersPerLevel() throws -> [Int] {
        try transformerLayersPerBlock.perLevel(levels, key: "transformer_layers_per_block")
    }

    /// Rejects what the UNet implementation does not cover, naming the key.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws { if !ok { throw ConfigError.invalid(message) } }
        try require(levels >= 1 && downBlockTypes.count == levels && upBlockTypes.count == levels,
                    "block_out_channels, down_block_types and up_block_types must have the same length")
        try require(blockOutChannels.allSatisfy { $0 > 0 && $0 % normNumGroups == 0 },
                    "every block_out_channels entry must be a positive multiple of norm_num_groups \(normNumGroups)")
        let known: Set<String> = ["CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
        for t in downBlockTypes + upBlockTypes { try require(known.contains(t), "unsupported block type \(t)") }
        try require(midBlockType == "UNetMidBlock2DCrossAttn", "unsupported mid_block_type \(midBlockType ?? "none")")
        try require(addEmbeddingType == nil, "addition_embed_type \(addEmbeddingType ?? "") (SDXL) is not supported yet")
        try require(classEmbedType == nil, "class_embed_type is not supported")
        try require(timeCondProjDim == nil, "time_cond_proj_dim (LCM-distilled UNets) is not supported yet")
        try require(resnetTimeScaleShift == "default", "resnet_time_scale_shift \(resnetTimeScaleShift) is not supported")
        try require(!onlyCrossAttention && !dualCrossAttention, "only/dual cross-attention is not supported")
        try require(actFn == "silu", "act_fn \(actFn) is not supported")
        try require(timeEmbeddingType == "positional", "time_embedding_type \(timeEmbeddingType) is not supported")
        let heads = try headsPerLevel()
        for (level, (channels, h)) in zip(blockOutChannels, heads).enumerated() {
            try require(h > 0 && channels % h == 0, "level \(level): \(channels) channels do not split into \(h) heads")
        }
        _ = try transformerLayersPerLevel()
    }
}

extension UNetConfig {
    /// Decodes a config given as JSON text (presets, tests).
    public static func json(_ text: String) throws -> UNetConfig {
        try ConfigFile.decode(UNetConfig.self, from: Data(text.utf8), path: "<preset>")
    }

    /// `stabilityai/sd-turbo` `unet/config.json` (the SD 2.1-base architecture).
    public static var sdTurbo: UNetConfig { sd21 }

    /// `stabilityai/stable-diffusion-2-1-base` `unet/config.json`.
    public static var sd21: UNetConfig {
        // A constant, decoded by the tests; it cannot fail at run time.
        try! json("""
        {"in_channels": 4, "out_channels": 4, "block_out_channels": [320, 640, 1280, 1280],
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
         "layers_per_block": 2, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
         "use_linear_projection": true, "norm_num_groups": 32, "norm_eps": 1e-05, "flip_sin_to_cos": true,
         "freq_shift": 0, "act_fn": "silu", "sample_size": 64}
        """)
    }

    /// `runwayml/stable-diffusion-v1-5` `unet/config.json`.
    public static var sd15: UNetConfig {
        // A constant, decoded by the tests; it cannot fail at run time.
        try! json("""
        {"in_channels": 4, "out_channels": 4, "block_out_channels": [320, 640, 1280, 1280],
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
         "layers_per_block": 2, "attention_head_dim": 8, "cross_attention_dim": 768,
         "use_linear_projection": false, "norm_num_groups": 32, "norm_eps": 1e-05, "flip_sin_to_cos": true,
         "freq_shift": 0, "act_fn": "silu", "sample_size": 64}
        """)
    }
}
