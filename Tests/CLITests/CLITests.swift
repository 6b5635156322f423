import Foundation
import Media
import Testing

/// The `streamdiffusion` executable, run as a user would run it, on the fixture model
/// (Tests/Fixtures/models/tiny-sd15 with its byte-level tokenizer, and tiny-taesd).
@Suite(.serialized) struct CLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let models = root.appendingPathComponent("Tests/Fixtures/models")

    /// An executable `swift build --build-tests` put next to this test bundle.
    static func executable(_ name: String) -> URL? {
        let candidates = [Bundle.main.bundleURL.deletingLastPathComponent(), Bundle.main.bundleURL]
            .map { $0.appendingPathComponent(name) }
            + [root.appendingPathComponent(".build/debug/\(name)")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Result { let status: Int32; let output: String }

    func run(_ arguments: [String], environment: [String: String]? = nil, in directory: URL? = nil,
             program: String = "streamdiffusion") throws -> Result {
        let binary = try #require(CLITests.executable(program), "build the \(program) executable first (swift build)")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// This process's environment with an empty Hugging Face cache: the default model is the demo model.
    static func withoutSDTurbo(_ folder: URL) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["HF_HUB_CACHE"] = folder.appendingPathComponent("empty-cache").path
        environment["STREAMDIFFUSION_DEMO_MODEL"] = nil
        return environment
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    var model: [String] {
        ["--model", Self.models.appendingPathComponent("tiny-sd15").path,
         "--vae", Self.models.appendingPathComponent("tiny-taesd").path, "--width", "64", "--height", "64", "--dtype", "fp32"]
    }

    @Test func txt2imgWritesNumberedImages() throws {
        let out = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try run(["txt2img", "--prompt", "a red circle", "--count", "2", "--output", out.appendingPathComponent("img.png").path] + model)
        #expect(result.status == 0, "\(result.output)")
        for k in 0..<2 {
            let image = try ImageIO().read(url: out.appendingPathComponent(String(format: "img-%03d.png", k)))
            #expect(image.width == 64 && image.height == 64)
        }
    }

    /// Without --model (and no sd-turbo in the cache) the bundled demo model is used, said in one
    /// line, at its native 128×128, through the stream-batch txt2img path.
    @Test func withoutAModelTheBundledDemoModelIsUsed() throws {
        let out = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try run(["txt2img", "--prompt", "a red circle on a blue background", "--output", "img.png"],
                             environment: Self.withoutSDTurbo(out), in: out)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.split(separator: "\n").filter { $0.contains("using the bundled demo model") }.count == 1, "\(result.output)")
        let image = try ImageIO().read(url: out.appendingPathComponent("img.png"))
        #expect(image.width == 128 && image.height == 128)
    }

    /// An LCM-LoRA (kohya layout) fused at load; a LoRA for another model reports its unmatched modules.
    @Test func txt2imgWithALoRA() throws {
        let out = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: out) }
        let lora = Self.models.appendingPathComponent("lora")
        let fused = try run(["txt2img", "--prompt", "abc", "--output", out.appendingPathComponent("a.png").path,
                             "--lcm-lora", lora.appendingPathComponent("tiny-sd15-lora-kohya.safetensors").path] + model)
        #expect(fused.status == 0 && !fused.output.contains("warning"), "\(fused.output)")
        let partly = try run(["txt2img", "--prompt", "abc", "--output", out.appendingPathComponent("b.png").path,
                              "--lcm-lora", lora.appendingPathComponent("tiny-sd15-lora-unmatched.safetensors").path] + model)
        #expect(partly.status == 0 && partly.output.contains("1 LoRA module(s) matched no UNet weight"), "\(partly.output)")
    }

    @Test func img2imgTurnsEveryFrameIntoOneOutput() throws {
        let input = try temporaryFolder(), output = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: input); try? FileManager.default.removeItem(at: output) }
        for k in 0..<3 {
            let pixels = (0..<(48 * 40 * 3)).map { UInt8(($0 * (k + 3)) % 256) }
            try ImageIO().write(RGBImage(width: 48, height: 40, pixels: pixels), to: input.appendingPathComponent("f\(k).png"))
        }
        let result = try run(["img2img", "--prompt", "abc", "--input", input.path, "--output", output.path,
                              "--t-index-list", "20,35,45", "--cfg-type", "initialize", "--guidance-scale", "1.4"] + model)
        #expect(result.status == 0, "\(result.output)")
        let written = try FileManager.default.contentsOfDirectory(atPath: output.path).sorted()
        #expect(written == ["f0.png", "f1.png", "f2.png"])
    }

    @Test func errorsAreOneClearLine() throws {
        let badSize = try run(["txt2img", "--prompt", "x", "--output", "/tmp/never.png", "--width", "60"] + model.dropLast(6))
        #expect(badSize.status != 0 && badSize.output.contains("multiple of 8"))
        let range = try run(["txt2img", "--prompt", "x", "--output", "/tmp/never.png", "--t-index-list", "0,50"] + model)
        #expect(range.status != 0 && range.output.contains("0...49"))
        let missing = try run(["txt2img", "--prompt", "x", "--output", "/tmp/never.png", "--model", "nobody/nothing"])
        #expect(missing.status != 0 && missing.output.contains("not found") && missing.output.contains("models--nobody--nothing"))
        let notImage = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: notImage) }
        try Data("not an image".utf8).write(to: notImage.appendingPathComponent("a.png"))
        let corrupt = try run(["img2img", "--prompt", "x", "--input", notImage.appendingPathComponent("a.png").path,
                               "--output", notImage.appendingPathComponent("b.png").path] + model)
        #expect(corrupt.status != 0 && corrupt.output.contains("a.png"))
        // `bench` alone runs every part; its options reach them (a bad precision stops it at once).
        let bench = try run(["bench", "--dtype", "fp16"])
        #expect(bench.status != 0 && bench.output.contains("unknown precision 'fp16'"))
        let badSizes = try run(["bench", "stream", "--sizes", "100"])
        #expect(badSizes.status != 0 && badSizes.output.contains("bad size '100'"))
    }

    /// Every input frame yields one output frame at the input rate (ffmpeg test source, 12 frames).
    @Test(.enabled(if: VideoTools.isAvailable, "needs ffmpeg (make test installs it)"))
    func videoKeepsEveryFrame() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.mp4"), output = folder.appendingPathComponent("out.mp4")
        let writer = try VideoWriter(url: input, width: 64, height: 48, frameRate: 10)
        for k in 0..<12 {
            try writer.write(RGBImage(width: 64, height: 48, pixels: (0..<(64 * 48 * 3)).map { UInt8(($0 + 17 * k) % 256) }))
        }
        try writer.finish()
        let result = try run(["video", "--prompt", "abc", "--input", input.path, "--output", output.path,
                              "--t-index-list", "30,40", "--similar-filter-threshold", "0.98"] + model)
        #expect(result.status == 0, "\(result.output)")
        let info = try VideoInfo.probe(url: output)
        #expect(info.width == 64 && info.height == 64)
        let queued = try VideoReader(url: output).readAllFrames()
        #expect(queued.count == 12)
        // The input-output queue changes only where decoding and encoding run: the serial path
        // (depth 0) writes the very same frames in the same order, with and without frame groups.
        var serialGrouped: [[UInt8]] = []
        for (depth, group) in [(0, 1), (0, 3), (1, 3)] {
            let other = folder.appendingPathComponent("out-\(depth)-\(group).mp4")
            let rerun = try run(["video", "--prompt", "abc", "--input", input.path, "--output", other.path, "--t-index-list", "30,40",
                                 "--similar-filter-threshold", "0.98", "--io-queue-depth", "\(depth)", "--frame-buffer-size", "\(group)"] + model)
            #expect(rerun.status == 0, "\(rerun.output)")
            let frames = try VideoReader(url: other).readAllFrames()
            #expect(frames.count == 12, "depth \(depth), group \(group)")
            if group == 1 { #expect(frames.map(\.pixels) == queued.map(\.pixels), "depth \(depth) differs from the queued run") }
            if depth == 0 { serialGrouped = frames.map(\.pixels) } else { #expect(frames.map(\.pixels) == serialGrouped, "grouped runs differ") }
        }
        let bad = try run(["video", "--prompt", "abc", "--input", input.path, "--output", output.path, "--io-queue-depth", "-1"] + model)
        #expect(bad.status != 0 && bad.output.contains("--io-queue-depth"))
    }

    @Test func inspectDescribesTheFixture() throws {
        let result = try run(["inspect", Self.models.appendingPathComponent("tiny-sd15").path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("no problems found"))
    }
}
