import Foundation
import Testing
import Tensors
@testable import VulkanBackend

/// The pipeline cache on disk: where it goes, what a second backend reads back, and that no file
/// it finds there — damaged, cut short, another device's — or a folder it cannot write stops it.
/// Each backend here compiles one pipeline (silu), so the suite stays short on lavapipe.
@Suite(.serialized) struct PipelineCacheTests {
    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sd-pipeline-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A backend whose cache lives in `directory`, under the validation layer.
    func backend(_ directory: URL) throws -> VulkanBackend {
        try VulkanBackend(options: .init(allowCPU: true, validation: true, cooperativeMatrix: .off, pipelineCache: .directory(directory)))
    }

    /// Runs silu on the backend (compiling the unary pipeline and submitting it) and checks the result.
    func runSilu(_ vk: VulkanBackend, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let x: [Float] = [-2, -0.5, 0, 1, 3]
        let y = try vk.floats(vk.activation(vk.tensor(x, shape: [5]), .silu))
        let expected = x.map { $0 / (1 + exp(-$0)) }
        #expect(zip(y, expected).allSatisfy { abs($0 - $1) <= 1e-6 }, "silu \(y)", sourceLocation: sourceLocation)
        #expect(vk.validationMessages.isEmpty, "\(vk.validationMessages)", sourceLocation: sourceLocation)
    }

    @Test func locationFollowsTheEnvironment() {
        let home = "/home/u"
        #expect(PipelineCacheFile.defaultDirectory(environment: [:], home: home).path == "/home/u/.cache/streamdiffusion")
        #expect(PipelineCacheFile.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x"], home: home).path == "/x/streamdiffusion")
        #expect(PipelineCacheFile.defaultDirectory(environment: ["XDG_CACHE_HOME": ""], home: home).path == "/home/u/.cache/streamdiffusion")
        #expect(PipelineCacheFile.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x", "STREAMDIFFUSION_CACHE_DIR": "/c"], home: home).path == "/c")
    }

    @Test func fileIsNamedAfterTheDevice() throws {
        let device = try Backends.vulkan().device
        let name = PipelineCacheFile.fileName(for: device)
        let uuid = device.pipelineCacheUUID.map { String(format: "%02x", $0) }.joined()
        #expect(device.pipelineCacheUUID.count == 16 && uuid.count == 32)
        #expect(name == String(format: "vulkan-pipelines-%04x-%04x-%08x-", device.vendorID, device.deviceID, device.driverVersion) + uuid + ".bin")
        #expect(PipelineCacheFile.location(.memoryOnly, device: device) == nil)
    }

    /// The first backend writes the file when it submits its first pipeline; the second starts from it.
    @Test func secondBackendLoadsTheFirstOnesFile() throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try backend(directory)
        #expect(first.pipelineCacheStatus.start == .missing)
        try runSilu(first)
        let status = first.pipelineCacheStatus
        let url = try #require(status.file)
        #expect(status.saves == 1 && status.saveError == nil, "\(status)")
        #expect(url.path == directory.path + "/" + url.lastPathComponent, "\(url.path)")
        #expect(url.lastPathComponent == PipelineCacheFile.fileName(for: first.device))

