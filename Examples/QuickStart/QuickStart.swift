import ArgumentParser
import Foundation
import Media
import StreamDiffusionKit

/// The seeds' two quick-start loops in Swift, on `StreamDiffusionPipeline`:
/// prompts in a loop (text-to-image), and the frames of a video file through img2img (the live
/// style-transfer loop, with a file instead of a webcam). Without --model: sd-turbo from the cache,
/// else the bundled demo model.
@main
struct QuickStart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quickstart",
        abstract: "The seeds' quick-start loops: prompts → pictures, and a video file → a restyled video.")

    @Option(help: "A diffusers folder or a cached hub id (default: sd-turbo when cached, else the demo model).")
    var model: String?

    @Option(parsing: .upToNextOption, help: "Prompts for the text-to-image loop.")
    var prompts: [String] = ["a red circle on a blue background", "a yellow star on a black background",
                             "a green square on a white background"]

    @Option(help: "Folder for the text-to-image pictures.")
    var outputFolder = "quickstart-output"

    @Option(help: "A video file for the img2img loop (skipped when absent).")
    var video: String?

    @Option(help: "The img2img prompt.")
    var style = "a blue circle on a black background"

    @Option(help: "Denoising steps.")
    var steps = 1

    func run() throws {
        // Text-to-image, as in the seeds: one pipeline, prompts in a loop.
        let pipe = try StreamDiffusionPipeline(modelID: model, denoisingSteps: steps, useStreamBatch: true,
                                               useRCFG: true, useSSF: true)
        try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true)
        for (k, prompt) in prompts.enumerated() {
            let start = Date()
            let image = try pipe(prompt: prompt)
            let url = URL(fileURLWithPath: outputFolder).appendingPathComponent(String(format: "%02d.png", k))
            try ImageIO().write(image, to: url)
            print(String(format: "%@  %.1f ms  \"%@\"", url.path, 1000 * Date().timeIntervalSince(start), prompt))
        }
        guard let video else { return }
        // Image-to-image, as in the seeds' webcam loop: each frame in, one styled frame out.
        let reader = try VideoReader(url: URL(fileURLWithPath: video))
        defer { reader.close() }
        let output = URL(fileURLWithPath: outputFolder).appendingPathComponent("styled.mp4")
        let size = pipe.parameters
        let writer = try VideoWriter(url: output, width: size.width, height: size.height, frameRate: reader.info.frameRate ?? 30)
        let start = Date()
        while let frame = try reader.nextFrame() {
            try writer.write(pipe.img2img(frame, prompt: style))
        }
        try writer.finish()
        print(String(format: "%@  %d frames, %.1f frames/s  \"%@\"", output.path, writer.framesWritten,
                     Double(writer.framesWritten) / max(Date().timeIntervalSince(start), 1e-9), style))
    }
}
