import Foundation
import Testing
@testable import ModelFiles

@Suite struct ModelLocatorTests {
    static let commit = "0123456789abcdef0123456789abcdef01234567"
    static let other = "fedcba9876543210fedcba9876543210fedcba98"

    /// Lays out `hub/models--stabilityai--sd-turbo` as huggingface_hub does: blobs named by hash,
    /// snapshot files as relative symlinks into blobs/, refs/main holding the commit.
    private func makeCache(in folder: TemporaryFolder, refs: Bool = true, snapshots: [String] = [commit]) throws -> URL {
        let hub = folder.url.appendingPathComponent("hub", isDirectory: true)
        let repo = hub.appendingPathComponent("models--stabilityai--sd-turbo", isDirectory: true)
        var writer = SafeTensorsWriter()
        writer.add("w", shape: [2], floats: [1, 2])
        try folder.write("hub/models--stabilityai--sd-turbo/blobs/aaaa1111", DiffusersFolderTests.modelIndex)
        try folder.write("hub/models--stabilityai--sd-turbo/blobs/bbbb2222", writer.data())
        try folder.write("hub/models--stabilityai--sd-turbo/blobs/cccc3333", "{}")
        for snapshot in snapshots {
            let base = repo.appendingPathComponent("snapshots/\(snapshot)", isDirectory: true)
            try folder.mkdir("hub/models--stabilityai--sd-turbo/snapshots/\(snapshot)/unet")
            let fm = FileManager.default
            try fm.createSymbolicLink(atPath: base.appendingPathComponent("model_index.json").path,
                                      withDestinationPath: "../../blobs/aaaa1111")
            try fm.createSymbolicLink(atPath: base.appendingPathComponent("unet/diffusion_pytorch_model.safetensors").path,
                                      withDestinationPath: "../../../blobs/bbbb2222")
            try fm.createSymbolicLink(atPath: base.appendingPathComponent("unet/config.json").path,
                                      withDestinationPath: "../../../blobs/cccc3333")
        }
        if refs { try folder.write("hub/models--stabilityai--sd-turbo/refs/main", ModelLocatorTests.commit + "\n") }
        return hub
    }

    private func locator(_ folder: TemporaryFolder, _ env: [String: String]) -> ModelLocator {
        ModelLocator(environment: env, homeDirectory: folder.url.appendingPathComponent("home"),
                     currentDirectory: folder.url)
    }

    @Test func cacheRootFollowsEnvironment() throws {
        let folder = try TemporaryFolder()
        let home = folder.url.appendingPathComponent("home")
        #expect(locator(folder, [:]).hubCacheRoot.path == home.path + "/.cache/huggingface/hub")
        #expect(locator(folder, ["XDG_CACHE_HOME": "/x"]).hubCacheRoot.path == "/x/huggingface/hub")
        #expect(locator(folder, ["HF_HOME": "/h", "XDG_CACHE_HOME": "/x"]).hubCacheRoot.path == "/h/hub")
        #expect(locator(folder, ["HF_HOME": "~/hf"]).hubCacheRoot.path == home.path + "/hf/hub")
        #expect(locator(folder, ["HF_HUB_CACHE": "/c", "HF_HOME": "/h"]).hubCacheRoot.path == "/c")
        #expect(locator(folder, ["HF_HUB_CACHE": "", "HF_HOME": "/h"]).hubCacheRoot.path == "/h/hub")
    }

    @Test func resolvesHubIDThroughRefsAndSymlinks() throws {
        let folder = try TemporaryFolder()
        let hub = try makeCache(in: folder)
        let resolved = try locator(folder, ["HF_HUB_CACHE": hub.path]).resolve("stabilityai/sd-turbo")
        #expect(resolved.origin == .hubCache(repo: "stabilityai/sd-turbo", revision: nil, commit: ModelLocatorTests.commit))
        #expect(resolved.url.path.hasSuffix("models--stabilityai--sd-turbo/snapshots/\(ModelLocatorTests.commit)"))

        // The snapshot is a usable diffusers folder: symlinked files open.
        let model = try DiffusersModel(folder: resolved.url)
        #expect(model.components["unet"] != nil)
        let weights = try model.weights(component: "unet")
        #expect(try weights.withBytes(of: "w") { b, _ in decodeF32(b) } == [1, 2])
    }

    @Test func resolvesViaHFHome() throws {
        let folder = try TemporaryFolder()
        _ = try makeCache(in: folder)
        let resolved = try locator(folder, ["HF_HOME": folder.url.path]).resolve("stabilityai/sd-turbo")
        #expect(resolved.url.lastPathComponent == ModelLocatorTests.commit)
    }

