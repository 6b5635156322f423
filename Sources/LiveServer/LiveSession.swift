import Dispatch
import Foundation
import Media
import StreamDiffusion

/// A frame as NHWC values in [−1, 1]: what pre-processing makes of a decoded picture, and what
/// the model's output is until post-processing quantises it back to RGB.
struct FramePixels: Sendable {
    let values: [Float]
    let width: Int, height: Int

    /// Pre-processing: RGB bytes to [−1, 1].
    init(_ image: RGBImage) {
        (values, width, height) = (image.floats(), image.width, image.height)
    }

    init(values: [Float], width: Int, height: Int) {
        (self.values, self.width, self.height) = (values, width, height)
    }

    /// Post-processing: clamped and rounded back to RGB bytes.
    func image() throws -> RGBImage { try RGBImage(floats: values, width: width, height: height) }
}

/// An input frame, already decoded, resized to the stream's size and pre-processed (in the
/// client's receive task, so the model's thread only uploads it).
struct InputFrame: Sendable {
    /// The client's count of binary messages, from 1.
    let sequence: Int
    let pixels: FramePixels
    let arrival: UInt64
}

/// A generated frame on its way to the client's socket, still as the model's values:
/// post-processing and JPEG encoding happen in the socket's task, off the model's thread.
struct OutputFrame: Sendable {
    let pixels: FramePixels
    /// The input it comes from (nil for txt2img and for warm-up outputs of a multi-step stream).
    let input: Int?
    let arrival: UInt64
}

/// One WebSocket client. The network tasks fill its pending slot and read its outboxes; the
/// inference worker takes from the slot and owns `stream`. Scheduling fields are guarded by the
/// worker's lock, statistics by the session's own.
final class LiveSession: @unchecked Sendable {
    let id: Int

    // Guarded by the worker's lock.
    /// Depth 1: a newer frame replaces an older one the model has not taken (latest frame wins).
    var pendingFrame: InputFrame?
    /// Settings the worker has not applied yet (the newest wins, as for frames).
    var pendingSettings: LiveSettings?
    var mode: LiveSettings.Mode
    /// Outputs yielded to the outbox and not yet written to the socket (txt2img waits for zero).
    var undelivered = 0
    var closed = false

    // Owned by the worker thread.
    var stream: StreamPipeline?
    var streamSettings: LiveSettings?
    /// Inputs inside a multi-step stream, oldest first: the output of a call comes from the oldest.
    var inputsInStream: [InputFrame] = []

    /// Outputs, newest only: a slow socket never queues frames (latest frame wins).
    let outputs: AsyncStream<OutputFrame>
    let outputSink: AsyncStream<OutputFrame>.Continuation
    /// Errors for the client; a few are kept, older ones are dropped under a flood.
    let notices: AsyncStream<LiveError>
    let noticeSink: AsyncStream<LiveError>.Continuation

    private let lock = NSLock()
    private var stats = Stats()
    struct Stats { var framesIn = 0, framesOut = 0, skipped = 0, dropped = 0; var outputTimes: [UInt64] = [] }

    /// The settings the client started with (the stream is built with them until it sends others).
    let initialSettings: LiveSettings

    init(id: Int, settings: LiveSettings) {
        (self.id, initialSettings) = (id, settings)
        mode = settings.mode
        (outputs, outputSink) = AsyncStream.makeStream(of: OutputFrame.self, bufferingPolicy: .bufferingNewest(1))
        (notices, noticeSink) = AsyncStream.makeStream(of: LiveError.self, bufferingPolicy: .bufferingNewest(8))
    }

    func count(_ update: (inout Stats) -> Void) {
        lock.lock(); defer { lock.unlock() }
        update(&stats)
    }

    /// The counters, and outputs per second over the last two seconds.
    func snapshot(now: UInt64) -> (Stats, fps: Double) {
        lock.lock(); defer { lock.unlock() }
        let window: UInt64 = 2_000_000_000
        stats.outputTimes.removeAll { now &- $0 > window }
        return (stats, Double(stats.outputTimes.count) / 2)
    }

    func finish() {
        outputSink.finish()
        noticeSink.finish()
    }
}

extension DispatchTime {
    static var nowNanoseconds: UInt64 { DispatchTime.now().uptimeNanoseconds }
}
