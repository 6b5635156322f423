import ArgumentParser
import Foundation
import Media
import StreamDiffusion
import Tensors

struct VideoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "video",
        abstract: "Stream a video file through img2img (ffmpeg decodes and encodes).",
        discussion: """
        Every input frame yields exactly one output frame, in order, at the input frame rate: a frame \
        the similarity filter skips repeats the previous output, and the stream's latency is flushed \
        at the end. Frames are scaled to --width × --height.
        """
    )

    @OptionGroup var options: StreamOptions

    @Option(help: "Input video (anything ffmpeg reads: mp4, mov, webm, …).")
    var input: String

    @Option(help: "Output video (.mp4, .mov, .mkv or .webm).")
    var output: String

    @Option(help: "Similarity filter threshold η (enables the filter).")
    var similarFilterThreshold: Double?

    @Option(help: "Force a real frame after this many skips.")
    var similarFilterMaxSkip = 10

    @Option(help: "Frames entering the stream per call.")
    var frameBufferSize = 1

    @Flag(help: "Do not re-noise frames between steps.")
    var noAddNoise = false

    func run() throws {
        let reader = try VideoReader(url: URL(fileURLWithPath: input), size: (options.width, options.height))
        defer { reader.close() }
        let rate = reader.info.frameRate ?? 30
        var parameters = try options.parameters(defaultIndices: [32, 45])
        parameters.doAddNoise = !noAddNoise
        parameters.frameBufferSize = frameBufferSize
        if let similarFilterThreshold {
            parameters.enableSimilarImageFilter = true
            parameters.similarImageFilterThreshold = similarFilterThreshold
            parameters.similarImageFilterMaxSkipFrame = similarFilterMaxSkip
        }
        guard frameBufferSize == 1 else {
            throw ValidationError("video: --frame-buffer-size above 1 is not supported in file mode yet")
        }
        let stream = try options.stream(defaultIndices: [32, 45], parameters: parameters)
        let backend = stream.backend
        let writer = try VideoWriter(url: URL(fileURLWithPath: output), width: options.width, height: options.height, frameRate: rate)
        let latency = stream.parameters.useDenoisingBatch ? stream.schedule.steps - 1 : 0
        let total = reader.info.frameCount
        let start = Date()
        var frames = 0, last: Tensor?
        func emit(_ result: Tensor) throws {
            try writer.write(imageFrom(result, backend: backend))
            let elapsed = Date().timeIntervalSince(start), fps = Double(writer.framesWritten) / max(elapsed, 1e-9)
            let eta = total.map { String(format: ", ETA %.0f s", Double($0 - writer.framesWritten) / max(fps, 1e-9)) } ?? ""
            FileHandle.standardError.write(Data(String(format: "\r%d/%@ frames, %.2f frames/s%@   ", writer.framesWritten,
                                                       total.map(String.init) ?? "?", fps, eta).utf8))
        }
        while let image = try reader.nextFrame() {
            let frame = try backend.tensor(image.floats(), shape: [1, options.height, options.width, 3])
            last = frame
            let result = try stream.img2img(frame)
            frames += 1
            if frames > latency { try emit(result) }
        }
        // Flush the stream: the last frames are still inside it.
        if let last { for _ in 0..<min(latency, frames) { try emit(try stream.img2img(last)) } }
        try writer.finish()
        let seconds = Date().timeIntervalSince(start)
        FileHandle.standardError.write(Data("\n".utf8))
        print("wrote \(writer.framesWritten) frames to \(output): " + String(format: "%.2f frames/s", Double(frames) / max(seconds, 1e-9))
              + String(format: ", %.0f%% skipped by the similarity filter", frames == 0 ? 0 : 100 * Double(stream.skippedFrames) / Double(frames)))
    }
}