    @Test func explicitRevisions() throws {
        let folder = try TemporaryFolder()
        let hub = try makeCache(in: folder, snapshots: [ModelLocatorTests.commit, ModelLocatorTests.other])
        let loc = locator(folder, ["HF_HUB_CACHE": hub.path])
        #expect(try loc.resolve("stabilityai/sd-turbo@\(ModelLocatorTests.other)").url.lastPathComponent == ModelLocatorTests.other)
        try folder.write("hub/models--stabilityai--sd-turbo/refs/fp16", ModelLocatorTests.other)
        #expect(try loc.resolve("stabilityai/sd-turbo@fp16").origin
                == .hubCache(repo: "stabilityai/sd-turbo", revision: "fp16", commit: ModelLocatorTests.other))
        guard case let .modelNotFound(_, searched, _)? = modelFilesError({ _ = try loc.resolve("stabilityai/sd-turbo@v9") }) else {
            Issue.record("unknown ref resolved"); return
        }
        #expect(searched.contains { $0.contains("refs/v9") })
    }

    @Test func singleSnapshotWithoutRefs() throws {
        let folder = try TemporaryFolder()
        let hub = try makeCache(in: folder, refs: false)
        let resolved = try locator(folder, ["HF_HUB_CACHE": hub.path]).resolve("stabilityai/sd-turbo")
        #expect(resolved.url.lastPathComponent == ModelLocatorTests.commit)

        let two = try TemporaryFolder()
        let hub2 = try makeCache(in: two, refs: false, snapshots: [ModelLocatorTests.commit, ModelLocatorTests.other])
        guard case .modelNotFound? = modelFilesError({ _ = try locator(two, ["HF_HUB_CACHE": hub2.path]).resolve("stabilityai/sd-turbo") }) else {
            Issue.record("ambiguous snapshots resolved"); return
        }
    }

    @Test func missingModelSaysWhereItLookedAndHowToGetIt() throws {
        let folder = try TemporaryFolder()
        let hub = folder.url.appendingPathComponent("hub")
        let error = modelFilesError { _ = try locator(folder, ["HF_HUB_CACHE": hub.path]).resolve("stabilityai/sd-turbo") }
        guard case let .modelNotFound(id, searched, hint)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(id == "stabilityai/sd-turbo")
        #expect(searched.contains { $0.hasPrefix(folder.url.appendingPathComponent("stabilityai/sd-turbo").path) })
        #expect(searched.contains { $0.contains(hub.appendingPathComponent("models--stabilityai--sd-turbo").path) })
        #expect(hint.contains("huggingface-cli download stabilityai/sd-turbo"))
        #expect(error?.description.contains("looked in") == true)
    }

    @Test func localPathsWin() throws {
        let folder = try TemporaryFolder()
        try folder.write("stabilityai/sd-turbo/model_index.json", "{}")
        let resolved = try locator(folder, [:]).resolve("stabilityai/sd-turbo")
        #expect(resolved.origin == .path)
        #expect(resolved.url.path == folder.url.appendingPathComponent("stabilityai/sd-turbo").path)
        #expect(try locator(folder, [:]).resolve(folder.url.path).origin == .path)
        try folder.write("home/models/taesd/config.json", "{}")
        #expect(try locator(folder, [:]).resolve("~/models/taesd").url.path == folder.url.appendingPathComponent("home/models/taesd").path)
    }

    @Test func hubIDSyntax() {
        func parsed(_ text: String) -> String? {
            ModelLocator.parseHubID(text).map { $0.repo + "|" + ($0.revision ?? "-") }
        }
        #expect(parsed("stabilityai/sd-turbo") == "stabilityai/sd-turbo|-")
        #expect(parsed("madebyollin/taesd@main") == "madebyollin/taesd|main")
        #expect(parsed("gpt2") == "gpt2|-")
        #expect(parsed("org/name@refs/pr/1") == "org/name|refs/pr/1")
        for bad in ["", "a/b/c", "/abs", "a//b", "a/../b", "-a/b", "a/b.", "a--b/c", "a/b@", "a/b@../x", "a b/c", "./x"] {
            #expect(parsed(bad) == nil, "\(bad)")
        }
    }

    /// No --model: sd-turbo when cached, else the demo folder (the environment override, the current
    /// directory, or a folder above the executable), else an error listing every place tried.
    @Test func defaultModelPrefersCachedSDTurboThenTheDemoFolder() throws {
        let folder = try TemporaryFolder()
        let hub = try makeCache(in: folder)
        let cached = try DefaultModel.choose(locator: locator(folder, ["HF_HUB_CACHE": hub.path]), executable: nil)
        #expect(cached.model == "stabilityai/sd-turbo" && cached.notice.contains("Hugging Face cache"))

        try folder.write("checkout/Models/demo/model_index.json", "{}")
        let executable = folder.url.appendingPathComponent("checkout/.build/x86_64-unknown-linux-gnu/release/streamdiffusion")
        let empty = ["HF_HUB_CACHE": folder.url.appendingPathComponent("none").path]
        let demo = try DefaultModel.choose(locator: locator(folder, empty), executable: executable)
        #expect(demo.model == folder.url.appendingPathComponent("checkout/Models/demo").standardizedFileURL.path)
        #expect(demo.notice.contains("bundled demo model"))

        var overridden = empty
        overridden[DefaultModel.demoEnvironmentKey] = folder.url.appendingPathComponent("elsewhere").path
        #expect {
            try DefaultModel.choose(locator: locator(folder, overridden), executable: executable)
        } throws: { error in
            "\(error)".contains("elsewhere") && "\(error)".contains(DefaultModel.demoEnvironmentKey)
        }
    }
}
