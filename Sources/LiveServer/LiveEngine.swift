import Foundation
import Media
import Models
import StreamDiffusion
import Tensors

/// The loaded model a server streams with. It builds one `StreamPipeline` per client from the
/// client's settings; all of them share the model's weights. Used only by the inference worker's
/// thread (the backend and the pipelines are not thread-safe).
public final class LiveEngine: @unchecked Sendable {
    public let model: StableDiffusionModel
    public let scheduler: LCMScheduler
    public let backend: any Backend
    /// Size, `cfgType`, schedule length and stream-batch mode; the rest comes from each client.
    public let base: StreamParameters
    /// Shown to clients (the model folder's name).
    public let name: String

    public init(model: StableDiffusionModel, scheduler: LCMScheduler, base: StreamParameters, backend: any Backend) {
        (self.model, self.scheduler, self.base, self.backend) = (model, scheduler, base, backend)
        name = model.folder.root.lastPathComponent
    }

    /// The settings a new client starts with: the server's defaults at this model's schedule.
    public func defaultSettings(prompt: String? = nil) -> LiveSettings {
        var s = LiveSettings()
        if let prompt { s.prompt = prompt }
        (s.tIndexList, s.guidanceScale, s.delta, s.seed) = (base.tIndexList, base.guidanceScale, base.delta, base.seed)
        return s
    }

    func makeStream(_ settings: LiveSettings) throws -> StreamPipeline {
        var p = base
        (p.tIndexList, p.guidanceScale, p.delta, p.seed) = (settings.tIndexList, settings.guidanceScale, settings.delta, settings.seed)
        p.enableSimilarImageFilter = settings.similarityFilter
        p.similarImageFilterThreshold = settings.similarityThreshold
        if settings.mode == .txt2img {
            // Generation starts from pure noise (index 0), without guidance: RCFG's virtual negative
            // is an input's noise, and strength means nothing without an input.
            (p.tIndexList, p.cfgType, p.enableSimilarImageFilter) = ([0], .none, false)
        }
        let stream = try StreamPipeline(model: model, scheduler: scheduler, parameters: p, backend: backend)
        try stream.prepare(prompt: settings.prompt, negativePrompt: settings.negativePrompt)
        return stream
    }

    /// A pre-processed frame as the NHWC [1, h, w, 3] tensor the stream takes (the upload).
    func tensor(_ pixels: FramePixels) throws -> Tensor {
        try backend.tensor(pixels.values, shape: [1, pixels.height, pixels.width, 3])
    }

    /// The stream's output [1, h, w, 3] as values for post-processing (the download).
    func pixels(_ tensor: Tensor) throws -> FramePixels {
        FramePixels(values: try backend.floats(tensor), width: tensor.shape[2], height: tensor.shape[1])
    }
}
