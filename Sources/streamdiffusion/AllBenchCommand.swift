import ArgumentParser
import Foundation

/// `bench` with no subcommand: ops, models and stream one after the other, each with its defaults,
/// so `streamdiffusion bench --peer` reproduces every table against its peer in one command.
struct AllBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Run bench ops, bench models and bench stream in turn (the default).",
        discussion: """
        Each part runs with its own defaults plus the options given here. With --peer every part \
        runs its Python peer in the same run (install them with `make python-tools`): PyTorch for \
        ops and models, the official streamdiffusion package for the stream. A full run with \
        --peer took 23 minutes on 2 cores.
        """
    )

    @Flag(help: "Run each part's Python peer too and print the ratios.")
    var peer = false

    @Option(help: "Compute precision for every part: fp32 or bf16 (default: each part's own).")
    var dtype: String?

    @Option(help: "Thread count for models and stream (ops always measures 1 thread and all).")
    var threads: Int?

    @Option(help: "Write the stream tables' JSON and PNG charts to this folder (tools/plot_bench.py, needs matplotlib).")
    var charts: String?

    @Option(help: "Python interpreter for the peers and the charts.")
    var python = "python3"

    func run() throws {
        var common: [String] = []
        if peer { common += ["--peer", "--python", python] }
        if let dtype { common += ["--dtype", dtype] }
        let threadArgs = threads.map { ["--threads", "\($0)"] } ?? []
        print("== bench ops\n")
        let ops = try OpsBenchCommand.parse(common)
        try ops.run()
        print("\n== bench models\n")
        let models = try ModelsBenchCommand.parse(common + threadArgs)
        try models.run()
        print("\n== bench stream\n")
        let chartArgs = charts.map { ["--json-out", URL(fileURLWithPath: $0).appendingPathComponent("stream.json").path] } ?? []
        if let charts { try FileManager.default.createDirectory(atPath: charts, withIntermediateDirectories: true) }
        let stream = try StreamBenchCommand.parse(common + threadArgs + chartArgs)
        try stream.run()
        if let charts { try drawCharts(in: charts) }
    }

    /// tools/plot_bench.py over the stream JSON just written.
    func drawCharts(in folder: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "tools/plot_bench.py", URL(fileURLWithPath: folder).appendingPathComponent("stream.json").path, folder]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("tools/plot_bench.py failed (exit \(process.terminationStatus)); run `make python-tools` for matplotlib")
        }
    }
}
