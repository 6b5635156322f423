import Foundation
import ModelFiles
import Models
import Tensors

/// The official wrapper's parameters, in camelCase (`t_index_list` → `tIndexList`, …).
public struct StreamParameters: Sendable, Equatable {
    public var tIndexList: [Int] = [32, 45]
    public var width = 512, height = 512
    public var frameBufferSize = 1
    /// Stream batch (all steps in one UNet call); false is the official sequential mode.
    public var useDenoisingBatch = true
    public var doAddNoise = true
    public var cfgType: CFGType = .self
    public var guidanceScale: Float = 1.2
    public var delta: Float = 1
    public var numInferenceSteps = 50
    /// Seeds the torch-compatible generator that draws all of `prepare`'s noise (and the KL VAE's
    /// posterior samples). The official wrapper ends up ignoring its seed; here it is honoured.
    public var seed: UInt64 = 2
    public var enableSimilarImageFilter = false
    public var similarImageFilterThreshold = 0.98
    public var similarImageFilterMaxSkipFrame = 10

    public init() {}

    /// `steps` schedule indices spread from `first` to 45 (integer steps, strictly increasing): txt2img
    /// starts from pure noise at 0, img2img part-way in (the official demos use 32).
    public static func spreadIndices(_ steps: Int, from first: Int) -> [Int] {
        if steps <= 1 { return [first] }
        var out: [Int] = []
        for i in (0..<steps).map({ first + (45 - first) * $0 / (steps - 1) }) { out.append(max(i, (out.last ?? -1) + 1)) }
        return out
    }
}

/// The VAE a stream encodes frames with and decodes results with.
public enum StreamVAE: Sendable {
    /// TAESD: latents are the UNet's own (scaling factor 1).
    case tiny(AutoencoderTiny)
    /// The SD VAE: encoding samples the posterior, as the official code does.
    case kl(AutoencoderKL)

    public init(_ vae: StableDiffusionModel.VAE) {
        switch vae {
        case let .kl(kl): self = .kl(kl)
        case let .tiny(tiny): self = .tiny(tiny)
        }
    }

    var scalingFactor: Float {
        switch self {
        case let .tiny(vae): return vae.config.scalingFactor
        case let .kl(vae): return vae.config.scalingFactor
        }
    }
}

/// StreamDiffusion over images and prompts: text encoding, the VAE, the similarity filter and the
/// latent `StreamBatch`, mirroring the official `StreamDiffusion` class (`prepare`, `__call__` for
/// img2img, `txt2img`, `update_prompt`). Images are NHWC tensors in [−1, 1].
public final class StreamPipeline {
    public let parameters: StreamParameters
    public let schedule: StreamSchedule
    /// Calls between a frame entering and its picture coming out: S − 1 with stream batch, else 0.
    public var latency: Int { parameters.useDenoisingBatch ? schedule.steps - 1 : 0 }
    public let backend: any Backend
    let tokenizer: CLIPTokenizer
    let textEncoder: CLIPTextModel
    let unet: UNet2DConditionModel
    let vae: StreamVAE
    var stream: StreamBatch?
    var filter: SimilarImageFilter?
    var random: TorchRandomSource
    var negativeEmbedding: Tensor?
    var lastPrompt: String?
    public private(set) var previousOutput: Tensor?
    /// TAESD's encode and decode recorded once and replayed every frame on a `RecordingBackend`
    /// (with the stream's UNet call, all of a frame's fixed work); false runs them op by op.
    public var recordingEnabled = true {
        didSet {
            stream?.recordingEnabled = recordingEnabled
            if !recordingEnabled { (encodeReplay, decodeReplay) = (ReplayedCall(), ReplayedCall()) }
        }
    }
    var encodeReplay = ReplayedCall(), decodeReplay = ReplayedCall()
    /// VAE calls (encode and decode) answered by a replay since `prepare`.
    public var replayedVAECalls: Int { encodeReplay.replays + decodeReplay.replays }
    /// UNet calls answered by a replay since `prepare` or the last prompt change.
    public var replayedUNetCalls: Int { stream?.replayedUNetCalls ?? 0 }
    /// Frames the similarity filter skipped since `prepare`.
    public private(set) var skippedFrames = 0

    public init(tokenizer: CLIPTokenizer, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, vae: StreamVAE,
                scheduler: LCMScheduler, parameters: StreamParameters, backend: any Backend) throws {
        guard parameters.width > 0, parameters.height > 0, parameters.width % 8 == 0, parameters.height % 8 == 0 else {
            throw StreamError.invalidParameter("width and height must be positive multiples of 8, got \(parameters.width)×\(parameters.height)")
        }
        schedule = try StreamSchedule(scheduler: scheduler, tIndexList: parameters.tIndexList,
                                      numInferenceSteps: parameters.numInferenceSteps)
        (self.tokenizer, self.textEncoder, self.unet, self.vae) = (tokenizer, textEncoder, unet, vae)
        (self.parameters, self.backend) = (parameters, backend)
        random = TorchRandomSource(seed: parameters.seed)
    }

