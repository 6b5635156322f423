import Foundation
import Media
import ModelFiles
import Models
import StreamDiffusion
import Tensors
import VulkanBackend

/// The seeds' simple interface, as a thin facade over `StreamPipeline` (no second implementation):
///
/// ```swift
/// let pipe = try StreamDiffusionPipeline(modelID: "stabilityai/sd-turbo", denoisingSteps: 1,
///                                        useStreamBatch: true, useRCFG: true, useSSF: true)
/// for prompt in ["a cat", "a dog", "a bird"] { let image = try pipe(prompt: prompt) }
/// let styled = try pipe.img2img(frame, prompt: "anime style")     // frame: any size, RGB
/// ```
///
/// `modelID` is resolved like `--model` (a folder or a cached hub id); nil takes sd-turbo from the
/// cache, else the bundled demo model, printing which in one line. Text-to-image and image-to-image
/// each get their own stream (their schedules differ) on the same weights. Not thread-safe: use one
/// pipeline from one thread at a time.
public final class StreamDiffusionPipeline {
    public let model: StableDiffusionModel
    public let backend: any Backend
    /// The parameters both streams share; `tIndexList` is chosen per mode (see `indices`).
    public let parameters: StreamParameters
    let scheduler: LCMScheduler
    let denoisingSteps: Int
    private var textStream: StreamPipeline?
    private var imageStream: StreamPipeline?

    /// - Parameters:
    ///   - denoisingSteps: LCM steps per picture (1–50), spread over the 50-step schedule.
    ///   - useStreamBatch: every step of successive frames in one UNet call (else one call per step).
    ///   - useRCFG: residual CFG "self" at guidance 1.2 on img2img (else no guidance; txt2img never
    ///     guides, as in the official wrapper).
    ///   - useSSF: the stochastic similarity filter on img2img input (threshold 0.98).
    ///   - width, height: default the model's native size.
    ///   - backend: where it runs; nil picks like the CLI: Vulkan when a Vulkan GPU is present, else
    ///     the CPU with `threads` threads.
    public init(modelID: String? = nil, denoisingSteps: Int = 1, useStreamBatch: Bool = true, useRCFG: Bool = true,
                useSSF: Bool = true, width: Int? = nil, height: Int? = nil, seed: UInt64 = 2, threads: Int? = nil,
                backend: (any Backend)? = nil) throws {
        guard (1...50).contains(denoisingSteps) else {
            throw StreamDiffusionPipelineError.invalidArgument("denoisingSteps must be 1...50, got \(denoisingSteps)")
        }
        if let backend {
            self.backend = backend
        } else {
            self.backend = VulkanBackend.gpuAvailable ? try VulkanBackend(options: .init()) : try CPUBackend(threads: threads)
        }
        model = try StableDiffusionModel.load(DefaultModel.argument(modelID), backend: self.backend)
        scheduler = try LCMScheduler(contentsOf: model.folder.configURL("scheduler"))
        var p = StreamParameters()
        (p.width, p.height, p.seed) = (width ?? model.nativeSize, height ?? model.nativeSize, seed)
        guard p.width > 0, p.height > 0, p.width % 8 == 0, p.height % 8 == 0 else {
            throw StreamDiffusionPipelineError.invalidArgument("width and height must be positive multiples of 8, got \(p.width)×\(p.height)")
        }
        p.useDenoisingBatch = useStreamBatch
        p.cfgType = useRCFG ? .self : .none
        p.enableSimilarImageFilter = useSSF
        parameters = p
        self.denoisingSteps = denoisingSteps
    }

    private func stream(_ existing: inout StreamPipeline?, first: Int, prompt: String) throws -> StreamPipeline {
        if let stream = existing {
            try stream.updatePrompt(prompt)
            return stream
        }
        var p = parameters
        // txt2img from pure noise (index 0), img2img from index 32, keeping the input's layout as
        // the official img2img demo does.
        p.tIndexList = StreamParameters.spreadIndices(denoisingSteps, from: first)
        if first == 0 {
            // No input frames to compare, and no input noise for RCFG's virtual negative: the
            // official wrapper also runs txt2img without guidance.
            (p.enableSimilarImageFilter, p.cfgType) = (false, .none)
        }
        let stream = try StreamPipeline(model: model, scheduler: scheduler, parameters: p, backend: backend)
        try stream.prepare(prompt: prompt)
        existing = stream
        return stream
    }

    /// One picture for `prompt` (a prompt change is an embedding swap). With stream batch, the
    /// stream's S − 1 calls of latency are run here, so the picture belongs to this prompt.
    public func callAsFunction(prompt: String) throws -> RGBImage {
        let stream = try stream(&textStream, first: 0, prompt: prompt)
        var latent = try stream.txt2img()
        for _ in 0..<stream.latency { latent = try stream.txt2img() }
        return try image(latent)
    }

    /// The next frame of the live stream: `frame` (any size; scaled and centre-cropped to the
    /// pipeline's) restyled by `prompt`. With stream batch and S steps the output answers the frame
    /// given S − 1 calls earlier, as in the paper; a frame the similarity filter skips returns the
    /// previous output.
    public func img2img(_ frame: RGBImage, prompt: String) throws -> RGBImage {
        let stream = try stream(&imageStream, first: 32, prompt: prompt)
        let input = try frame.width == parameters.width && frame.height == parameters.height
            ? frame : frame.resizedToFill(width: parameters.width, height: parameters.height)
        return try image(stream.img2img(backend.tensor(input.floats(), shape: [1, input.height, input.width, 3])))
    }

    private func image(_ tensor: Tensor) throws -> RGBImage {
        try RGBImage(floats: backend.floats(tensor), width: tensor.shape[2], height: tensor.shape[1])
    }
}

public enum StreamDiffusionPipelineError: Error, CustomStringConvertible {
    case invalidArgument(String)
    public var description: String {
        switch self {
        case let .invalidArgument(text): return text
        }
    }
}
