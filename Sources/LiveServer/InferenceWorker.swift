import Foundation
import Logging
import Media
import StreamDiffusion

/// The one thread that runs the model. Clients take turns (round robin over sessions with work),
/// each turn one frame: a client streaming fast cannot starve a slow one. Compute happens on a
/// dedicated thread, never on Swift concurrency's small cooperative pool, which serves the sockets.
final class InferenceWorker: @unchecked Sendable {
    let engine: LiveEngine
    let metrics: LiveMetrics
    let logger: Logger
    /// Serve clients with frames waiting in one UNet call (`StreamPipeline.img2img(_:)` over their
    /// streams) rather than one call each.
    let batchClients: Bool
    /// Test seam: runs before each model call, on the worker thread (simulates a slow model).
    var beforeCall: (@Sendable () -> Void)?

    private let condition = NSCondition()
    private var sessions: [LiveSession] = []
    private var nextIndex = 0
    private var stopped = false
    private var running: Thread?
    /// Model calls taken so far (for tests).
    private var calls = 0
    var modelCalls: Int { locked { calls } }

    init(engine: LiveEngine, metrics: LiveMetrics, logger: Logger, batchClients: Bool) {
        (self.engine, self.metrics, self.logger, self.batchClients) = (engine, metrics, logger, batchClients)
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "streamdiffusion-inference"
        thread.stackSize = 8 << 20
        running = thread
        thread.start()
    }

    func stop() {
        locked { stopped = true }
    }

    var sessionCount: Int { locked { sessions.count } }

    func add(_ session: LiveSession) { locked { sessions.append(session) } }

    /// Forgets the client: a frame it left pending is dropped, and the worker discards what it is
    /// computing for it now. Its stream state is freed with the session.
    func remove(_ session: LiveSession) {
        locked {
            session.closed = true
            session.pendingFrame = nil
            sessions.removeAll { $0 === session }
        }
        session.finish()
    }

    /// Latest frame wins: a frame still pending is replaced and counted as dropped.
    func submit(_ frame: InputFrame, for session: LiveSession) {
        let replaced = locked { () -> Bool in
            defer { session.pendingFrame = frame }
            return session.pendingFrame != nil
        }
        if replaced {
            session.count { $0.dropped += 1 }
            metrics.record { $0.framesDropped += 1 }
        }
    }

    func update(_ settings: LiveSettings, for session: LiveSession) {
        locked {
            session.pendingSettings = settings
            session.mode = settings.mode
            if settings.mode == .txt2img { session.pendingFrame = nil }
        }
    }

    /// The socket has written an output: txt2img may generate the next one.
    func delivered(_ session: LiveSession) {
        locked { session.undelivered = max(0, session.undelivered - 1) }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        return try body()
    }

    /// One session's share of a model call: its frame (nil: a txt2img generation) and the settings
    /// it sent since its last turn.
    private struct Work {
        let session: LiveSession
        let frame: InputFrame?
        let settings: LiveSettings?
    }

    /// The next work, round robin from the session after the last one served. With `batchClients`,
    /// every other session with an img2img frame waiting joins the first one's UNet call.
    private func takeWork() -> [Work] {
        var batch: [Work] = []
        let start = nextIndex
        for offset in 0..<sessions.count {
            let index = (start + offset) % sessions.count
            let session = sessions[index]
            let frame = session.mode == .img2img ? session.pendingFrame : nil
            let generate = session.mode == .txt2img && session.undelivered == 0
            guard frame != nil || generate else { continue }   // settings alone wait for the next frame
            if let first = batch.first, !(batchClients && first.frame != nil && frame != nil) { continue }
            if batch.isEmpty { nextIndex = index + 1 }
            session.pendingFrame = nil
            if generate { session.undelivered += 1 }
            batch.append(Work(session: session, frame: frame, settings: session.pendingSettings))
            session.pendingSettings = nil
        }
        return batch
    }