        // The file: the envelope, then the driver's data with a VkPipelineCacheHeaderVersionOne for this device.
        let bytes = [UInt8](try Data(contentsOf: url))
        try #require(bytes.count >= 24 + 32, "\(bytes.count) bytes")
        #expect(Array(bytes[0..<8]) == Array("SDVKPC01".utf8))
        let word = { (at: Int) in PipelineCacheFile.littleEndian(bytes, at: 24 + at, as: UInt32.self) }
        #expect(word(0) == 32 && word(4) == 1, "header length \(word(0)), version \(word(4))")
        #expect(word(8) == first.device.vendorID && word(12) == first.device.deviceID)
        #expect(Array(bytes[40..<56]) == first.device.pipelineCacheUUID)
        // Nothing left behind by the write (the temporary file was renamed).
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [url.lastPathComponent])

        let second = try backend(directory)
        #expect(second.pipelineCacheStatus.start == .loaded(bytes: bytes.count - 24), "\(second.pipelineCacheStatus)")
        try runSilu(second)
    }

    /// Damaged, cut short, another device's: each file is ignored (the backend starts empty and
    /// works) and replaced by a valid one.
    @Test func badFilesAreIgnoredAndOverwritten() throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let writer = try backend(directory)
        try runSilu(writer)
        let url = try #require(writer.pipelineCacheStatus.file)
        let valid = [UInt8](try Data(contentsOf: url))
        let blob = Array(valid[24...])
        var foreign = blob
        foreign[8] ^= 0xFF   // another vendor
        var otherDriver = blob
        otherDriver[16] ^= 0xFF   // another pipelineCacheUUID
        var badVersion = blob
        badVersion[4] = 2
        var longHeader = blob
        longHeader[0] = 64
        var flipped = valid
        flipped[flipped.count - 1] ^= 0x01   // one bit of the body
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "no SDVKPC01"),
            ("garbage", Array("not a cache at all, just some text".utf8), "no SDVKPC01"),
            ("truncated", Array(valid.prefix(valid.count / 2)), "truncated"),
            ("damaged", flipped, "damaged"),
            ("foreign header", [UInt8](PipelineCacheFile.wrap(foreign)), "made for device"),
            ("other driver build", [UInt8](PipelineCacheFile.wrap(otherDriver)), "pipelineCacheUUID"),
            ("header version 2", [UInt8](PipelineCacheFile.wrap(badVersion)), "header version 2"),
            ("header length 64", [UInt8](PipelineCacheFile.wrap(longHeader)), "header length 64, not 32"),
            ("short header", [UInt8](PipelineCacheFile.wrap(Array(blob.prefix(20)))), "shorter than the Vulkan header"),
        ]
        for (what, contents, reason) in cases {
            try Data(contents).write(to: url)
            let vk = try backend(directory)
            guard case let .rejected(why) = vk.pipelineCacheStatus.start else {
                Issue.record("\(what): \(vk.pipelineCacheStatus.start)")
                continue
            }
            #expect(why.contains(reason), "\(what): \(why)")
            try runSilu(vk)
            #expect(vk.pipelineCacheStatus.saves == 1, "\(what): \(vk.pipelineCacheStatus)")
            let rewritten = try Data(contentsOf: url)
            #expect((try? PipelineCacheFile.unwrap(rewritten, for: vk.device).get()) != nil, "\(what): not replaced by a valid cache")
        }
    }

    /// A folder that cannot be made (its parent is a file; root ignores permission bits, this it
    /// cannot ignore): the backend runs on, the failure is recorded, nothing is thrown.
    @Test func unwritableFolderIsNotAnError() throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let blocker = directory.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: blocker)
        let vk = try backend(blocker.appendingPathComponent("cache"))
        #expect(vk.pipelineCacheStatus.start == .missing)
        try runSilu(vk)
        let status = vk.pipelineCacheStatus
        #expect(status.saves == 0)
        #expect(status.saveError?.hasPrefix("Vulkan pipeline cache: cannot create the folder \(blocker.path)/cache: Not a directory") == true, "\(status)")
    }

    @Test func memoryOnlyTouchesNoFile() throws {
        let vk = try VulkanBackend(options: .init(allowCPU: true, validation: true, cooperativeMatrix: .off, pipelineCache: .memoryOnly))
        #expect(vk.pipelineCacheStatus.start == .memoryOnly && vk.pipelineCacheStatus.file == nil)
        try runSilu(vk)
        #expect(vk.pipelineCacheStatus.saves == 0 && vk.pipelineCacheStatus.saveError == nil)
    }
}
