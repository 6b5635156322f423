import Tensors

/// One call of fixed shape recorded once on a `RecordingBackend` and replayed every frame: the
/// tensor its input is copied into, its output, and what it was recorded for (the input's shape
/// and any scalars the recording baked in, e.g. a UNet call's timesteps).
struct ReplayedCall {
    private var recorded: (work: any RecordedWork, input: Tensor, output: Tensor, shape: [Int], key: [Float])?
    /// Calls answered by a replay instead of issuing the ops again.
    private(set) var replays = 0

    /// Forgets the recording (the next call records again), e.g. after a prompt change.
    mutating func reset() { (recorded, replays) = (nil, 0) }

    /// `body(input)` on `backend`: replayed when recorded for this shape and key, else recorded (then
    /// run), or simply run on a backend that cannot record. The result of a replay is the recording's
    /// own output tensor, overwritten by the next replay: copy it if it must outlive the next call.
    mutating func callAsFunction(_ input: Tensor, key: [Float] = [], on backend: any Backend,
                                 _ body: (Tensor) throws -> Tensor) throws -> Tensor {
        guard let recorder = backend as? any RecordingBackend else { return try body(input) }
        if let recorded, recorded.shape == input.shape, recorded.key == key {
            try recorder.copy(input, into: recorded.input)
            try recorded.work.run()
            replays += 1
            return recorded.output
        }
        // The recording reads its own input tensor, which later frames overwrite in place.
        let own = try backend.convert(input, to: input.dtype)
        let (work, output) = try recorder.record { try body(own) }
        try work.run()
        recorded = (work, own, output, input.shape, key)
        return output
    }
}

extension StreamBatch {
    /// Whether this stream records its UNet call once and replays it (a `RecordingBackend`, e.g.
    /// Vulkan: one command buffer resubmitted per frame, no per-op work on the host).
    public var replaysUNet: Bool { backend is any RecordingBackend && recordingEnabled }

    /// UNet calls answered by a replay so far (since the last prompt change).
    public var replayedUNetCalls: Int { recordedUNet.replays }

    /// The stream's UNet call: replayed when recorded for the same input shape and timesteps,
    /// recorded (then run) on the first call, or run op by op on other backends. Its output is
    /// consumed within the call (`finish`), so the replay's overwriting it later is safe.
    func predict(_ step: PendingStep) throws -> Tensor {
        guard recordingEnabled else { return try predictor(step.input, timesteps: step.timesteps, context: step.context) }
        return try recordedUNet(step.input, key: step.timesteps, on: backend) { input in
            try predictor(input, timesteps: step.timesteps, context: step.context)
        }
    }
}