    private func loop() {
        while true {
            condition.lock()
            var batch: [Work] = []
            while !stopped {
                batch = takeWork()
                if !batch.isEmpty { calls += 1; break }
                condition.wait()
            }
            condition.unlock()
            guard !batch.isEmpty else { return }
            beforeCall?()
            run(batch)
        }
    }

    private func run(_ batch: [Work]) {
        var ready: [(work: Work, stream: StreamPipeline, frame: InputFrame?)] = []
        for work in batch {
            do {
                ready.append((work, try prepareStream(for: work.session, settings: work.settings), work.frame))
            } catch {
                fail(work, error)
            }
        }
        guard let first = ready.first else { return }
        do {
            let frames = ready.compactMap(\.frame)
            guard frames.count == ready.count else {   // txt2img: one session at a time
                let pixels = try engine.pixels(first.stream.txt2img())
                deliver(OutputFrame(pixels: pixels, input: nil, arrival: DispatchTime.nowNanoseconds), to: first.work.session, counted: false)
                return
            }
            let skippedBefore = ready.map(\.stream.skippedFrames)
            let inputs = try frames.map { try engine.tensor($0.pixels) }
            let results = try StreamPipeline.img2img(zip(ready, inputs).map { ($0.stream, $1) })
            for (k, (item, frame)) in zip(ready, frames).enumerated() {
                let output = try self.output(engine.pixels(results[k]), for: frame, of: item.work.session,
                                             skipped: item.stream.skippedFrames > skippedBefore[k], steps: item.stream.schedule.steps)
                deliver(output, to: item.work.session, counted: true)
            }
        } catch {
            ready.forEach { fail($0.work, error) }
        }
    }

    /// The output for an input frame: a skipped frame is answered at once; otherwise a stream of S
    /// steps returns the frame that entered S − 1 calls ago (nil while it fills with noise).
    private func output(_ pixels: FramePixels, for frame: InputFrame, of session: LiveSession, skipped: Bool, steps: Int) -> OutputFrame {
        if skipped {
            session.count { $0.skipped += 1 }
            metrics.record { $0.framesSkipped += 1 }
            return OutputFrame(pixels: pixels, input: frame.sequence, arrival: frame.arrival)
        }
        session.inputsInStream.append(frame)
        let source = session.inputsInStream.count >= steps ? session.inputsInStream.removeFirst() : nil
        return OutputFrame(pixels: pixels, input: source?.sequence, arrival: source?.arrival ?? frame.arrival)
    }

    private func fail(_ work: Work, _ error: any Error) {
        if work.frame == nil { locked { work.session.undelivered = max(0, work.session.undelivered - 1) } }
        metrics.error("model_error")
        work.session.noticeSink.yield(.model("\(error)"))
        logger.warning("client \(work.session.id): \(error)")
    }

    /// The session's stream for `settings`: a prompt change swaps the prompt embedding; any other
    /// change builds a new stream (new noise, schedule and buffers) on the same loaded model.
    private func prepareStream(for session: LiveSession, settings: LiveSettings?) throws -> StreamPipeline {
        let wanted = settings ?? session.streamSettings ?? session.initialSettings
        if let stream = session.stream, let current = session.streamSettings, current.sharesStream(with: wanted) {
            try stream.updatePrompt(wanted.prompt)
            session.streamSettings = wanted
            return stream
        }
        session.stream = nil
        session.inputsInStream = []
        let stream = try engine.makeStream(wanted)
        (session.stream, session.streamSettings) = (stream, wanted)
        return stream
    }

    private func deliver(_ output: OutputFrame, to session: LiveSession, counted: Bool) {
        let accepted = locked { () -> Bool in
            guard !session.closed else { return false }
            if counted { session.undelivered += 1 }
            return true
        }
        guard accepted else { return }
        if case .dropped = session.outputSink.yield(output) {
            // The socket had not taken the previous output: it is replaced (latest frame wins).
            locked { session.undelivered = max(0, session.undelivered - 1) }
            session.count { $0.dropped += 1 }
            metrics.record { $0.framesDropped += 1 }
        }
    }
}
