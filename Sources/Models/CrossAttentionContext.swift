import Tensors

/// A prompt as the UNet's cross-attention reads it: the text embeddings and, for every
/// cross-attention layer, their key and value projections (paper §3, the pre-computation cache).
/// With a fixed prompt these never change, so a stream computes them once per prompt and every
/// frame skips the `to_k`/`to_v` products of all transformer blocks.
public struct CrossAttentionContext: Sendable {
    /// Text embeddings [N, T, D], one row per UNet row.
    public let embeddings: Tensor
    /// Per cross-attention layer in the UNet's call order: keys and values [N, T, heads·headDim].
    let layers: [KeyValue]

    struct KeyValue: Sendable {
        let key: Tensor, value: Tensor
    }

    public var rows: Int { embeddings.shape[0] }

    init(embeddings: Tensor, layers: [KeyValue]) {
        (self.embeddings, self.layers) = (embeddings, layers)
    }

    /// Rows `range` of every tensor (e.g. the positive rows of a guided layout).
    public func slice(rows range: Range<Int>) throws -> CrossAttentionContext {
        try CrossAttentionContext(embeddings: embeddings.slice(batch: range),
                                  layers: layers.map { try KeyValue(key: $0.key.slice(batch: range), value: $0.value.slice(batch: range)) })
    }

    /// The rows of several contexts of one model, stacked in order (a repeated prompt, or the
    /// streams sharing one UNet call). No projection is recomputed.
    public static func stacked(_ parts: [CrossAttentionContext], on backend: any Backend) throws -> CrossAttentionContext {
        guard let first = parts.first else {
            throw TensorError.invalidArgument(op: "CrossAttentionContext.stacked", message: "no contexts to stack")
        }
        if parts.count == 1 { return first }
        guard parts.allSatisfy({ $0.layers.count == first.layers.count && $0.embeddings.shape.dropFirst() == first.embeddings.shape.dropFirst() }) else {
            throw TensorError.invalidArgument(op: "CrossAttentionContext.stacked", message: "contexts of different models or prompt lengths")
        }
        let layers = try first.layers.indices.map { i in
            try KeyValue(key: backend.concatRows(parts.map { $0.layers[i].key }),
                         value: backend.concatRows(parts.map { $0.layers[i].value }))
        }
        return CrossAttentionContext(embeddings: try backend.concatRows(parts.map(\.embeddings)), layers: layers)
    }
}
