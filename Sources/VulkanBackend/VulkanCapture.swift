import Foundation
import Tensors

/// What a capture in progress collects: its buffer arena and the tensors from before it that its
/// commands read (weights, inputs), kept alive for its replays.
final class CaptureState {
    let arena: BufferArena
    private var retained: [ObjectIdentifier: VulkanBuffer] = [:]
    init(arena: BufferArena) { self.arena = arena }

    func retain(_ buffer: VulkanBuffer) { retained[ObjectIdentifier(buffer)] = buffer }
    var retainedCount: Int { retained.count }
}

/// Work recorded once into a command buffer and submitted again on every `run()`: the stream's
/// fixed per-frame work without re-recording it (no op dispatch, descriptor writes or allocation
/// on the host). A replay reads the tensors made before the capture as they are when it runs —
/// write new inputs into them with `VulkanBackend.write(_:into:)` — and rewrites, in place, the
/// tensors the capture returned. Shapes, scalars and uploaded constants are those of the capture.
public final class VulkanReplay: @unchecked Sendable {
    let backend: VulkanBackend
    let recording: Recording
    let state: CaptureState

    init(backend: VulkanBackend, recording: Recording, state: CaptureState) {
        (self.backend, self.recording, self.state) = (backend, recording, state)
    }

    /// Commands (dispatches and copies) the replay submits.
    public var commandCount: Int { recording.commands }

    /// Runs the recorded work after everything issued before it, and waits for it.
    public func run() throws { try backend.lock.withLock { try backend.stream.replay(recording) } }

    deinit { backend.lock.withLock { backend.stream.release(recording) } }
}

extension VulkanBackend {
    /// Records the ops `body` issues into a replayable command buffer instead of running them; the
    /// returned tensors hold the results once the replay has run. `body` must not read results
    /// (`floats`) or wait; while it runs, other threads' ops on this backend wait.
    public func capture<T>(_ body: () throws -> T) throws -> (replay: VulkanReplay, result: T) {
        try lock.withLock {
            guard captureState == nil else { throw VulkanError.captureMisuse("a capture inside a capture") }
            try stream.beginCapture()
            let state = CaptureState(arena: BufferArena(pool: pool))
            captureState = state
            let result: T
            do { result = try body() } catch {
                captureState = nil
                if let recording = try? stream.endCapture() { stream.release(recording) }
                throw error
            }
            captureState = nil
            let recording = try stream.endCapture()
            return (VulkanReplay(backend: self, recording: recording, state: state), result)
        }
    }

    /// Overwrites a tensor's elements (a replay's input), in order with the other work.
    public func write(_ values: [Float], into tensor: Tensor) throws {
        guard values.count == tensor.count else {
            throw TensorError.shapeMismatch(op: "write", expected: tensor.shape, actual: [values.count])
        }
        try lock.withLock {
            let target = try bound(tensor, "write")
            try values.withUnsafeBytes { try stream.upload($0, to: target.buffer, at: tensor.byteOffset) }
        }
    }

    /// Copies `source` into the existing tensor `destination` (same shape), in order with other work.
    public func copy(_ source: Tensor, into destination: Tensor) throws {
        guard source.shape == destination.shape else {
            throw TensorError.shapeMismatch(op: "copy", expected: destination.shape, actual: source.shape)
        }
        try lock.withLock {
            let (s, d) = (try bound(source, "copy"), try bound(destination, "copy"))
            try stream.copy(from: s.buffer, at: source.byteOffset, to: d.buffer, at: destination.byteOffset, bytes: source.byteCount)
        }
    }
}

extension VulkanReplay: RecordedWork {}

extension VulkanBackend: RecordingBackend {
    public func record<T>(_ body: () throws -> T) throws -> (work: any RecordedWork, result: T) {
        let (replay, result) = try capture(body)
        return (replay, result)
    }
}
