import Foundation
import Logging
import StreamDiffusion

/// The one thread that runs the model. Clients take turns (round robin over sessions with work),
/// each turn one frame: a client streaming fast cannot starve a slow one. Compute happens on a
/// dedicated thread, never on Swift concurrency's small cooperative pool, which serves the sockets.
final class InferenceWorker: @unchecked Sendable {
    let engine: LiveEngine
    let metrics: LiveMetrics
    let logger: Logger
    /// Test seam: runs before each job, on the worker thread (simulates a slow model).
    var beforeJob: (@Sendable () -> Void)?

    private let condition = NSCondition()
    private var sessions: [LiveSession] = []
    private var nextIndex = 0
    private var stopped = false
    private var running: Thread?

    init(engine: LiveEngine, metrics: LiveMetrics, logger: Logger) {
        (self.engine, self.metrics, self.logger) = (engine, metrics, logger)
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

    fileprivate enum Job { case frame(InputFrame), generate }

    /// The next session with work after the last one served, and its job (taken from its slot).
    private func takeJob() -> (LiveSession, Job, LiveSettings?)? {
        guard !sessions.isEmpty else { return nil }
        for offset in 0..<sessions.count {
            let index = (nextIndex + offset) % sessions.count
            let session = sessions[index]
            var job: Job?
            if let frame = session.pendingFrame, session.mode == .img2img {
                job = .frame(frame)
                session.pendingFrame = nil
            } else if session.mode == .txt2img, session.undelivered == 0 {
                job = .generate
            } else if session.pendingSettings != nil {
                job = nil   // settings alone are applied with the next frame
            }
            guard let job else { continue }
            nextIndex = index + 1
            let settings = session.pendingSettings
            session.pendingSettings = nil
            if case .generate = job { session.undelivered += 1 }
            return (session, job, settings)
        }
        return nil
    }

    private func loop() {
        while true {
            condition.lock()
            var next: (LiveSession, Job, LiveSettings?)?
            while !stopped {
                next = takeJob()
                if next != nil { break }
                condition.wait()
            }
            condition.unlock()
            guard let (session, job, settings) = next else { return }
            beforeJob?()
            run(job, settings: settings, for: session)
        }
    }

    private func run(_ job: Job, settings: LiveSettings?, for session: LiveSession) {
        do {
            let stream = try prepareStream(for: session, settings: settings)
            let output: OutputFrame
            switch job {
            case let .frame(frame):
                let skippedBefore = stream.skippedFrames
                let result = try engine.image(stream.img2img(engine.tensor(frame.image)))
                if stream.skippedFrames > skippedBefore {
                    session.count { $0.skipped += 1 }
                    metrics.record { $0.framesSkipped += 1 }
                    output = OutputFrame(image: result, input: frame.sequence, arrival: frame.arrival)
                } else {
                    // A stream of S steps returns the frame that entered S − 1 calls ago.
                    session.inputsInStream.append(frame)
                    let source = session.inputsInStream.count >= stream.schedule.steps
                        ? session.inputsInStream.removeFirst() : nil
                    output = OutputFrame(image: result, input: source?.sequence, arrival: source?.arrival ?? frame.arrival)
                }
            case .generate:
                output = OutputFrame(image: try engine.image(stream.txt2img()), input: nil,
                                     arrival: DispatchTime.nowNanoseconds)
            }
            deliver(output, to: session, counted: job.isFrame)
        } catch {
            if !job.isFrame { locked { session.undelivered = max(0, session.undelivered - 1) } }
            metrics.error("model_error")
            session.noticeSink.yield(.model("\(error)"))
            logger.warning("client \(session.id): \(error)")
        }
    }

    /// The session's stream for `settings`: a prompt change swaps the prompt embedding; any other
    /// change builds a new stream (new noise, schedule and buffers) on the same loaded model.
    private func prepareStream(for session: LiveSession, settings: LiveSettings?) throws -> StreamPipeline {
        let wanted = settings ?? session.streamSettings ?? session.initialSettings
        if let stream = session.stream, let current = session.streamSettings, current.streamKey == wanted.streamKey {
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

private extension InferenceWorker.Job {
    var isFrame: Bool { if case .frame = self { true } else { false } }
}
