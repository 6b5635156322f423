import ArgumentParser

@main
struct StreamDiffusionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamdiffusion",
        abstract: "Real-time Stable Diffusion streams (StreamDiffusion) in native Swift.",
        subcommands: [Txt2ImgCommand.self, Img2ImgCommand.self, VideoCommand.self, ServeCommand.self, InspectCommand.self, BenchCommand.self,
                      DevicesCommand.self]
    )
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks on this machine, optionally side by side with PyTorch.",
        subcommands: [AllBenchCommand.self, OpsBenchCommand.self, ModelsBenchCommand.self, StreamBenchCommand.self,
                      ComponentsBenchCommand.self, ThroughputBenchCommand.self, CacheBenchCommand.self,
                      ScalingBenchCommand.self, GuidanceBenchCommand.self, SSFBenchCommand.self],
        defaultSubcommand: AllBenchCommand.self
    )
}
