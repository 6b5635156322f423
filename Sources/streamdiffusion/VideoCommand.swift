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
        at the end. Frames are scaled to --width × --height. Decoding and pre-processing run ahead \
        of the model on their own thread, post-processing and encoding behind it on another, joined \
        by queues of --io-queue-depth frames (the paper's input-output queue); 0 runs everything \
        on one thread.
        """
    )

    @OptionGroup var options: StreamOptions

    @Option(help: "Input video (anything ffmpeg reads: mp4, mov, webm, …).")
    var input: String

    @Option(help: "Output video (.mp4, .mov, .mkv or .webm).")
    var output: String

    @Option(help: "Similarity filter threshold η (enables the filter; 0.99 is recommended, see docs/FINDINGS.md: the official 0.98 judders slow pans).")
    var similarFilterThreshold: Double?

    @Option(help: "Force a real frame after this many skips.")
    var similarFilterMaxSkip = 10

    @Option(help: "Frames entering the stream per call.")
    var frameBufferSize = 1

    @Flag(help: "Do not re-noise frames between steps.")
    var noAddNoise = false

    @Option(help: "Frames each input-output queue holds: decoding and encoding overlap the model (0: one thread, serial).")
    var ioQueueDepth = 4

    func run() throws {
        guard frameBufferSize >= 1 else { throw ValidationError("--frame-buffer-size must be ≥ 1") }
        guard (0...256).contains(ioQueueDepth) else { throw ValidationError("--io-queue-depth must be 0...256") }
        guard FileManager.default.fileExists(atPath: input) else { throw ValidationError("--input \(input) does not exist") }
        let stream = try options.stream(defaultIndices: [32, 45]) { parameters in
            parameters.doAddNoise = !noAddNoise
            parameters.frameBufferSize = frameBufferSize
            if let similarFilterThreshold {
                parameters.enableSimilarImageFilter = true
                parameters.similarImageFilterThreshold = similarFilterThreshold
                parameters.similarImageFilterMaxSkipFrame = similarFilterMaxSkip
            }
        }
        let (width, height) = (stream.parameters.width, stream.parameters.height)
        let reader = try VideoReader(url: URL(fileURLWithPath: input), size: (width, height))
        defer { reader.close() }
        let rate = reader.info.frameRate ?? 30
        let backend = stream.backend
        let writer = try VideoWriter(url: URL(fileURLWithPath: output), width: width, height: height, frameRate: rate)
        let latency = stream.latency
        let total = reader.info.frameCount
        let start = Date()
        // The paper's input-output queue: decoding and pre-processing (RGB → [−1, 1]) run ahead on
        // one thread, post-processing (back to RGB) and encoding behind on another, joined to the
        // model by bounded queues (a full queue makes its producer wait, so no frame is ever
        // dropped, and order is kept). The backend is used only on this thread: uploads and
        // downloads happen here (a GPU backend is not thread-safe).
        let size = [1, height, width, 3]
        let decoded = PrefetchingSource<[Float]>(name: "video-decode", depth: ioQueueDepth) {
            try reader.nextFrame()?.floats()
        }
        defer { decoded.close() }
        let encoder = BackgroundSink<[Float]>(name: "video-encode", depth: ioQueueDepth) { result in
            try writer.write(RGBImage(floats: result, width: width, height: height))
            let elapsed = Date().timeIntervalSince(start), fps = Double(writer.framesWritten) / max(elapsed, 1e-9)
            let eta = total.map { String(format: ", ETA %.0f s", Double($0 - writer.framesWritten) / max(fps, 1e-9)) } ?? ""
            FileHandle.standardError.write(Data(String(format: "\r%d/%@ frames, %.2f frames/s%@   ", writer.framesWritten,
                                                       total.map(String.init) ?? "?", fps, eta).utf8))
        }
        defer { encoder.cancel() }
        // Frames go in groups of --frame-buffer-size (the last group padded with its last frame);
        // each call returns one group, S − 1 calls late, and the padding is not written.
        let f = frameBufferSize
        var pending: [Tensor] = [], frames = 0, written = 0, calls = 0, last: Tensor?
        // Seconds the model's thread spends on each side: the model with its uploads and downloads;
        // with queues, input/output is only the time it waits for the other stages; serially, it
        // is all of their work.
        var modelTime = StageClock(), inputTime = StageClock(), outputTime = StageClock()
        func call(_ group: [Tensor]) throws {
            let result = try modelTime.measure { try stream.img2img(backend.concatRows(group)) }
            calls += 1
            guard calls > latency else { return }
            for row in 0..<f where written < frames {
                let pixels = try modelTime.measure { try backend.floats(result.slice(batch: row..<(row + 1))) }
                try outputTime.measure { try encoder.send(pixels) }
                written += 1
            }
        }
        while let pixels = try inputTime.measure({ try decoded.next() }) {
            let frame = try modelTime.measure { try backend.tensor(pixels, shape: size) }
            last = frame
            frames += 1
            pending.append(frame)
            if pending.count == f { try call(pending); pending = [] }
        }
        if let last {
            if !pending.isEmpty { try call(pending + Array(repeating: last, count: f - pending.count)) }
            // Flush the stream: the last groups are still inside it.
            while written < frames { try call(Array(repeating: last, count: f)) }
        }
        try outputTime.measure { try encoder.finish() }
        try writer.finish()
        let seconds = Date().timeIntervalSince(start)
        FileHandle.standardError.write(Data("\n".utf8))
        print("wrote \(writer.framesWritten) frames to \(output): " + String(format: "%.2f frames/s", Double(frames) / max(seconds, 1e-9))
              + String(format: ", %.0f%% skipped by the similarity filter", frames == 0 ? 0 : 100 * Double(stream.skippedFrames) / Double(frames)))
        let perFrame = { (clock: StageClock) in 1000 * clock.seconds / Double(max(frames, 1)) }
        let (input, output) = ioQueueDepth > 0 ? ("waiting for input", "waiting for output") : ("decoding", "encoding")
        print(String(format: "model thread per frame: model %.2f ms, %@ %.2f ms, %@ %.2f ms", perFrame(modelTime),
                     input, perFrame(inputTime), output, perFrame(outputTime)))
    }
}

/// Wall time accumulated over the calls it measures.
struct StageClock {
    private(set) var seconds = 0.0

    mutating func measure<T>(_ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }
}
