import Foundation
import ModelFiles
import Testing
import Tensors
@testable import Models

@Suite struct ModelInspectorTests {
    static let models = ModelFixtures.root

    @Test func inspectsPipelinesAndSingleModels() throws {
        let sd15 = try ModelInspector.inspect(Self.models.appendingPathComponent("tiny-sd15").path)
        #expect(sd15.problems.isEmpty, "\(sd15.problems)")
        #expect(sd15.architecture.contains("SD 1.x-style"))
        #expect(Set(sd15.components.map(\.name)) == ["scheduler", "text_encoder", "tokenizer", "unet", "vae"])
        let unet = try #require(sd15.components.first { $0.name == "unet" })
        #expect(unet.tensorCount == 494 && unet.parameterCount == 145_980 && unet.dtypes == ["F32": 494])
        #expect(unet.detail.contains("all tensors bound"))

        let taesd = try ModelInspector.inspect(Self.models.appendingPathComponent("tiny-taesd").path)
        #expect(taesd.problems.isEmpty && taesd.architecture == "single AutoencoderTiny")
    }

    /// `--model org/name` finds a model laid out as huggingface_hub caches it: refs/main holding
    /// the commit, snapshots/<commit>/ with every file a symlink into blobs/.
    @Test func resolvesTheHubCacheOffline() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("hf-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: cache) }
        let repo = cache.appendingPathComponent("models--tiny--sd21")
        let commit = String(repeating: "ab", count: 20)
        let snapshot = repo.appendingPathComponent("snapshots/\(commit)")
        let source = Self.models.appendingPathComponent("tiny-sd21")
        let fm = FileManager.default
        try fm.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try commit.write(to: repo.appendingPathComponent("refs/main"), atomically: true, encoding: .utf8)
        var blob = 0
        for relative in try Self.files(under: source) {
            blob += 1
            let blobURL = repo.appendingPathComponent("blobs/\(blob)")
            try fm.createDirectory(at: blobURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try fm.copyItem(at: source.appendingPathComponent(relative).resolvingSymlinksInPath(), to: blobURL)
            let link = snapshot.appendingPathComponent(relative)
            try fm.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
            try fm.createSymbolicLink(at: link, withDestinationURL: blobURL)
        }
        let locator = ModelLocator(environment: ["HF_HUB_CACHE": cache.path], homeDirectory: cache)
        let report = try ModelInspector.inspect("tiny/sd21", locator: locator)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.origin.contains("tiny/sd21") && report.origin.contains(commit))
        #expect(report.path.hasSuffix("snapshots/\(commit)"))
    }

    /// Relative paths of the regular files under `folder`, following symlinked folders.
    static func files(under folder: URL, prefix: String = "") throws -> [String] {
        var out: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let url = folder.appendingPathComponent(name).resolvingSymlinksInPath()
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                out += try files(under: url, prefix: prefix + name + "/")
            } else {
                out.append(prefix + name)
            }
        }
        return out
    }

    /// A checkpoint with a tensor missing and one renamed is reported by full tensor name.
    @Test func reportsBrokenCheckpoints() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("broken-taesd-\(getpid())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let original = Self.models.appendingPathComponent("tiny-taesd")
        try FileManager.default.copyItem(at: original.appendingPathComponent("config.json"), to: folder.appendingPathComponent("config.json"))
        let source = try SafeTensorsFile(url: original.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        let kept = source.names.filter { $0 != "decoder.layers.0.bias" }
        let items = kept.compactMap { name in source.entry(name).map {
            WeightFileWriter.Item(name: name == "encoder.layers.0.weight" ? "encoder.layer.0.weight" : name, format: $0.format, shape: $0.shape)
        } }
        try WeightFileWriter.write(to: folder.appendingPathComponent("diffusion_pytorch_model.safetensors"), items: items) { item, buffer in
            let name = item.name == "encoder.layer.0.weight" ? "encoder.layers.0.weight" : item.name
            try source.withBytes(of: name) { bytes, _ in buffer.copyMemory(from: bytes) }
        }
        let report = try ModelInspector.inspect(folder.path)
        let problems = report.problems.joined(separator: "\n")
        #expect(problems.contains("encoder.layers.0.weight"), "\(problems)")
    }
}
