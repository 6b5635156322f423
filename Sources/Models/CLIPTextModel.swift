import ModelFiles
import Tensors

/// transformers `CLIPTextModel` (the SD text encoder): token + position embeddings, pre-LN
/// transformer layers with causal self-attention, a final LayerNorm. SD uses the last hidden state.
public struct CLIPTextModel: Sendable {
    public let config: CLIPTextConfig
    /// Token embeddings stay on the host: a prompt gathers 77 rows, and the table (200 MB for SD 2)
    /// never needs to be a device tensor.
    let tokenEmbedding: [Float]
    let positionEmbedding: Tensor
    let layers: [EncoderLayer]
    let finalNorm: LayerNorm
    let backend: any Backend

    struct EncoderLayer: Sendable {
        let norm1: LayerNorm, q: Linear, k: Linear, v: Linear, out: Linear
        let norm2: LayerNorm, fc1: Linear, fc2: Linear
    }

    /// `scope` is the root of `text_encoder/model.safetensors`. SD repositories name the weights
    /// `text_model.embeddings.…` (transformers 4); transformers 5 saves them without that prefix.
    public init(_ scope: WeightScope, config: CLIPTextConfig) throws {
        do { try config.validate() } catch {
            throw ModelError.unsupportedConfig(path: "text_encoder/config.json", reason: "\(error)")
        }
        self.config = config
        backend = scope.backend
        let root = scope.contains("text_model.final_layer_norm.weight") ? scope("text_model") : scope
        let width = config.hiddenSize, eps = config.layerNormEps
        let table = try root("embeddings")("token_embedding").tensor("weight", shape: [config.vocabSize, width])
        tokenEmbedding = try backend.floats(table)
        positionEmbedding = try root("embeddings")("position_embedding")
            .tensor("weight", shape: [config.maxPositionEmbeddings, width])
        layers = try (0..<config.numHiddenLayers).map { i in
            let s = root("encoder")("layers")(i), a = s("self_attn")
            return EncoderLayer(
                norm1: try LayerNorm(s("layer_norm1"), channels: width, eps: eps),
                q: try Linear(a("q_proj"), inFeatures: width, outFeatures: width),
                k: try Linear(a("k_proj"), inFeatures: width, outFeatures: width),
                v: try Linear(a("v_proj"), inFeatures: width, outFeatures: width),
                out: try Linear(a("out_proj"), inFeatures: width, outFeatures: width),
                norm2: try LayerNorm(s("layer_norm2"), channels: width, eps: eps),
                fc1: try Linear(s("mlp")("fc1"), inFeatures: width, outFeatures: config.intermediateSize),
                fc2: try Linear(s("mlp")("fc2"), inFeatures: config.intermediateSize, outFeatures: width))
        }
        finalNorm = try LayerNorm(root("final_layer_norm"), channels: width, eps: eps)
        try scope.requireAllUsed()
    }

    /// ids: one row of token ids per prompt (each at most max_position_embeddings long).
    /// Returns the last hidden state [N, L, hidden] after `skippingLastLayers` layers are dropped
    /// (0 = SD's usual output; 1 = "clip skip 2"), always through the final LayerNorm.
    public func callAsFunction(_ ids: [[Int]], skippingLastLayers skip: Int = 0) throws -> Tensor {
        let width = config.hiddenSize
        guard let length = ids.first?.count, length > 0, length <= config.maxPositionEmbeddings,
              ids.allSatisfy({ $0.count == length }) else {
            throw ModelError.badInput(model: "CLIPTextModel",
                                      reason: "token rows must share one length of 1...\(config.maxPositionEmbeddings)")
        }
        guard skip >= 0, skip < config.numHiddenLayers else {
            throw ModelError.badInput(model: "CLIPTextModel", reason: "cannot skip \(skip) of \(config.numHiddenLayers) layers")
        }
        var gathered = [Float](repeating: 0, count: ids.count * length * width)
        for (row, tokens) in ids.enumerated() {
            for (position, id) in tokens.enumerated() {
                guard id >= 0, id < config.vocabSize else {
                    throw ModelError.badInput(model: "CLIPTextModel", reason: "token id \(id) outside the vocabulary of \(config.vocabSize)")
                }
                let at = (row * length + position) * width
                gathered.replaceSubrange(at..<(at + width), with: tokenEmbedding[(id * width)..<(id * width + width)])
            }
        }
        let positions = try positionEmbedding.slice(batch: 0..<length)
        var x = try backend.add(backend.tensor(gathered, shape: [ids.count, length, width]), positions)
        let compute = backend.computeDType
        let activation: Activation = config.hiddenAct == "gelu" ? .gelu : .quickGELU
        for layer in layers.prefix(layers.count - skip) {
            let n = try layer.norm1(x, outputDType: compute)
            let attended = try backend.attention(query: layer.q(n, outputDType: compute), key: layer.k(n, outputDType: compute),
                                                 value: layer.v(n, outputDType: compute), heads: config.numAttentionHeads,
                                                 causal: true)
            x = try layer.out(attended, residual: x)
            let hidden = try backend.activation(layer.fc1(layer.norm2(x, outputDType: compute)), activation)
            x = try layer.fc2(hidden, residual: x)
        }
        return try finalNorm(x)
    }
}
