import ArgumentParser
import Foundation
import StreamDiffusion
import Tensors

/// `bench ssf`: the paper's open question on the stochastic similarity filter with moving
/// content. Synthetic clips run through img2img with the filter at several thresholds and off.
struct SSFBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssf",
        abstract: "The similarity filter on static, slow, fast and cut-heavy clips: skip rate, CPU per frame and stutter per threshold.",
        discussion: """
        Clips (SimilarityClip, deterministic, ±0.02 sensor grain per frame): static; slow pan, 1 px \
        per frame; fast pan, size/32 px per frame; cuts, a new scene every 3 frames. Each runs \
        through img2img with the official defaults (t-index 32,45, cfg self, guidance 1.2) on the \
        bundled demo model, once with the filter off and once per threshold, for every seed (the \
        seed drives the filter's random draws and the stream's noise). skip rate = skipped / input \
        frames; CPU = process CPU time over every thread per input frame (the energy proxy; it \
        includes the filter's own work on skipped frames), the least over --repeats runs of the \
        same seed (their decisions are identical), then the mean over seeds; stutter = the longest \
        run of consecutive skipped frames, each repeating the previous output (a run of k keeps one \
        picture on screen for k + 1 frame times), the worst over seeds.
        """
    )

    @OptionGroup var models: DemoBenchModelOptions

    @Option(help: "Thresholds η, comma-separated (0 < η ≤ 1; 1 never skips).")
    var thresholds = "0.95,0.96,0.97,0.98,0.99,0.995"

    @Option(help: "Clips, comma-separated: static, slow-pan, fast-pan, cuts.")
    var clips = "static,slow-pan,fast-pan,cuts"

    @Option(help: "Frames per clip.")
    var frames = 60

    @Option(help: "Seeds (1…N): each clip and threshold runs once per seed.")
    var seeds = 3

    @Option(help: "Runs of each clip, setting and seed; the one with the least CPU time counts (the rest is other processes' noise).")
    var repeats = 2

    @Option(help: "similar_image_filter_max_skip_frame (the official default: 10).")
    var maxSkipFrames = 10

    @Option(help: "t-index list (the official img2img default).")
    var tIndexList = "32,45"

    @Option(help: "CFG type: none, self, initialize or full (the official default: self).")
    var cfgType = "self"

    @Option(help: "Guidance scale (the official default: 1.2).")
    var guidanceScale: Float = 1.2

    @Option(help: "The prompt.")
    var prompt = "a red circle on a white background"

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    struct Row: Codable {
        let clip: String
        let filterOn: Bool
        /// nil: the filter off.
        let threshold: Double?
        let frames: Int, skipped: Int, skipRate: Double
        let cpuMsPerFrame: Double, wallMsPerFrame: Double
        /// CPU per input frame with the filter off / with this setting.
        let cpuSaving: Double
        let stutter: Int, stutterMean: Double
    }

    struct Report: Codable {
        var benchmark = "ssf"
        let model: String, backend: String, size: Int, seeds: [UInt64], repeats: Int, maxSkipFrames: Int
        let tIndexList: [Int], cfg: String, guidance: Double, prompt: String
        let panPixelsPerFrame: [String: Int]
        var stutterDefinition = "longest run of consecutive skipped input frames (each repeats the previous output); worst over seeds"
        var cpuDefinition = "process CPU time over every thread per input frame: the least of the repeats, mean over seeds"
        var rows: [Row] = []
    }

    func run() throws {
        let etas = try BenchList.parse(thresholds, option: "--thresholds", Double.init, valid: "numbers in (0, 1]") {
            $0 > 0 && $0 <= 1
        }
        let kinds = try BenchList.parse(clips, option: "--clips", { name in SimilarityClip.Kind.allCases.first { $0.argument == name } },
                                        valid: "static, slow-pan, fast-pan, cuts")
        let indices = try BenchList.parse(tIndexList, option: "--t-index-list", Int.init, valid: "indices 0...49") { (0...49).contains($0) }
        guard let cfg = CFGType(rawValue: cfgType) else { throw ValidationError("--cfg-type must be none, full, self or initialize") }
        guard (2...10_000).contains(frames) else { throw ValidationError("--frames must be 2...10000 (got \(frames))") }
        guard (1...100).contains(seeds) else { throw ValidationError("--seeds must be 1...100 (got \(seeds))") }
        guard maxSkipFrames >= 0 else { throw ValidationError("--max-skip-frames must be ≥ 0") }
        guard (1...20).contains(repeats) else { throw ValidationError("--repeats must be 1...20 (got \(repeats))") }
        let m = try models.load(log: json ? { _ in } : { print($0) })
        let seedList = (1...seeds).map(UInt64.init)
        var report = Report(model: m.name, backend: "\(m.backend)", size: m.size, seeds: seedList, repeats: repeats, maxSkipFrames: maxSkipFrames,
                            tIndexList: indices, cfg: cfg.rawValue, guidance: Double(guidanceScale), prompt: prompt,
                            panPixelsPerFrame: Dictionary(uniqueKeysWithValues: kinds.map { ($0.argument, $0.panPixels(size: m.size)) }))
        if !json {
            print("similarity filter at \(m.size)², \(frames) frames × \(seeds) seeds, t-index \(indices), cfg \(cfg.rawValue), max skip \(maxSkipFrames)")
            print(pad("clip", 20) + pad("threshold", 10, right: true) + pad("skip rate", 11, right: true)
                  + pad("CPU ms/frame", 14, right: true) + pad("saving", 9, right: true) + pad("stutter", 9, right: true))
        }
        for kind in kinds {
            var baseline: Double?
            for eta in [nil] + etas.map(Optional.some) {
                var runs: [SimilarityMeasurement] = []
                for seed in seedList {
                    var p = StreamParameters()
                    (p.width, p.height, p.tIndexList, p.seed) = (m.size, m.size, indices, seed)
                    (p.cfgType, p.guidanceScale) = (cfg, guidanceScale)
                    (p.enableSimilarImageFilter, p.similarImageFilterThreshold, p.similarImageFilterMaxSkipFrame) = (eta != nil, eta ?? 1, maxSkipFrames)
                    // Same seed, same decisions: only the CPU time differs between repeats.
                    let repeated = try (0..<repeats).map { _ in
                        let stream = try StreamPipeline(model: m.model, scheduler: m.scheduler, parameters: p, backend: m.backend)
                        try stream.prepare(prompt: prompt)
                        return try SimilarityClip(kind: kind, size: m.size).measure(stream, frames: frames)
                    }
                    if let best = repeated.min(by: { $0.cpuMsPerFrame < $1.cpuMsPerFrame }) { runs.append(best) }
                }
                let row = Self.summarise(runs, clip: kind.argument, threshold: eta, baseline: baseline)
                baseline = baseline ?? row.cpuMsPerFrame
                report.rows.append(row)
                if !json {
                    print(pad(kind.rawValue, 20) + pad(eta.map { "\($0)" } ?? "off", 10, right: true)
                          + pad(format(100 * row.skipRate, 1) + " %", 11, right: true) + pad(format(row.cpuMsPerFrame, 1), 14, right: true)
                          + pad(format(row.cpuSaving, 2) + "×", 9, right: true) + pad("\(row.stutter)", 9, right: true))
                }
            }
        }
        if json { try printJSON(report) }
    }

    /// One row from the runs of every seed; `baseline` is the filter-off CPU per frame (nil: this is it).
    static func summarise(_ runs: [SimilarityMeasurement], clip: String, threshold: Double?, baseline: Double?) -> Row {
        let count = Double(max(1, runs.count))
        let frames = runs.reduce(0) { $0 + $1.skips.count }, skipped = runs.reduce(0) { $0 + $1.skipped }
        let cpu = runs.reduce(0) { $0 + $1.cpuMsPerFrame } / count
        let stutters = runs.map { longestRun($0.skips) }
        return Row(clip: clip, filterOn: threshold != nil, threshold: threshold, frames: frames, skipped: skipped, skipRate: Double(skipped) / Double(max(1, frames)),
                   cpuMsPerFrame: cpu, wallMsPerFrame: runs.reduce(0) { $0 + $1.wallMsPerFrame } / count,
                   cpuSaving: (baseline ?? cpu) / cpu, stutter: stutters.max() ?? 0,
                   stutterMean: Double(stutters.reduce(0, +)) / count)
    }
}
