import Foundation

/// The contents of a `<name>.safetensors.index.json`:
/// `{"metadata": {"total_size": 123, …}, "weight_map": {"tensor.name": "shard-00001-of-00002.safetensors", …}}`.
public struct ShardIndex: Sendable, Equatable {
    /// Tensor name → shard file name (relative to the index's folder).
    public let weightMap: [String: String]
    /// The scalar values of `metadata`, as text (`total_size` is a number in real files).
    public let metadata: [String: String]

    /// Parses index JSON. Unknown top-level keys are ignored; `weight_map` is required, its values
    /// must be strings naming files inside the index's folder (no absolute paths, no `..`), and
    /// each tensor may appear once.
    public static func parse(_ data: Data, path: String) throws -> ShardIndex {
        var weightMap: [String: String]?
        var metadata: [String: String] = [:]
        try JSONReader.parseDocument(data, path: path) { reader in
            guard try reader.peekKind() == .object else {
                throw ModelFilesError.badConfig(path: path, reason: "index is not a JSON object")
            }
            try reader.readObject { key in
                switch key {
                case "weight_map":
                    guard weightMap == nil else { throw ModelFilesError.badConfig(path: path, reason: "weight_map appears twice") }
                    weightMap = try readWeightMap(reader, path: path)
                case "metadata":
                    metadata = try readScalars(reader, path: path)
                default:
                    try reader.skipValue()
                }
            }
        }
        guard let weightMap else { throw ModelFilesError.badConfig(path: path, reason: "no \"weight_map\" object") }
        return ShardIndex(weightMap: weightMap, metadata: metadata)
    }

    private static func readWeightMap(_ reader: JSONReader, path: String) throws -> [String: String] {
        guard try reader.peekKind() == .object else {
            throw ModelFilesError.badConfig(path: path, reason: "weight_map is not an object")
        }
        var map: [String: String] = [:]
        try reader.readObject { tensor in
            guard try reader.peekKind() == .string else {
                throw ModelFilesError.badConfig(path: path, reason: "weight_map entry for '\(tensor)' is not a file name")
            }
            let file = try reader.readString()
            let parts = file.split(separator: "/", omittingEmptySubsequences: false)
            guard !file.isEmpty, !file.hasPrefix("/"), !parts.contains(".."), !parts.contains(""), !file.contains("\\") else {
                throw ModelFilesError.badConfig(path: path, reason: "weight_map entry for '\(tensor)' names '\(file)', which is not a file in the index's folder")
            }
            guard map.updateValue(file, forKey: tensor) == nil else {
                throw ModelFilesError.badConfig(path: path, reason: "tensor '\(tensor)' appears twice in weight_map")
            }
        }
        return map
    }

    private static func readScalars(_ reader: JSONReader, path: String) throws -> [String: String] {
        guard try reader.peekKind() == .object else {
            try reader.skipValue()
            return [:]
        }
        var values: [String: String] = [:]
        try reader.readObject { key in
            switch try reader.peekKind() {
            case .string: values[key] = try reader.readString()
            case .number: values[key] = String(try reader.readNumber())
            case .bool: values[key] = String(try reader.readBool())
            default: try reader.skipValue()
            }
        }
        return values
    }
}

/// A checkpoint split over several safetensors files, read through its index
/// (`diffusion_pytorch_model.safetensors.index.json`, `model.safetensors.index.json`).
///
/// Each shard is opened (mapped and validated) once. Opening fails when a shard file is missing,
/// when a tensor the index lists is absent from its shard, or when a tensor is stored in more
/// than one shard. Tensors present in a shard but not in the index are served too: the shards'
/// contents are the truth, the index a table of contents that must agree with them.
public final class ShardedWeights: WeightSource, Sendable {
    public let indexURL: URL
    /// The index path, used in errors about the set as a whole.
    public let location: String
    public let index: ShardIndex
    /// The opened shards, sorted by file name.
    public let shards: [SafeTensorsFile]
    public let names: [String]
    /// Tensors with a dtype the engine does not load: name → dtype string.
    public let unsupportedTensors: [String: String]
    /// Every tensor (loadable or not) → the shard holding it.
    private let shardOf: [String: SafeTensorsFile]

    public init(indexURL: URL) throws {
        let path = indexURL.path
        let index = try ShardIndex.parse(JSONReader.readSmallFile(indexURL), path: path)
        let folder = indexURL.deletingLastPathComponent()
        var opened: [String: SafeTensorsFile] = [:]
        for file in Set(index.weightMap.values).sorted() {
            let url = folder.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw ModelFilesError.unreadable(path: url.path, reason: "shard listed in \(path) is missing")
            }
            opened[file] = try SafeTensorsFile(url: url)
        }
        let sortedShards = opened.keys.sorted().compactMap { opened[$0] }

        var shardOf: [String: SafeTensorsFile] = [:]
        var loadable: [String] = []
        var unsupported: [String: String] = [:]
        for shard in sortedShards {
            for name in shard.names + shard.header.unsupported.keys.sorted() {
                if let first = shardOf.updateValue(shard, forKey: name) {
                    throw ModelFilesError.badTensor(path: path, tensor: name,
                                                    reason: "stored in two shards: \(first.location) and \(shard.location)")
                }
            }
            loadable += shard.names
            unsupported.merge(shard.unsupportedTensors) { first, _ in first }
        }
        for (tensor, file) in index.weightMap.sorted(by: { $0.key < $1.key }) {
            guard let shard = opened[file], shardOf[tensor] === shard else {
                throw ModelFilesError.missingTensor(path: folder.appendingPathComponent(file).path, tensor: tensor)
            }
        }
        self.indexURL = indexURL
        self.location = path
        self.index = index
        self.shards = sortedShards
        self.shardOf = shardOf
        self.unsupportedTensors = unsupported
        self.names = loadable.sorted()
    }

    /// The `metadata` scalars of the index, as text (e.g. `total_size`).
    public var metadata: [String: String] { index.metadata }

    public func entry(_ name: String) -> TensorEntry? { shardOf[name]?.entry(name) }

    /// The shard's bytes; an unsupported dtype is reported against the shard file that holds it.
    public func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer, TensorEntry) throws -> R) throws -> R {
        guard let shard = shardOf[name] else { throw ModelFilesError.missingTensor(path: location, tensor: name) }
        return try shard.withBytes(of: name, body)
    }
}
