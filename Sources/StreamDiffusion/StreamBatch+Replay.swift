import Tensors

/// A recorded UNet call: the tensor its input is copied into each frame, its output, and what it
/// was recorded for (the same rows, timesteps and prompt every frame of a steady stream).
struct RecordedUNetCall {
    let work: any RecordedWork
    let input: Tensor
    let output: Tensor
    let timesteps: [Float]
    /// Calls answered by a replay instead of issuing the UNet's ops again.
    var replays = 0
}

extension StreamBatch {
    /// Whether this stream records its UNet call once and replays it (a `RecordingBackend`, e.g.
    /// Vulkan: one command buffer resubmitted per frame, no per-op work on the host).
    public var replaysUNet: Bool { backend is any RecordingBackend && recordingEnabled }

    /// UNet calls answered by a replay so far (since the last prompt change).
    public var replayedUNetCalls: Int { recordedUNet?.replays ?? 0 }

    /// The stream's UNet call: replayed when recorded for the same input shape and timesteps,
    /// recorded (then run) on the first call, or run op by op on other backends.
    func predict(_ step: PendingStep) throws -> Tensor {
        guard recordingEnabled, let recorder = backend as? any RecordingBackend else {
            return try predictor(step.input, timesteps: step.timesteps, context: step.context)
        }
        if var recorded = recordedUNet, recorded.input.shape == step.input.shape, recorded.timesteps == step.timesteps {
            try recorder.copy(step.input, into: recorded.input)
            try recorded.work.run()
            recorded.replays += 1
            recordedUNet = recorded
            return recorded.output
        }
        // The recording reads its own input tensor, which later frames overwrite in place.
        let input = try backend.convert(step.input, to: step.input.dtype)
        let (work, output) = try recorder.record {
            try predictor(input, timesteps: step.timesteps, context: step.context)
        }
        try work.run()
        recordedUNet = RecordedUNetCall(work: work, input: input, output: output, timesteps: step.timesteps)
        return output
    }
}
