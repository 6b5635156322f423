import Foundation
import Testing
@testable import ModelFiles

@Suite struct ShardedWeightsTests {
    /// Two shards and their index, in `folder`; returns the index URL.
    @discardableResult
    private func writeCheckpoint(in folder: TemporaryFolder, index: String? = nil,
                                 extraInSecond: Bool = false) throws -> URL {
        var first = SafeTensorsWriter()
        first.add("a.weight", shape: [2], floats: [1, 2])
        first.add("b.weight", shape: [1], floats: [3])
        var second = SafeTensorsWriter()
        second.add("c.weight", shape: [2, 1], floats: [4, 5])
        second.add("position_ids", dtype: "I64", shape: [1], bytes: [7, 0, 0, 0, 0, 0, 0, 0])
        if extraInSecond { second.add("a.weight", shape: [1], floats: [9]) }
        try folder.write("model-00001-of-00002.safetensors", first.data())
        try folder.write("model-00002-of-00002.safetensors", second.data())
        let text = index ?? """
            {"metadata": {"total_size": 28, "format": "pt"},
             "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                            "b.weight": "model-00001-of-00002.safetensors",
                            "c.weight": "model-00002-of-00002.safetensors",
                            "position_ids": "model-00002-of-00002.safetensors"}}
            """
        return try folder.write("model.safetensors.index.json", text)
    }

    @Test func servesTensorsFromEveryShard() throws {
        let folder = try TemporaryFolder()
        let index = try writeCheckpoint(in: folder)
        let weights = try ShardedWeights(indexURL: index)
        #expect(weights.names == ["a.weight", "b.weight", "c.weight"])
        #expect(weights.shards.count == 2)
        #expect(weights.metadata == ["total_size": "28", "format": "pt"])
        #expect(weights.location == index.path)
        #expect(weights.entry("c.weight")?.shape == [2, 1])
        #expect(try weights.withBytes(of: "c.weight") { b, _ in decodeF32(b) } == [4, 5])
        #expect(try weights.withBytes(of: "a.weight") { b, _ in decodeF32(b) } == [1, 2])
        #expect(weights.unsupportedTensors == ["position_ids": "I64"])
        let shard2 = folder.url.appendingPathComponent("model-00002-of-00002.safetensors").path
        #expect(throws: ModelFilesError.unsupportedDType(path: shard2, tensor: "position_ids", dtype: "I64")) {
            try weights.withBytes(of: "position_ids") { _, _ in }
        }
        #expect(throws: ModelFilesError.missingTensor(path: index.path, tensor: "zz")) {
            try weights.withBytes(of: "zz") { _, _ in }
        }
    }

    @Test func missingShardFile() throws {
        let folder = try TemporaryFolder()
        let index = try writeCheckpoint(in: folder, index: #"{"weight_map": {"a.weight": "gone.safetensors"}}"#)
        let error = modelFilesError { _ = try ShardedWeights(indexURL: index) }
        guard case let .unreadable(path, reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(path == folder.url.appendingPathComponent("gone.safetensors").path)
        #expect(reason.contains("missing"))
    }

    @Test func tensorListedButAbsentFromItsShard() throws {
        let folder = try TemporaryFolder()
        let index = try writeCheckpoint(in: folder, index: """
            {"weight_map": {"a.weight": "model-00002-of-00002.safetensors"}}
            """)
        let shard = folder.url.appendingPathComponent("model-00002-of-00002.safetensors").path
        #expect(throws: ModelFilesError.missingTensor(path: shard, tensor: "a.weight")) {
            _ = try ShardedWeights(indexURL: index)
        }
    }

    @Test func tensorInTwoShards() throws {
        let folder = try TemporaryFolder()
        let index = try writeCheckpoint(in: folder, extraInSecond: true)
        let error = modelFilesError { _ = try ShardedWeights(indexURL: index) }
        guard case let .badTensor(path, tensor, reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(path == index.path && tensor == "a.weight" && reason.contains("two shards"))
    }

    @Test func malformedIndexes() throws {
        let cases = [
            "not json",
            "[]",
            #"{"metadata": {}}"#,
            #"{"weight_map": []}"#,
            #"{"weight_map": {"a": 1}}"#,
            #"{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}"#,
            #"{"weight_map": {"a": "../outside.safetensors"}}"#,
            #"{"weight_map": {"a": "/etc/passwd"}}"#,
            #"{"weight_map": {}, "weight_map": {}}"#,
        ]
        for text in cases {
            let folder = try TemporaryFolder()
            let index = try folder.write("m.safetensors.index.json", text)
            let error = modelFilesError { _ = try ShardedWeights(indexURL: index) }
            guard case let .badConfig(path, _)? = error else { Issue.record("\(text): \(String(describing: error))"); continue }
            #expect(path == index.path)
        }
    }

    @Test func emptyWeightMapIsAnEmptySource() throws {
        let folder = try TemporaryFolder()
        let index = try folder.write("m.safetensors.index.json", #"{"weight_map": {}}"#)
        let weights = try ShardedWeights(indexURL: index)
        #expect(weights.names.isEmpty && weights.shards.isEmpty)
    }
}
