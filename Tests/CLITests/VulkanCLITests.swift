import Foundation
import Media
import Testing

/// `--backend`, `--device` and `streamdiffusion devices`, run as a user would run them. The machine
/// running the tests has at least lavapipe (`make setup` installs mesa-vulkan-drivers).
@Suite(.serialized) struct VulkanCLITests {
    let cli = CLITests()

    @Test func devicesListsTheVulkanDevices() throws {
        let result = try cli.run(["devices"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("[0] "), "\(result.output)")
        #expect(result.output.contains("default backend: "), "\(result.output)")
    }

    /// The same picture from both backends: they agree to 1e-4 in fp32, so the 8-bit PNGs are equal
    /// except where a value sits on a rounding boundary (at most 1 level).
    @Test func txt2imgOnVulkanMatchesTheCPU() throws {
        let out = try cli.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: out) }
        var images: [RGBImage] = []
        for backend in ["vulkan", "cpu"] {
            let file = out.appendingPathComponent("\(backend).png")
            let result = try cli.run(["txt2img", "--prompt", "a red circle", "--output", file.path, "--backend", backend] + cli.model)
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains(backend == "vulkan" ? "on Vulkan (" : "on CPU ("), "\(result.output)")
            images.append(try ImageIO().read(url: file))
        }
        #expect(images[0].width == 64 && images[0].height == 64)
        let diff = zip(images[0].pixels, images[1].pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(diff <= 1, "largest pixel difference \(diff)")
    }

    /// `--vulkan-weights fp16`: convolution and linear weights rounded to fp16 on the device. The
    /// fixture's fp32 weights are not fp16 values (each moves by up to 2⁻¹¹ of itself, tiny ones
    /// by more), so the picture may differ from the CPU's: 2⁻¹¹ relative on weights carried
    /// through four UNet steps and TAESD stays near 1e-3 of the output's scale, a quarter of one
    /// 8-bit level, so a value can only flip across a rounding boundary: at most 1 level, on a
    /// minority of values (mean ≤ 0.25). Measured: identical PNGs (max 0, mean 0) for seeds 1, 2, 3
    /// and 7; leaving one weight per layer at zero (a broken packing pass) fails it. The pipeline
    /// cache goes where STREAMDIFFUSION_CACHE_DIR says.
    @Test func txt2imgWithFp16WeightsMatchesTheCPU() throws {
        let out = try cli.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: out) }
        let cache = out.appendingPathComponent("pipeline-cache")
        let environment = ProcessInfo.processInfo.environment.merging(["STREAMDIFFUSION_CACHE_DIR": cache.path]) { $1 }
        var images: [RGBImage] = []
        for arguments in [["--backend", "vulkan", "--vulkan-weights", "fp16"], ["--backend", "cpu"]] {
            let file = out.appendingPathComponent("\(arguments[1]).png")
            let result = try cli.run(["txt2img", "--prompt", "a red circle", "--output", file.path] + arguments + cli.model,
                                     environment: environment)
            #expect(result.status == 0, "\(result.output)")
            // The backend's description, printed at load, names the storage.
            #expect(result.output.contains(", fp16 weights") == (arguments[1] == "vulkan"), "\(result.output)")
            images.append(try ImageIO().read(url: file))
        }
        #expect(images[0].width == 64 && images[0].height == 64)
        let diffs = zip(images[0].pixels, images[1].pixels).map { abs(Int($0) - Int($1)) }
        let mean = Double(diffs.reduce(0, +)) / Double(max(diffs.count, 1))
        #expect((diffs.max() ?? 255) <= 1 && mean <= 0.25, "largest pixel difference \(diffs.max() ?? -1), mean \(mean)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []
        #expect(files.count == 1 && files.allSatisfy { $0.hasPrefix("vulkan-pipelines-") && $0.hasSuffix(".bin") }, "\(files)")
    }

    /// `video` on Vulkan with the input-output queue: the decode and encode threads never touch the
    /// backend (uploads and downloads stay on the model's thread), and every frame comes out as on
    /// the CPU. The two mp4 encodings of near-equal frames may differ a little: mean ≤ 1 level.
    @Test(.enabled(if: VideoTools.isAvailable, "needs ffmpeg (make test installs it)"))
    func videoOnVulkanMatchesTheCPU() throws {
        let folder = try cli.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.mp4")
        let writer = try VideoWriter(url: input, width: 64, height: 64, frameRate: 10)
        for k in 0..<8 {
            try writer.write(RGBImage(width: 64, height: 64, pixels: (0..<(64 * 64 * 3)).map { UInt8(($0 * 7 + 29 * k) % 256) }))
        }
        try writer.finish()
        var videos: [[RGBImage]] = []
        for backend in ["vulkan", "cpu"] {
            let output = folder.appendingPathComponent("\(backend).mp4")
            let result = try cli.run(["video", "--prompt", "abc", "--input", input.path, "--output", output.path,
                                      "--t-index-list", "30,40", "--io-queue-depth", "2", "--backend", backend] + cli.model)
            #expect(result.status == 0, "\(result.output)")
            videos.append(try VideoReader(url: output).readAllFrames())
        }
        #expect(videos[0].count == 8 && videos[1].count == 8)
        for (a, b) in zip(videos[0], videos[1]) {
            let mean = Double(zip(a.pixels, b.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.pixels.count)
            #expect(mean <= 1, "mean difference \(mean) levels")
        }
    }

    @Test func backendErrorsAreOneClearLine() throws {
        let cases: [([String], [String: String]?, String)] = [
            (["--backend", "metal"], nil, "--backend must be cpu or vulkan"),
            (["--backend", "vulkan", "--device", "99"], nil, "device index 99 does not exist"),
            (["--backend", "cpu", "--device", "0"], nil, "does not apply to --backend cpu"),
            (["--backend", "vulkan", "--dtype", "bf16"], nil, "not supported by the Vulkan backend"),
            (["--backend", "cpu", "--vulkan-weights", "fp16"], nil, "--vulkan-weights sets the Vulkan backend's weight storage; it does not apply to --backend cpu"),
            (["--backend", "vulkan", "--vulkan-weights", "fp8"], nil, "--vulkan-weights must be fp32 or fp16 (got 'fp8')"),
            // No Vulkan driver at all: the loader finds no ICD.
            (["--backend", "vulkan"], ["VK_ICD_FILENAMES": "/nonexistent/icd.json", "VK_DRIVER_FILES": "/nonexistent/icd.json"], "no driver"),
        ]
        for (arguments, extra, message) in cases {
            var environment: [String: String]? = nil
            if let extra { environment = ProcessInfo.processInfo.environment.merging(extra) { $1 } }
            let model = cli.model.filter { $0 != "--dtype" && $0 != "fp32" }
            let result = try cli.run(["txt2img", "--prompt", "x", "--output", "/tmp/never.png"] + model + arguments, environment: environment)
            #expect(result.status != 0)
            let errorLines = result.output.split(separator: "\n").filter { $0.hasPrefix("Error:") }
            #expect(errorLines.count == 1 && errorLines[0].contains(message), "\(arguments): \(result.output)")
        }
    }

    /// `bench ops --backend vulkan`: one row per op, timed on Vulkan and on the CPU in the same run.
    @Test func opsBenchRunsOnVulkan() throws {
        let result = try cli.run(["bench", "ops", "--backend", "vulkan", "--ops", "groupnorm_c320_64x64,attention_cross_4096x77_5x64",
                                  "--repeats", "1", "--warmup", "0", "--json"])
        #expect(result.status == 0, "\(result.output)")
        struct Report: Decodable { struct Row: Decodable { let key: String; let vulkanMs: Double; let cpuMs: Double; let speedup: Double }; let device: String; let rows: [Row] }
        let report = try JSONDecoder().decode(Report.self, from: Data(result.output.utf8))
        #expect(report.device.hasPrefix("Vulkan ("))
        // In OpBenchmark.cases order; attention also with the shared-memory-tile kernel.
        #expect(report.rows.map(\.key) == ["attention_cross_4096x77_5x64", "attention_cross_4096x77_5x64 [shared-memory tiles]",
                                            "groupnorm_c320_64x64"])
        #expect(report.rows.allSatisfy { $0.vulkanMs > 0 && $0.cpuMs > 0 && abs($0.speedup - $0.cpuMs / $0.vulkanMs) < 1e-9 })
        let refused = try cli.run(["bench", "ops", "--backend", "vulkan", "--peer"])
        #expect(refused.status != 0 && refused.output.contains("does not apply to --backend vulkan"), "\(refused.output)")
        let cpuOnly = try cli.run(["bench", "ops", "--vulkan-weights", "fp16"])
        #expect(cpuOnly.status != 0 && cpuOnly.output.contains("--vulkan-weights applies to --backend vulkan"), "\(cpuOnly.output)")
    }
}
