import Foundation
import Tensors

/// Real-size models without real weights: a layout (`Tests/Fixtures/layouts/*.json`, exported from
/// diffusers/transformers by tools/export_layouts.py: the config plus every tensor name and shape)
/// becomes a model folder with random fp16 weights under exactly those names. Loading it through
/// the normal loader proves the models bind the real layout; timing it gives real-size benchmarks.
public struct ModelLayout: Sendable {
    /// The component's config.json, as JSON bytes.
    public let configJSON: Data
    public let tensors: [(name: String, shape: [Int])]

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelFilesError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let config = root["config"] as? [String: Any], let tensors = root["tensors"] as? [String: Any] else {
            throw ModelFilesError.badConfig(path: url.path, reason: "expected {\"config\": {…}, \"tensors\": {name: shape}}")
        }
        configJSON = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
        self.tensors = try tensors.keys.sorted().map { name in
            guard let shape = tensors[name] as? [Int], Tensor.checkedCount(of: shape) != nil else {
                throw ModelFilesError.badConfig(path: url.path, reason: "tensor \(name) has no valid shape")
            }
            return (name, shape)
        }
    }

    /// The layout of an existing weight file (its config.json bytes and every tensor's name and
    /// shape): `write` then gives a random-weight twin of that model.
    public init(configJSON: Data, weights: SafeTensorsFile) {
        self.configJSON = configJSON
        tensors = weights.names.sorted().compactMap { name in weights.entry(name).map { (name, $0.shape) } }
    }

    public var parameterCount: Int { tensors.reduce(0) { $0 + Tensor.count(of: $1.shape) } }

    /// Writes `config.json` and `<weightsName>` (fp16) into `folder`. Weights are uniform with the
    /// variance of PyTorch's default init (1/fan_in); 1-D `weight`s (norm scales) are 1 and biases 0,
    /// so activations stay finite through every layer.
    public func write(to folder: URL, weightsName: String, seed: UInt64 = 0) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try configJSON.write(to: folder.appendingPathComponent("config.json"))
        var blocks: [Float: [UInt16]] = [:]
        let items = tensors.map { WeightFileWriter.Item(name: $0.name, format: .float16, shape: $0.shape) }
        try WeightFileWriter.write(to: folder.appendingPathComponent(weightsName), items: items,
                                   metadata: ["format": "pt"]) { item, buffer in
            let spread = ModelLayout.spread(name: item.name, shape: item.shape)
            if blocks[spread] == nil { blocks[spread] = ModelLayout.block(spread: spread, seed: seed) }
            let block = blocks[spread] ?? []
            // Tile the block from a name-dependent start, so tensors of one spread differ.
            var start = ModelLayout.stableHash(item.name) % block.count, written = 0
            block.withUnsafeBytes { source in
                while written < buffer.count {
                    let bytes = min(buffer.count - written, source.count - 2 * start)
                    (buffer.baseAddress! + written).copyMemory(from: source.baseAddress! + 2 * start, byteCount: bytes)
                    written += bytes
                    start = 0
                }
            }
        }
    }

    /// FNV-1a: Swift's `hashValue` is seeded per process, and the files must be reproducible.
    static func stableHash(_ text: String) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(h >> 1)
    }

    /// Half-width of the uniform distribution of a tensor; 0 means constant (see `block`).
    static func spread(name: String, shape: [Int]) -> Float {
        if shape.count <= 1 { return name.hasSuffix("weight") ? -1 : 0 }   // -1 marks "all ones"
        let fanIn = shape.dropFirst().reduce(1, *)
        return (3 / Float(max(fanIn, 1))).squareRoot()
    }

    static func block(spread: Float, seed: UInt64) -> [UInt16] {
        let count = 1 << 16
        if spread == 0 { return [UInt16](repeating: 0, count: count) }
        if spread < 0 { return [UInt16](repeating: Float16(1).bitPattern, count: count) }
        var state = seed &+ UInt64(spread.bitPattern)
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let unit = Float(state >> 40) / Float(1 << 24)
            return Float16((unit * 2 - 1) * spread).bitPattern
        }
    }
}
