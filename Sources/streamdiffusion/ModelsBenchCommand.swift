import ArgumentParser
import Foundation
import ModelFiles
import Models
import Tensors

struct ModelsBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Time the real-size sd-turbo components: UNet at 512×512 (batch 1 and 2), TAESD, CLIP.",
        discussion: """
        Without --model the weights are random, written once as fp16 safetensors under the exact \
        diffusers names and shapes (Tests/Fixtures/layouts) and loaded through the normal loader. \
        With --peer, diffusers on PyTorch runs the same architectures on the same threads in the \
        same run (tools/peer_bench.py) and the speed-up column is PyTorch time / our time.
        """
    )

    @Option(help: "Thread count; 'all' means every core.")
    var threads: String = "all"

    @Option(help: "Compute precisions, comma-separated: fp32, bf16.")
    var dtype: String?

    @Option(help: "UNet batch sizes, comma-separated.")
    var batch: String = "1,2"

    @Option(help: "Image size in pixels (latents are size/8).")
    var size: Int = 512

    @Option(help: "Timed runs per measurement (the median is reported).")
    var repeats: Int = 3

    @Option(help: "Untimed warm-up runs per measurement.")
    var warmup: Int = 1

    @Option(help: "Folder of layout JSON files (tools/export_layouts.py).")
    var layouts = "Tests/Fixtures/layouts"

    @Option(help: "Where the synthetic model folders are written (reused across runs).")
    var cache = FileManager.default.temporaryDirectory.appendingPathComponent("streamdiffusion-synthetic").path

    @Flag(help: "Also run diffusers on PyTorch (tools/peer_bench.py) and print the ratio.")
    var peer = false

    @Option(help: "Python interpreter for --peer.")
    var python = "python3"

    @Option(help: "Peer script for --peer.")
    var peerScript = "tools/peer_bench.py"

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        guard repeats >= 1, warmup >= 0 else { throw ValidationError("--repeats must be ≥ 1 and --warmup ≥ 0") }
        guard size >= 64, size % 64 == 0 else { throw ValidationError("--size must be a positive multiple of 64") }
        if peer && !FileManager.default.fileExists(atPath: peerScript) {
            throw ValidationError("peer script \(peerScript) not found (run from the repository root, or pass --peer-script)")
        }
    }

    func run() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard let threadCount = threads == "all" ? cores : Int(threads), threadCount >= 1 else {
            throw ValidationError("bad thread count '\(threads)'")
        }
        let batches = try batch.split(separator: ",").map { part -> Int in
            guard let b = Int(part.trimmingCharacters(in: .whitespaces)), b >= 1, b <= 8 else {
                throw ValidationError("bad batch size '\(part)' (1…8)")
            }
            return b
        }
        let precisions = dtype?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            ?? (CPUBackend.hardwareSupportsBFloat16 ? ["fp32", "bf16"] : ["fp32"])
        let folders = SyntheticModels(layouts: URL(fileURLWithPath: layouts), cache: URL(fileURLWithPath: cache),
                                      log: json ? { _ in } : { print($0) })
        var report = ModelsReport(threads: threadCount, size: size)
        if peer {   // the peer loads these very weights (--weights), so write them first
            for name in ["sd-turbo-unet", "sd-turbo-text-encoder", "taesd"] { _ = try folders.folder(name) }
        }
        for precision in precisions {
            guard precision == "fp32" || precision == "bf16" else { throw ValidationError("unknown precision '\(precision)'") }
            let backend = try CPUBackend(threads: threadCount, precision: precision == "bf16" ? .bfloat16 : .float32)
            var section = ModelsReport.Section(dtype: precision, rows: [])
            if peer {
                let answer = try PeerRunner(python: python, script: peerScript).run(
                    ["--threads", "\(threadCount)", "--dtype", precision, "--json", "--size", "\(size)",
                     "--batch", batches.map(String.init).joined(separator: ","), "--repeats", "\(repeats)", "--warmup", "\(warmup)",
                     "--weights", cache])
                section.peer = answer.results.mapValues(\.ms)
                report.peer = "diffusers on PyTorch \(answer.torch_version ?? "?")"
            }
            try measure(into: &section, backend: backend, folders: folders, batches: batches)
            report.sections.append(section)
            if !json { print(section.table(threads: threadCount, size: size)) }
        }
        if json { print(try report.json()) }
    }

    func time(_ body: () throws -> Void) throws -> Double {
        OpBenchmark.median(try OpBenchmark.time(warmup: warmup, repeats: repeats, body))
    }

    func measure(into section: inout ModelsReport.Section, backend: CPUBackend, folders: SyntheticModels,
                 batches: [Int]) throws {
        let latent = size / 8
        let start = Date()
        let unet = try UNet2DConditionModel(folders.scope("sd-turbo-unet", backend: backend), config: folders.config("sd-turbo-unet"))
        section.add("unet_load", "UNet load + weight packing", Date().timeIntervalSince(start) * 1000)
        for b in batches {
            let sample = try OpBenchmark.random(backend, [b, latent, latent, 4])
            let context = try OpBenchmark.random(backend, [b, 77, 1024])
            let steps = [Float](repeating: 999, count: b)
            section.add("unet_b\(b)", "UNet \(size)×\(size), batch \(b)", try time { _ = try unet(sample, timesteps: steps, context: context) })
        }
        let taesd = try AutoencoderTiny(folders.scope("taesd", backend: backend), config: folders.config("taesd"))
        let latents = try OpBenchmark.random(backend, [1, latent, latent, 4])
        let image = try OpBenchmark.random(backend, [1, size, size, 3])
        section.add("taesd_decode", "TAESD decode \(size)×\(size)", try time { _ = try taesd.decode(latents) })
        section.add("taesd_encode", "TAESD encode \(size)×\(size)", try time { _ = try taesd.encode(image) })
        let text = try CLIPTextModel(folders.scope("sd-turbo-text-encoder", backend: backend),
                                     config: folders.config("sd-turbo-text-encoder"))
        let ids = [[49406, 320, 1125, 539, 320, 2368, 49407] + [Int](repeating: 0, count: 70)]
        section.add("text_encode", "CLIP text encode (77 tokens)", try time { _ = try text(ids) })
    }
}