    var latentShape: [Int] { [parameters.height / 8, parameters.width / 8, 4] }

    func embed(_ prompt: String) throws -> Tensor { try textEncoder([tokenizer.encode(prompt)]) }

    /// Draws the stream's fixed noise from a fresh generator seeded with `parameters.seed`, encodes
    /// the prompts and resets the buffers (the official `prepare`).
    public func prepare(prompt: String, negativePrompt: String = "") throws {
        random = TorchRandomSource(seed: parameters.seed)
        let rows = (parameters.useDenoisingBatch ? schedule.steps : 1) * parameters.frameBufferSize
        let noise = try nhwcNoise(rows: rows)
        let stream = try StreamBatch(predictor: unet, schedule: schedule, frames: parameters.frameBufferSize,
                                     cfg: parameters.cfgType, guidanceScale: parameters.guidanceScale,
                                     delta: parameters.delta, addNoise: parameters.doAddNoise,
                                     denoisingBatch: parameters.useDenoisingBatch, initNoise: noise, backend: backend)
        stream.recordingEnabled = recordingEnabled
        (encodeReplay, decodeReplay) = (ReplayedCall(), ReplayedCall())
        negativeEmbedding = stream.guided && (parameters.cfgType == .full || parameters.cfgType == .initialize)
            ? try embed(negativePrompt) : nil
        try stream.setPrompt(positive: embed(prompt), negative: negativeEmbedding)
        self.stream = stream
        lastPrompt = prompt
        filter = parameters.enableSimilarImageFilter
            ? SimilarImageFilter(threshold: parameters.similarImageFilterThreshold,
                                 maxSkipFrames: parameters.similarImageFilterMaxSkipFrame, seed: parameters.seed)
            : nil
        previousOutput = nil
        skippedFrames = 0
    }

    /// Swaps the prompt without touching noise, buffers or the negative prompt (unlike the official
    /// `update_prompt`, `full` and `initialize` keep working). An unchanged prompt costs nothing.
    public func updatePrompt(_ prompt: String) throws {
        guard let stream else { throw StreamError.notPrepared }
        guard prompt != lastPrompt else { return }
        try stream.setPrompt(positive: embed(prompt), negative: negativeEmbedding)
        lastPrompt = prompt
    }

    /// torch.randn(rows, 4, h, w) from the generator, laid out NHWC (torch draws in NCHW order).
    func nhwcNoise(rows: Int) throws -> Tensor {
        let (h, w) = (parameters.height / 8, parameters.width / 8)
        let nchw = random.normal(count: rows * 4 * h * w)
        var nhwc = [Float](repeating: 0, count: nchw.count)
        for n in 0..<rows { for c in 0..<4 { for y in 0..<h { for x in 0..<w {
            nhwc[((n * h + y) * w + x) * 4 + c] = nchw[((n * 4 + c) * h + y) * w + x]
        } } } }
        return try backend.tensor(nhwc, shape: [rows, h, w, 4])
    }

    /// img2img for one input (or `frameBufferSize` inputs stacked in the batch). Returns the decoded
    /// frame that has finished every step — the input from S − 1 calls earlier — as NHWC in about
    /// [−1, 1] (not clamped, like the official tensor output). A frame the similarity filter skips
    /// returns the previous output unchanged and advances nothing.
    public func img2img(_ image: Tensor) throws -> Tensor {
        guard let stream else { throw StreamError.notPrepared }
        if let previous = try skipBySimilarity(image) { return previous }
        let latents = try encode(image)
        return try finish(stream(stream.noised(latents), freshNoise: freshNoise))
    }

    /// img2img on several streams that share one model, with one UNet call for all of them
    /// (`StreamBatch.together`); each result is what the stream's own `img2img` would return. Frames
    /// the similarity filter skips, and sequential-mode streams, run on their own.
    public static func img2img(_ jobs: [(stream: StreamPipeline, image: Tensor)]) throws -> [Tensor] {
        var results = [Tensor?](repeating: nil, count: jobs.count)
        var grouped: [(index: Int, stream: StreamBatch, xT: Tensor)] = []
        for (index, job) in jobs.enumerated() {
            guard let stream = job.stream.stream else { throw StreamError.notPrepared }
            if let previous = try job.stream.skipBySimilarity(job.image) {
                results[index] = previous
            } else if stream.denoisingBatch {
                grouped.append((index, stream, try stream.noised(job.stream.encode(job.image))))
            } else {
                results[index] = try job.stream.img2img(job.image)
            }
        }
        let denoised = try StreamBatch.together(grouped.map { ($0.stream, $0.xT) })
        for (entry, latents) in zip(grouped, denoised) {
            results[entry.index] = try jobs[entry.index].stream.finish(latents)
        }
        return results.compactMap { $0 }
    }

