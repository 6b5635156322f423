import Foundation
import Media
import Testing

extension CLITests {
    /// Examples/QuickStart, the seeds' two loops on the facade, run as a user would on the bundled
    /// demo model: three prompts give three pictures at the model's 128×128, and every frame of a
    /// video gives one restyled frame.
    @Test(.enabled(if: VideoTools.isAvailable, "needs ffmpeg (make test installs it)"))
    func quickStartLoopsRunOnTheDemoModel() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mp4")
        let writer = try VideoWriter(url: clip, width: 96, height: 64, frameRate: 10)
        for k in 0..<8 {   // a red block sliding over white
            var pixels = [UInt8](repeating: 245, count: 96 * 64 * 3)
            for y in 20..<44 {
                for x in (8 * k)..<(8 * k + 24) {
                    (pixels[3 * (y * 96 + x)], pixels[3 * (y * 96 + x) + 1], pixels[3 * (y * 96 + x) + 2]) = (220, 40, 40)
                }
            }
            try writer.write(RGBImage(width: 96, height: 64, pixels: pixels))
        }
        try writer.finish()

        let result = try run(["--video", clip.path, "--output-folder", "out", "--steps", "2"],
                             environment: Self.withoutSDTurbo(folder), in: folder, program: "quickstart")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("using the bundled demo model"), "\(result.output)")
        for k in 0..<3 {
            let image = try ImageIO().read(url: folder.appendingPathComponent(String(format: "out/%02d.png", k)))
            #expect(image.width == 128 && image.height == 128)
        }
        let styled = try VideoReader(url: folder.appendingPathComponent("out/styled.mp4"))
        defer { styled.close() }
        var frames = 0
        while try styled.nextFrame() != nil { frames += 1 }
        #expect(frames == 8 && styled.info.width == 128 && styled.info.height == 128)
    }
}

extension CLITests {
    /// The seeds' benchmark scripts print the seeds' sections (timed on the demo model: the shape is
    /// tested here, the numbers live in docs/BENCHMARKS.md).
    @Test func seedsBenchmarksPrintTheSeedsSections() throws {
        let demo = Self.root.appendingPathComponent("Models/demo").path
        let components = try run(["bench", "components", "--model", demo, "--repeats", "1"])
        #expect(components.status == 0, "\(components.output)")
        for line in ["=== Stream Batch ===", "Sequential:", "Stream Batch:", "=== R-CFG ===", "Standard CFG:",
                     "Self-Negative R-CFG:", "=== Combined Pipeline ===", "Baseline", "StreamDiffusion:", "Speedup:"] {
            #expect(components.output.contains(line), "\(line) missing from:\n\(components.output)")
        }
        let throughput = try run(["bench", "throughput", "--model", demo, "--repeats", "1", "--json"])
        #expect(throughput.status == 0, "\(throughput.output)")
        struct Report: Decodable { struct Row: Decodable { let steps: Int; let baselineMs, oursMs, speedup: Double }; let comparisons: [Row] }
        let report = try JSONDecoder().decode(Report.self, from: Data(throughput.output.utf8))
        #expect(report.comparisons.map(\.steps) == [1, 4, 10])
        #expect(report.comparisons.allSatisfy { $0.baselineMs > 0 && $0.oursMs > 0 && abs($0.speedup - $0.baselineMs / $0.oursMs) < 1e-9 })
        let bad = try run(["bench", "throughput", "--model", demo, "--steps", "0"])
        #expect(bad.status != 0 && bad.output.contains("bad step count '0'"))
    }

    /// `bench cache` times both UNet calls per size and row count and the one-off prompt change.
    @Test func cacheBenchmarkReportsBothCalls() throws {
        let demo = Self.root.appendingPathComponent("Models/demo").path
        let result = try run(["bench", "cache", "--model", demo, "--repeats", "1", "--sizes", "64", "--rows", "1,2", "--json"])
        #expect(result.status == 0, "\(result.output)")
        struct Report: Decodable {
            struct Row: Decodable { let size, rows: Int; let projectedMs, cachedMs, savedMs, keysValuesMs: Double }
            let textEncoderMs, projectionMs: Double
            let calls: [Row]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(result.output.utf8))
        #expect(report.calls.map(\.rows) == [1, 2] && report.calls.allSatisfy { $0.size == 64 })
        #expect(report.calls.allSatisfy { $0.projectedMs > 0 && $0.cachedMs > 0 && abs($0.savedMs - ($0.projectedMs - $0.cachedMs)) < 1e-9 })
        #expect(report.textEncoderMs > 0 && report.projectionMs > 0 && report.calls.allSatisfy { $0.keysValuesMs > 0 })
        let bad = try run(["bench", "cache", "--model", demo, "--rows", "0"])
        #expect(bad.status != 0 && bad.output.contains("--rows: bad value '0'"))
    }
}
