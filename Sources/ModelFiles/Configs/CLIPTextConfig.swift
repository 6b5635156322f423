import Foundation

/// `text_encoder/config.json` of a transformers `CLIPTextModel`.
public struct CLIPTextConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var maxPositionEmbeddings: Int
    /// "quick_gelu" (SD 1.x, OpenAI CLIP) or "gelu" (SD 2.x, OpenCLIP).
    public var hiddenAct: String
    public var layerNormEps: Float

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 77
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "quick_gelu"
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
    }

    public func validate() throws {
        guard [vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, maxPositionEmbeddings]
            .allSatisfy({ $0 > 0 }) else { throw ConfigError.invalid("sizes must be positive") }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ConfigError.invalid("hidden_size \(hiddenSize) does not split into \(numAttentionHeads) heads")
        }
        guard ["quick_gelu", "gelu"].contains(hiddenAct) else {
            throw ConfigError.invalid("hidden_act \(hiddenAct) is not supported (quick_gelu or gelu)")
        }
    }

    public static func json(_ text: String) throws -> CLIPTextConfig {
        try ConfigFile.decode(CLIPTextConfig.self, from: Data(text.utf8), path: "<preset>")
    }

    /// SD 1.5's OpenAI CLIP ViT-L/14 text tower.
    public static var sd15: CLIPTextConfig {
        // A constant, decoded by the tests; it cannot fail at run time.
        try! json("""
        {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
         "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05}
        """)
    }

    /// SD 2.x / sd-turbo: OpenCLIP ViT-H/14 with the last of its 24 layers dropped by the export.
    public static var sd21: CLIPTextConfig {
        // A constant, decoded by the tests; it cannot fail at run time.
        try! json("""
        {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
         "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu", "layer_norm_eps": 1e-05}
        """)
    }

    public static var sdTurbo: CLIPTextConfig { sd21 }
}
