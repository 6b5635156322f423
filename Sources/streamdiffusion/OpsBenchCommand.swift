import ArgumentParser
import Foundation
import Tensors

struct OpsBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Time Stable Diffusion's hottest ops against this machine's measured peak.",
        discussion: """
        Convolutions, linear layers and attention report GFLOP/s and the fraction of the FMA peak \
        measured at start; GroupNorm reports GB/s against memcpy on the same data size. With --peer, \
        PyTorch runs the same ops on the same threads in the same run (tools/peer_ops_bench.py) and \
        the speed-up column is PyTorch time / our time.
        """
    )

    @Option(help: "Thread counts to run, comma-separated; 'all' means every core.")
    var threads: String = "1,all"

    @Option(help: "Compute precisions, comma-separated: fp32, bf16 (bf16 only where the CPU has AVX-512 BF16).")
    var dtype: String?

    @Option(help: "Only these op keys, comma-separated.")
    var ops: String?

    @Option(help: "Timed runs per op (the median is reported).")
    var repeats: Int = 10

    @Option(help: "Untimed warm-up runs per op.")
    var warmup: Int = 3

    @Flag(help: "Also run PyTorch on the same ops, threads and precision, and print the ratio.")
    var peer = false

    @Option(name: .customLong("backend"), help: "cpu (default) or vulkan: time the ops on a Vulkan device against the fp32 CPU backend (all cores) in the same run.")
    var backendName: String?

    @Option(help: "Vulkan device index for --backend vulkan (see `streamdiffusion devices`).")
    var device: Int?

    @Option(help: "Weight storage of the Vulkan rows: fp32 (default) or fp16; convolutions and linear layers also get a row with the other.")
    var vulkanWeights: String?

    @Option(help: "Python interpreter for --peer.")
    var python = "python3"

    @Option(help: "Peer script for --peer.")
    var peerScript = "tools/peer_ops_bench.py"

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        guard repeats >= 1, warmup >= 0 else { throw ValidationError("--repeats must be ≥ 1 and --warmup ≥ 0") }
        if peer && !FileManager.default.fileExists(atPath: peerScript) {
            throw ValidationError("peer script \(peerScript) not found (run from the repository root, or pass --peer-script)")
        }
    }

    func run() throws {
        try validateBackend(backendName, device: device, vulkanWeights: vulkanWeights)
        if vulkanWeights != nil && backendName != "vulkan" {
            throw ValidationError("--vulkan-weights applies to --backend vulkan (bench ops times the CPU without it)")
        }
        if backendName == "vulkan" { return try runOnVulkan() }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threadCounts = try parseThreads(cores: cores)
        let precisions = try parsePrecisions()
        let selected = try selectedCases()
        let peerRunner = peer ? PeerRunner(python: python, script: peerScript) : nil
        var report = OpsReport(isa: CPUBackend.isaName, oneDNN: CPUBackend.oneDNNVersion, cores: cores)
        if !json {
            print("StreamDiffusion op benchmark — oneDNN \(report.oneDNN), \(report.isa), \(cores) cores; median of \(repeats) runs")
        }
        for precision in precisions {
            for threads in threadCounts {
                let backend = try CPUBackend(threads: threads, precision: precision == "bf16" ? .bfloat16 : .float32)
                let peak = OpBenchmark.peakGFLOPS(threads: threads, bfloat16: precision == "bf16")
                let copy = OpBenchmark.copyGBps(bytes: 320 * 64 * 64 * 4, threads: threads)
                var peerTimes: [String: Double] = [:]
                if let peerRunner {
                    let answer = try peerRunner.run(["--threads", "\(threads)", "--dtype", precision, "--json",
                                                     "--repeats", "\(repeats)", "--warmup", "\(warmup)",
                                                     "--ops", selected.map(\.key).joined(separator: ",")])
                    peerTimes = answer.results.mapValues(\.ms)
                    report.peer = "PyTorch \(answer.torch_version ?? "?")"
                }
                var rows: [OpsReport.Row] = []
                for item in selected {
                    let call = try item.prepare(backend)
                    let ms = OpBenchmark.median(try OpBenchmark.time(warmup: warmup, repeats: repeats, call))
                    rows.append(OpsReport.Row(item: item, ms: ms, peakGFLOPS: peak, copyGBps: copy, peerMs: peerTimes[item.key]))
                }
                let section = OpsReport.Section(dtype: precision, threads: threads, peakGFLOPS: peak, copyGBps: copy, rows: rows)
                report.sections.append(section)
                if !json { print(section.table(peer: report.peer)) }
            }
        }
        if json { print(try report.json()) }
    }

    func parseThreads(cores: Int) throws -> [Int] {
        var seen: [Int] = []
        for part in threads.split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let n = text == "all" ? cores : Int(text), n >= 1 else {
                throw ValidationError("bad thread count '\(text)' (use numbers ≥ 1 or 'all')")
            }
            if !seen.contains(n) { seen.append(n) }
        }
        return seen
    }

    func parsePrecisions() throws -> [String] {
        let requested = dtype.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            ?? (CPUBackend.hardwareSupportsBFloat16 ? ["fp32", "bf16"] : ["fp32"])
        for p in requested {
            guard p == "fp32" || p == "bf16" else { throw ValidationError("unknown precision '\(p)' (fp32 or bf16)") }
            if p == "bf16" && !CPUBackend.hardwareSupportsBFloat16 {
                throw ValidationError("bf16 needs AVX-512 BF16, which this CPU lacks")
            }
        }
        return requested
    }

    func selectedCases() throws -> [OpBenchmark.Case] {
        guard let ops else { return OpBenchmark.cases }
        let keys = ops.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let known = Set(OpBenchmark.cases.map(\.key))
        if let unknown = keys.first(where: { !known.contains($0) }) {
            throw ValidationError("unknown op '\(unknown)'; known: \(OpBenchmark.cases.map(\.key).joined(separator: ", "))")
        }
        return OpBenchmark.cases.filter { keys.contains($0.key) }
    }
}