    /// Checks the input's shape and runs the similarity filter: the previous output when the frame
    /// is skipped, nil when it must be processed.
    func skipBySimilarity(_ image: Tensor) throws -> Tensor? {
        let expected = [parameters.frameBufferSize, parameters.height, parameters.width, 3]
        guard image.shape == expected else {
            throw StreamError.badInput("input must be \(expected) (NHWC in [-1, 1]), got \(image.shape)")
        }
        guard var filter else { return nil }
        // The first frame is always processed (there is nothing to return instead).
        let skip = filter.shouldSkip(try backend.floats(image)) && previousOutput != nil
        self.filter = filter
        guard skip, let previousOutput else { return nil }
        skippedFrames += 1
        return previousOutput
    }

    /// txt2img: fresh noise from the seeded generator enters at the first step. With one step and no
    /// guidance this is sd-turbo's path: x0 = (x − β·ε)/α straight from a single UNet call; guidance
    /// asked for goes through the stream, so its extra rows are really run.
    public func txt2img() throws -> Tensor {
        guard let stream else { throw StreamError.notPrepared }
        let noise = try nhwcNoise(rows: parameters.frameBufferSize)
        if schedule.steps == 1, !stream.guided, let context = stream.context {
            let eps = try unet(noise, timesteps: Array(repeating: Float(schedule.timesteps[0]), count: parameters.frameBufferSize),
                               context: context.slice(rows: (context.rows - parameters.frameBufferSize)..<context.rows))
            let x0 = try backend.scale(backend.sub(noise, backend.scale(eps, by: schedule.beta[0], adding: 0)),
                                       by: 1 / schedule.alpha[0], adding: 0)
            return try finish(x0)
        }
        return try finish(stream(noise, freshNoise: freshNoise))
    }

    /// Noise for sequential mode's re-noising between steps, from the seeded generator.
    func freshNoise() throws -> Tensor { try nhwcNoise(rows: parameters.frameBufferSize) }

    func encode(_ image: Tensor) throws -> Tensor {
        switch vae {
        case let .tiny(taesd):
            // Consumed by the stream within this call, so a replay's reusing its output is safe.
            guard recordingEnabled else { return try backend.scale(taesd.encode(image), by: taesd.config.scalingFactor, adding: 0) }
            return try encodeReplay(image, on: backend) { try backend.scale(taesd.encode($0), by: taesd.config.scalingFactor, adding: 0) }
        case let .kl(kl):
            // The official code samples the posterior with the seeded generator, one draw per frame.
            let moments = try kl.encodeMoments(image)
            let sigma = try backend.activationExp(backend.scale(moments.logVariance, by: 0.5, adding: 0))
            let sample = try backend.add(moments.mean, backend.mul(sigma, nhwcNoise(rows: image.shape[0])))
            return try backend.scale(sample, by: kl.config.scalingFactor, adding: 0)
        }
    }

    func finish(_ latents: Tensor) throws -> Tensor {
        let scaled = try backend.scale(latents, by: 1 / vae.scalingFactor, adding: 0)
        let image: Tensor
        switch vae {
        case let .tiny(taesd) where recordingEnabled && backend is any RecordingBackend:
            // The caller keeps the picture (and the similarity filter returns it again), so it
            // is copied out of the recording's output, which the next replay overwrites.
            let replayed = try decodeReplay(scaled, on: backend) { try taesd.decode($0) }
            image = try backend.convert(replayed, to: replayed.dtype)
        case let .tiny(taesd): image = try taesd.decode(scaled)
        case let .kl(kl): image = try kl.decode(scaled)
        }
        previousOutput = image
        return image
    }
}

extension Backend {
    /// eˣ elementwise, on the host (used for the VAE's small posterior: 64 × 64 × 4 at 512²).
    func activationExp(_ x: Tensor) throws -> Tensor {
        try tensor(floats(x).map { Foundation.exp($0) }, shape: x.shape)
    }
}

extension StreamPipeline {
    /// A stream over a loaded model folder (its tokenizer, text encoder, UNet and VAE).
    public convenience init(model: StableDiffusionModel, scheduler: LCMScheduler, parameters: StreamParameters,
                            backend: any Backend) throws {
        try self.init(tokenizer: model.tokenizer, textEncoder: model.textEncoder, unet: model.unet, vae: StreamVAE(model.vae),
                      scheduler: scheduler, parameters: parameters, backend: backend)
    }
}