/// Synthetic real-size model folders, written once from the exported layouts and reused.
struct SyntheticModels {
    let layouts: URL, cache: URL
    let log: (String) -> Void

    static let weightFile = "weights.fp16.safetensors"

    func folder(_ name: String) throws -> URL {
        let layoutURL = layouts.appendingPathComponent("\(name).json")
        let folder = cache.appendingPathComponent(name)
        let weights = folder.appendingPathComponent(SyntheticModels.weightFile)
        let layout = try ModelLayout(contentsOf: layoutURL)
        let expectedBytes = layout.parameterCount * 2
        let size = (try? FileManager.default.attributesOfItem(atPath: weights.path)[.size] as? Int) ?? 0
        if size < expectedBytes {
            log("writing random fp16 \(name) (\(layout.parameterCount / 1_000_000) M parameters) to \(folder.path)")
            try layout.write(to: folder, weightsName: SyntheticModels.weightFile)
        }
        return folder
    }

    func scope(_ name: String, backend: any Backend) throws -> WeightScope {
        let source = try SafeTensorsFile(url: folder(name).appendingPathComponent(SyntheticModels.weightFile))
        return WeightScope(source: source, backend: backend)
    }

    func config<T: Decodable>(_ name: String) throws -> T {
        try ConfigFile.load(T.self, from: folder(name).appendingPathComponent("config.json"))
    }
}

struct ModelsReport: Encodable {
    struct Row: Encodable {
        let key: String, summary: String, ms: Double
        var peerMs: Double?
        /// The peer with its module converted to bf16 (bf16 runs only; `peerMs` is autocast there).
        var peerBF16WeightsMs: Double?
        var speedup: Double? { peerMs.map { $0 / ms } }
        enum CodingKeys: String, CodingKey { case key, summary, ms, peerMs, peerBF16WeightsMs, speedup }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(key, forKey: .key)
            try c.encode(summary, forKey: .summary)
            try c.encode(ms, forKey: .ms)
            try c.encodeIfPresent(peerMs, forKey: .peerMs)
            try c.encodeIfPresent(peerBF16WeightsMs, forKey: .peerBF16WeightsMs)
            try c.encodeIfPresent(speedup, forKey: .speedup)
        }
    }

    struct Section: Encodable {
        let dtype: String
        var rows: [Row]
        var peer: [String: Double]? = nil

        mutating func add(_ key: String, _ summary: String, _ ms: Double) {
            rows.append(Row(key: key, summary: summary, ms: ms, peerMs: peer?[key], peerBF16WeightsMs: peer?[key + "_bf16weights"]))
        }

        func table(threads: Int, size: Int) -> String {
            let bf16Weights = rows.contains { $0.peerBF16WeightsMs != nil }
            var lines = ["", "\(dtype), \(threads) thread\(threads == 1 ? "" : "s")"]
            var header = pad("", 36) + pad("ms", 12, right: true)
            if peer != nil { header += pad(dtype == "bf16" ? "PyTorch autocast" : "PyTorch ms", 18, right: true) + pad("speed-up", 10, right: true) }
            if bf16Weights { header += pad("bf16 weights", 14, right: true) + pad("speed-up", 10, right: true) }
            lines.append(header)
            for r in rows {
                var line = pad(r.summary, 36) + pad(format(r.ms, 1), 12, right: true)
                if peer != nil {
                    line += pad(r.peerMs.map { format($0, 1) } ?? "–", 18, right: true)
                        + pad(r.speedup.map { "\(format($0, 2))×" } ?? "–", 10, right: true)
                }
                if bf16Weights {
                    line += pad(r.peerBF16WeightsMs.map { format($0, 1) } ?? "–", 14, right: true)
                        + pad(r.peerBF16WeightsMs.map { "\(format($0 / r.ms, 2))×" } ?? "–", 10, right: true)
                }
                lines.append(line)
            }
            return lines.joined(separator: "\n")
        }
    }

    let threads: Int, size: Int
    var peer: String?
    var sections: [Section] = []

    init(threads: Int, size: Int) { (self.threads, self.size) = (threads, size) }

    func json() throws -> String { try jsonText(self) }
}
