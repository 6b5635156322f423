import ArgumentParser

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
        --peer takes about half an hour on 2 cores.
        """
    )

    @Flag(help: "Run each part's Python peer too and print the ratios.")
    var peer = false

    @Option(help: "Compute precision for every part: fp32 or bf16 (default: each part's own).")
    var dtype: String?

    @Option(help: "Thread count for models and stream (ops always measures 1 thread and all).")
    var threads: Int?

    func run() throws {
        var common: [String] = []
        if peer { common.append("--peer") }
        if let dtype { common += ["--dtype", dtype] }
        let threadArgs = threads.map { ["--threads", "\($0)"] } ?? []
        print("== bench ops\n")
        let ops = try OpsBenchCommand.parse(common)
        try ops.run()
        print("\n== bench models\n")
        let models = try ModelsBenchCommand.parse(common + threadArgs)
        try models.run()
        print("\n== bench stream\n")
        let stream = try StreamBenchCommand.parse(common + threadArgs)
        try stream.run()
    }
}
