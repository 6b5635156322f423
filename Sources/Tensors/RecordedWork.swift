/// Work recorded once and run again: on a GPU, a command buffer submitted every frame without
/// re-recording its ops on the host.
public protocol RecordedWork: AnyObject, Sendable {
    /// Runs the recorded ops again, on the values the tensors they read hold now, after every op
    /// issued before; the tensors the recording returned then hold the new results.
    func run() throws
}

/// A backend that can record a block of ops for replay (the Vulkan backend). The stream records
/// its fixed per-frame UNet call once and replays it.
public protocol RecordingBackend: Backend {
    /// Records the ops `body` issues without running them. `body` must not read results back to
    /// the host; shapes and scalars are fixed at recording.
    func record<T>(_ body: () throws -> T) throws -> (work: any RecordedWork, result: T)
    /// Copies `source` into the existing tensor `destination` (same shape): a recording's input.
    func copy(_ source: Tensor, into destination: Tensor) throws
}
