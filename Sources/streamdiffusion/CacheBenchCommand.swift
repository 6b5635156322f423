import ArgumentParser
import Foundation
import Models
import Tensors

/// `bench cache`: what the pre-computation cache (paper §3) saves. The same UNet call with the
/// prompt's cross-attention keys and values projected inside the call (what a pipeline without the
/// cache does every frame) and taken from the cache; plus what a prompt change costs once.
struct CacheBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "The pre-computation cache: a UNet call with the prompt's keys and values cached vs projected per call.",
        discussion: """
        For each size and row count, the two UNet calls alternate (so machine noise hits both alike) \
        and the medians are compared; "projection alone" times the work the cache removes from \
        each call (the keys and values of that many prompt rows), which machine noise blurs less. \
        "Prompt change" is what the cache costs instead: the text encoder plus projecting the keys \
        and values of every cross-attention layer once.
        """
    )

    @OptionGroup var models: StreamBenchModelOptions

    @Option(help: "Picture sizes, comma-separated (default: the model's native size and half of it).")
    var sizes: String?

    @Option(help: "UNet rows per call, comma-separated (stream batch: steps × frames, doubled by full CFG).")
    var rows = "1,4"

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    struct Row: Encodable {
        let size: Int, rows: Int, projectedMs: Double, cachedMs: Double, savedMs: Double, savedPercent: Double
        /// The work the cache removes from each call, timed alone: projecting `rows` prompt rows.
        let keysValuesMs: Double
    }

    struct Report: Encodable {
        let model: String, backend: String
        let textEncoderMs: Double, projectionMs: Double
        var calls: [Row] = []
    }

    func run() throws {
        let rowList = try BenchList.parse(rows, option: "--rows", Int.init, valid: "positive integers") { $0 > 0 }
        let rig = try models.rig(log: json ? { _ in } : { print($0) })
        let sizeList = try sizes.map {
            try BenchList.parse($0, option: "--sizes", Int.init, valid: "positive multiples of 8") { $0 > 0 && $0 % 8 == 0 }
        } ?? [rig.nativeSize, rig.nativeSize / 2]
        let tokens = try rig.tokenizer.encode("a photograph of a mountain lake at dawn")
        let embedding = try rig.text([tokens])
        let median = { (body: () throws -> Void) in OpBenchmark.median(try rig.time(warmup: 1, repeats: rig.repeats, body)) }
        var report = Report(model: rig.summary, backend: "\(rig.backend)",
                            textEncoderMs: try median { _ = try rig.text([tokens]) },
                            projectionMs: try median { _ = try rig.unet.crossAttention(embedding) })
        if !json {
            print("pre-computation cache on \(rig.backend), \(rig.summary)")
            print(String(format: "prompt change: text encoder %.1f ms + keys/values %.1f ms, once per prompt\n",
                         report.textEncoderMs, report.projectionMs))
            print("| Size | UNet rows | Keys/values per call | Cached | Saved | Projection alone |\n|---|---|---|---|---|---|")
        }
        for size in sizeList {
            for n in rowList {
                let sample = try OpBenchmark.random(rig.backend, [n, size / 8, size / 8, 4])
                let context = try rig.backend.concatRows(Array(repeating: embedding, count: n))
                let cached = try CrossAttentionContext.stacked(Array(repeating: rig.unet.crossAttention(embedding), count: n),
                                                               on: rig.backend)
                let timesteps = [Float](repeating: 999, count: n)
                var projected: [Double] = [], reused: [Double] = []
                _ = try rig.unet(sample, timesteps: timesteps, context: cached)   // warm-up
                for _ in 0..<max(1, rig.repeats) {
                    projected += try rig.time(warmup: 0, repeats: 1) { _ = try rig.unet(sample, timesteps: timesteps, context: context) }
                    reused += try rig.time(warmup: 0, repeats: 1) { _ = try rig.unet(sample, timesteps: timesteps, context: cached) }
                }
                let (p, c) = (OpBenchmark.median(projected), OpBenchmark.median(reused))
                let row = Row(size: size, rows: n, projectedMs: p, cachedMs: c, savedMs: p - c, savedPercent: 100 * (p - c) / p,
                              keysValuesMs: try median { _ = try rig.unet.crossAttention(context) })
                report.calls.append(row)
                if !json {
                    print(String(format: "| %d² | %d | %.1f ms | %.1f ms | %.1f ms (%.1f %%) | %.1f ms |", size, n, p, c, row.savedMs,
                                 row.savedPercent, row.keysValuesMs))
                }
            }
        }
        if json { try printJSON(report) }
    }
}
