import ArgumentParser
import Foundation
import StreamDiffusion

/// The seeds' two benchmark scripts (benchmark_components.py and benchmark_throughput.py), in their
/// output shape, measured by the same rig as `bench stream`. Per-frame milliseconds are txt2img
/// calls once the stream is full; the baseline is the plain pipeline: sequential denoising (one UNet
/// call per step) with full classifier-free guidance (two UNet rows per step).
struct SeedsBenchReport: Encodable {
    struct Comparison: Encodable {
        let section: String, baselineLabel: String, oursLabel: String
        let steps: Int, baselineMs: Double, oursMs: Double, speedup: Double

        init(section: String, baselineLabel: String, oursLabel: String, steps: Int, baselineMs: Double, oursMs: Double) {
            (self.section, self.baselineLabel, self.oursLabel) = (section, baselineLabel, oursLabel)
            (self.steps, self.baselineMs, self.oursMs, speedup) = (steps, baselineMs, oursMs, baselineMs / oursMs)
        }
    }
    let model: String, backend: String, size: Int
    var comparisons: [Comparison] = []
}

/// Shared by both commands: time txt2img at `steps` with the given cfg and batching.
private func txt2imgMs(_ rig: StreamBenchRig, size: Int, steps: Int, cfg: CFGType, batch: Bool) throws -> Double {
    try rig.msPerCall(size: size, indices: StreamBenchRig.indices(steps, img2img: false), cfg: cfg, batch: batch, img2img: false)
}

private func ms(_ value: Double) -> String { String(format: "%.1fms", value) }

struct ComponentsBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "components",
        abstract: "The seeds' component ablation: stream batch, R-CFG and the combined pipeline, with speed-ups.",
        discussion: """
        At 4 steps (LCM's usual count), txt2img: Stream Batch = sequential vs stream batch (no \
        guidance); R-CFG = full CFG vs residual CFG "self" (both stream batch); Combined = the plain \
        pipeline (sequential, full CFG) vs StreamDiffusion (stream batch, RCFG self).
        """
    )

    @OptionGroup var models: StreamBenchModelOptions

    @Option(help: "Picture size (default: the model's native size).")
    var size: Int?

    @Option(help: "Denoising steps of every section.")
    var steps = 4

    @Flag(help: "Print one JSON object instead of the sections.")
    var json = false

    func run() throws {
        guard (1...50).contains(steps) else { throw ValidationError("--steps must be 1...50") }
        let rig = try models.rig(log: json ? { _ in } : { print($0) })
        let size = self.size ?? rig.nativeSize
        guard size > 0, size % 8 == 0 else { throw ValidationError("--size must be a positive multiple of 8") }
        var report = SeedsBenchReport(model: rig.summary, backend: "\(rig.backend)", size: size)
        if !json { print("components at \(size)², \(steps) steps, txt2img, on \(rig.backend), \(rig.summary)") }
        let sequential = try txt2imgMs(rig, size: size, steps: steps, cfg: .none, batch: false)
        let batched = try txt2imgMs(rig, size: size, steps: steps, cfg: .none, batch: true)
        let fullCFG = try txt2imgMs(rig, size: size, steps: steps, cfg: .full, batch: true)
        let selfCFG = try txt2imgMs(rig, size: size, steps: steps, cfg: .self, batch: true)
        let baseline = try txt2imgMs(rig, size: size, steps: steps, cfg: .full, batch: false)
        report.comparisons = [
            .init(section: "Stream Batch", baselineLabel: "Sequential", oursLabel: "Stream Batch", steps: steps,
                  baselineMs: sequential, oursMs: batched),
            .init(section: "R-CFG", baselineLabel: "Standard CFG", oursLabel: "Self-Negative R-CFG", steps: steps,
                  baselineMs: fullCFG, oursMs: selfCFG),
            .init(section: "Combined Pipeline", baselineLabel: "Baseline (sequential, full CFG)", oursLabel: "StreamDiffusion",
                  steps: steps, baselineMs: baseline, oursMs: selfCFG),
        ]
        if json { return try printJSON(report) }
        for c in report.comparisons {
            print("\n=== \(c.section) ===\n\(c.baselineLabel): \(ms(c.baselineMs))\n\(c.oursLabel): \(ms(c.oursMs))\n"
                  + String(format: "Speedup: %.2f×", c.speedup))
        }
    }
}

struct ThroughputBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "throughput",
        abstract: "The seeds' throughput table: per-frame ms of the plain pipeline and of StreamDiffusion at 1, 4 and 10 steps.",
        discussion: """
        Baseline: sequential denoising with full CFG. StreamDiffusion: stream batch with residual CFG \
        "self". txt2img, per frame once the stream is full.
        """
    )

    @OptionGroup var models: StreamBenchModelOptions

    @Option(help: "Picture size (default: the model's native size).")
    var size: Int?

    @Option(help: "Step counts, comma-separated.")
    var steps = "1,4,10"

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func run() throws {
        let stepList = try steps.split(separator: ",").map { part -> Int in
            guard let n = Int(part), (1...50).contains(n) else { throw ValidationError("bad step count '\(part)'") }
            return n
        }
        let rig = try models.rig(log: json ? { _ in } : { print($0) })
        let size = self.size ?? rig.nativeSize
        guard size > 0, size % 8 == 0 else { throw ValidationError("--size must be a positive multiple of 8") }
        var report = SeedsBenchReport(model: rig.summary, backend: "\(rig.backend)", size: size)
        if !json {
            print("throughput at \(size)², txt2img, on \(rig.backend), \(rig.summary)\n")
            print("| Configuration | Baseline | StreamDiffusion | Speedup |\n|---|---|---|---|")
        }
        for n in stepList {
            let c = SeedsBenchReport.Comparison(
                section: "Throughput", baselineLabel: "sequential, full CFG", oursLabel: "stream batch, RCFG self", steps: n,
                baselineMs: try txt2imgMs(rig, size: size, steps: n, cfg: .full, batch: false),
                oursMs: try txt2imgMs(rig, size: size, steps: n, cfg: .self, batch: true))
            report.comparisons.append(c)
            if !json {
                print("| \(n)-step denoising | \(ms(c.baselineMs)) | \(ms(c.oursMs)) | " + String(format: "%.2f× |", c.speedup))
            }
        }
        if json { try printJSON(report) }
    }
}
