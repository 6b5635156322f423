import Models
import Tensors

/// Predicts the noise in a batch of latents: the UNet, or any stand-in with the same contract.
public protocol NoisePredictor: Sendable {
    /// The prompt's conditioning, computed once per prompt: embeddings [N, T, D] with the
    /// cross-attention keys and values every frame reuses.
    func crossAttention(_ embeddings: Tensor) throws -> CrossAttentionContext
    /// latents [N, h, w, 4], one timestep per row, a context of N rows → noise prediction [N, h, w, 4].
    func callAsFunction(_ latents: Tensor, timesteps: [Float], context: CrossAttentionContext) throws -> Tensor
}

extension UNet2DConditionModel: NoisePredictor {}

/// Residual classifier-free guidance (the official `cfg_type`).
public enum CFGType: String, Sendable, CaseIterable {
    /// No guidance: one UNet row per latent.
    case none
    /// Classic CFG: every row twice, with the negative and the positive prompt.
    case full
    /// RCFG self-negative: the negative noise is the stream's own residual noise (no extra rows).
    case `self`
    /// RCFG one-time negative: one extra row per new frame with the negative prompt.
    case initialize
}

/// The latent-space heart of StreamDiffusion: a buffer holding one frame at every denoising step,
/// one batched UNet call per input (stream batch), the LCM step on every row, RCFG, and the fixed
/// per-slot noise. Frame layout is step-major: rows [i·F, (i+1)·F) are the F frames at step i.
///
/// Unlike the official code, `frameBuffer` > 1 works with several steps: the buffer keeps
/// (S − 1)·F rows, each call outputs the last F rows, and everything shifts by F.
public final class StreamBatch {
    public let schedule: StreamSchedule
    public let frames: Int
    public let cfg: CFGType
    public let guidanceScale: Float
    public let delta: Float
    public let addNoise: Bool
    /// Stream batch (every step in one UNet call) or sequential (the official
    /// `use_denoising_batch = False`: each frame runs its steps one UNet call at a time).
    public let denoisingBatch: Bool
    let predictor: any NoisePredictor
    let backend: any Backend

    // Per-row constants [B, 1, 1, 1] (B = steps · frames).
    let alpha: Tensor, beta: Tensor, cSkip: Tensor, cOut: Tensor, inverseAlpha: Tensor
    /// alpha and beta of each row's next step (1 for the last step): the RCFG noise update.
    let alphaNextOverBetaNext: Tensor
    let rowTimesteps: [Float]

    /// The prompt rows of every UNet call, with their cross-attention keys and values (computed
    /// once per prompt in `setPrompt`).
    var context: CrossAttentionContext?
    /// The UNet call recorded for replay on a `RecordingBackend` (StreamBatch+Replay.swift).
    var recordedUNet = ReplayedCall()
    /// Set false to run the UNet op by op even on a recording backend.
    public var recordingEnabled = true {
        didSet { if !recordingEnabled { recordedUNet.reset() } }
    }
    var initNoise: Tensor
    var stockNoise: Tensor
    var buffer: Tensor?

    /// Rows of the stream state: every step's frames in stream batch, the new frames in sequential mode.
    var rows: Int { denoisingBatch ? schedule.steps * frames : frames }
    /// Guidance is active only above 1, and never with `cfg` none (as in the official code).
    var guided: Bool { cfg != .none && guidanceScale > 1 }

    /// `initNoise` [steps·frames, h, w, 4] (sequential mode: [frames, h, w, 4]): the fixed noise of
    /// every slot (drawn once from the seeded generator in `prepare`).
    public init(predictor: any NoisePredictor, schedule: StreamSchedule, frames: Int = 1, cfg: CFGType = .self,
                guidanceScale: Float = 1.2, delta: Float = 1, addNoise: Bool = true, denoisingBatch: Bool = true,
                initNoise: Tensor, backend: any Backend) throws {
        guard frames >= 1 else { throw StreamError.invalidParameter("frame_buffer_size must be ≥ 1") }
        self.denoisingBatch = denoisingBatch
        let b = denoisingBatch ? schedule.steps * frames : frames
        guard initNoise.rank == 4, initNoise.shape[0] == b else {
            throw StreamError.invalidParameter("init noise must have \(b) rows, got \(initNoise.shape)")
        }
        (self.predictor, self.schedule, self.frames, self.cfg) = (predictor, schedule, frames, cfg)
        (self.guidanceScale, self.delta, self.addNoise, self.backend) = (guidanceScale, delta, addNoise, backend)
        alpha = try schedule.column(schedule.alpha, frames: frames, on: backend)
        beta = try schedule.column(schedule.beta, frames: frames, on: backend)
        cSkip = try schedule.column(schedule.cSkip, frames: frames, on: backend)
        cOut = try schedule.column(schedule.cOut, frames: frames, on: backend)
        inverseAlpha = try schedule.column(schedule.alpha.map { 1 / $0 }, frames: frames, on: backend)
        let ratio = (0..<schedule.steps).map { i in
            i + 1 < schedule.steps ? schedule.alpha[i + 1] / schedule.beta[i + 1] : 1
        }
        alphaNextOverBetaNext = try schedule.column(ratio, frames: frames, on: backend)
        rowTimesteps = schedule.timesteps.flatMap { Array(repeating: Float($0), count: frames) }
        self.initNoise = initNoise
        stockNoise = try backend.scale(initNoise, by: 0, adding: 0)
        if denoisingBatch && schedule.steps > 1 {
            buffer = try backend.scale(initNoise.slice(batch: frames..<b), by: 0, adding: 0)
        }
    }

    /// Sets the prompt: `positive` and `negative` are text embeddings [1, T, D]. The rows are laid
    /// out per `cfg` (full: B negatives then B positives; initialize: F negatives then B positives).
    /// The cross-attention keys and values are projected here once per distinct prompt and then
    /// repeated per row. Calling it again swaps the prompt and keeps everything else.
    public func setPrompt(positive: Tensor, negative: Tensor?) throws {
        guard positive.rank == 3, positive.shape[0] == 1 else {
            throw StreamError.badInput("prompt embeddings must be [1, T, D], got \(positive.shape)")
        }
        let needsNegative = guided && (cfg == .full || cfg == .initialize)
        guard !needsNegative || negative?.shape == positive.shape else {
            throw StreamError.badInput("cfg \(cfg.rawValue) with guidance needs negative embeddings shaped like the positive ones")
        }
        var parts = Array(repeating: try predictor.crossAttention(positive), count: rows)
        if needsNegative, let negative {
            parts = Array(repeating: try predictor.crossAttention(negative), count: cfg == .full ? rows : frames) + parts
        }
        context = try CrossAttentionContext.stacked(parts, on: backend)
        recordedUNet.reset()
    }

    /// The newest frame(s) entering the stream at step 0: alpha₀·z + beta₀·initNoise[0..<F].
    public func noised(_ latents: Tensor) throws -> Tensor {
        guard latents.rank == 4, latents.shape[0] == frames, latents.shape.dropFirst() == initNoise.shape.dropFirst() else {
            throw StreamError.badInput("latents must be [\(frames)] + \(Array(initNoise.shape.dropFirst())), got \(latents.shape)")
        }
        let noise = try initNoise.slice(batch: 0..<frames)
        return try backend.add(backend.scale(latents, by: schedule.alpha[0], adding: 0),
                               backend.scale(noise, by: schedule.beta[0], adding: 0))
    }

    func rowsOf(_ x: Tensor, _ range: Range<Int>) throws -> Tensor { try x.slice(batch: range) }

    /// One stream-batch call. `xT` [F, h, w, 4] are the newest noised latents; returns the F frames
    /// that have now finished every step (frames that entered S − 1 calls ago).
    public func callAsFunction(_ xT: Tensor, freshNoise: () throws -> Tensor = { throw StreamError.notPrepared }) throws -> Tensor {
        guard let context else { throw StreamError.notPrepared }
        if !denoisingBatch { return try sequential(xT, context: context, freshNoise: freshNoise) }
        let step = try begin(xT, context: context)
        return try finish(step, prediction: predict(step))
    }

    /// Several stream-batch calls in one UNet call: the rows of every stream are stacked, predicted
    /// together and split again, so each stream gets what its own call would give. The streams must
    /// share one model (the first one's predictor runs) and use stream batch; latents and prompts
    /// must have the same shapes. This is how a server serves several clients with one UNet call.
    public static func together(_ calls: [(stream: StreamBatch, xT: Tensor)]) throws -> [Tensor] {
        guard let first = calls.first?.stream else { return [] }
        var steps: [PendingStep] = []
        for (stream, xT) in calls {
            guard let context = stream.context else { throw StreamError.notPrepared }
            guard stream.denoisingBatch else { throw StreamError.invalidParameter("only stream-batch streams can share a UNet call") }
            guard xT.shape.dropFirst() == calls[0].xT.shape.dropFirst(),
                  context.embeddings.shape.dropFirst() == first.context?.embeddings.shape.dropFirst() else {
                throw StreamError.badInput("streams sharing a UNet call need the same latent and prompt shapes")
            }
            steps.append(try stream.begin(xT, context: context))
        }
        // One stream alone is its own call (replayed on a recording backend); several are stacked
        // into one UNet call, run op by op (which clients share a call changes from call to call).
        let prediction = steps.count == 1
            ? try first.predict(steps[0])
            : try first.predictor(first.backend.concatRows(steps.map(\.input)), timesteps: steps.flatMap(\.timesteps),
                                  context: CrossAttentionContext.stacked(steps.map(\.context), on: first.backend))
        var row = 0
        return try zip(calls, steps).map { call, step in
            defer { row += step.rowCount }
            return try call.stream.finish(step, prediction: prediction.slice(batch: row..<(row + step.rowCount)))
        }
    }

    /// The UNet rows of one call: the stream's latents (doubled or extended per `cfg`).
    struct PendingStep {
        let x: Tensor, input: Tensor, timesteps: [Float], context: CrossAttentionContext
        var rowCount: Int { timesteps.count }
    }

    /// The first half of a call: shifts the slot noise and lays out the UNet's input rows.
    func begin(_ xT: Tensor, context: CrossAttentionContext) throws -> PendingStep {
        let b = rows, f = frames
        let x = try buffer.map { try backend.concatRows([xT, $0]) } ?? xT
        if schedule.steps > 1 {
            stockNoise = try backend.concatRows([rowsOf(initNoise, 0..<f), rowsOf(stockNoise, 0..<(b - f))])
        }
        // UNet rows per cfg: full doubles the batch; initialize prepends the new frames once more.
        var input = x, timesteps = rowTimesteps
        if guided && cfg == .full {
            input = try backend.concatRows([x, x])
            timesteps += rowTimesteps
        } else if guided && cfg == .initialize {
            input = try backend.concatRows([rowsOf(x, 0..<f), x])
            timesteps = Array(rowTimesteps.prefix(f)) + rowTimesteps
        }
        return PendingStep(x: x, input: input, timesteps: timesteps, context: context)
    }

    /// The second half: guidance, the LCM step on every row, the RCFG noise update and the buffer
    /// shift, from the UNet's prediction for `step`'s rows.
    func finish(_ step: PendingStep, prediction: Tensor) throws -> Tensor {
        let b = rows, f = frames, x = step.x
        var textNoise = prediction, uncondNoise: Tensor? = nil
        if guided && cfg == .full {
            uncondNoise = try rowsOf(prediction, 0..<b)
            textNoise = try rowsOf(prediction, b..<(2 * b))
        } else if guided && cfg == .initialize {
            stockNoise = try backend.concatRows([rowsOf(prediction, 0..<f), rowsOf(stockNoise, f..<b)])
            textNoise = try rowsOf(prediction, f..<(b + f))
        }
        if guided && (cfg == .self || cfg == .initialize) {
            uncondNoise = try backend.scale(stockNoise, by: delta, adding: 0)
        }
        var eps = textNoise
        if guided, let uncond = uncondNoise {
            eps = try backend.add(uncond, backend.scale(backend.sub(textNoise, uncond), by: guidanceScale, adding: 0))
        }
        let denoised = try lcmStep(x, eps)
        if cfg == .self || cfg == .initialize {
            // The same LCM step applied to the residual noise β·stock, carried to the next step.
            let scaled = try backend.mul(beta, stockNoise)
            let dx = try backend.mul(lcmStep(scaled, eps), alphaNextOverBetaNext)
            // The slot noise rolled by one step (the official code rolls by one row: F = 1).
            let rolled = try backend.concatRows([rowsOf(initNoise, f..<b), rowsOf(initNoise, 0..<f)].filter { $0.shape[0] > 0 })
            stockNoise = try backend.add(rolled, dx)
        }
        if schedule.steps > 1 {
            // Every frame but the oldest moves one step on: α_{i+1}·x0 (+ β_{i+1}·its slot's noise).
            let advanced = try backend.mul(rowsOf(denoised, 0..<(b - f)), rowsOf(alpha, f..<b))
            buffer = addNoise
                ? try backend.add(advanced, backend.mul(rowsOf(beta, f..<b), rowsOf(initNoise, f..<b)))
                : advanced
        }
        return try rowsOf(denoised, (b - f)..<b)
    }

    /// Sequential mode: every step of the new frames in its own UNet call, re-noised between steps
    /// with fresh noise (`freshNoise`, the official `randn_like`). Guidance works as in the official
    /// `unet_step`: the residual noise of `self` stays zero here (the official code updates it only
    /// in stream batch), and `initialize` puts the real negative prediction in it. Unlike the
    /// official code, the slot noise is not overwritten with each frame's x_t.
    func sequential(_ xT: Tensor, context: CrossAttentionContext, freshNoise: () throws -> Tensor) throws -> Tensor {
        let f = frames
        var x = xT, denoised = xT
        for i in 0..<schedule.steps {
            let t = Array(repeating: Float(schedule.timesteps[i]), count: f)
            var input = x, timesteps = t
            if guided && cfg == .full { input = try backend.concatRows([x, x]); timesteps += t }
            if guided && cfg == .initialize { input = try backend.concatRows([x, x]); timesteps += t }
            let prediction = try predictor(input, timesteps: timesteps, context: context)
            var eps = prediction
            if guided {
                var uncond = try backend.scale(stockNoise, by: delta, adding: 0)
                if cfg == .full {
                    uncond = try rowsOf(prediction, 0..<f)
                    eps = try rowsOf(prediction, f..<(2 * f))
                } else if cfg == .initialize {
                    stockNoise = try rowsOf(prediction, 0..<f)
                    uncond = try backend.scale(stockNoise, by: delta, adding: 0)
                    eps = try rowsOf(prediction, f..<(2 * f))
                }
                eps = try backend.add(uncond, backend.scale(backend.sub(eps, uncond), by: guidanceScale, adding: 0))
            }
            let scale = { (values: [Float]) in try self.schedule.column([values[i]], frames: f, on: self.backend) }
            let x0 = try backend.mul(backend.sub(x, backend.mul(scale(schedule.beta), eps)), scale(schedule.alpha.map { 1 / $0 }))
            denoised = try backend.add(backend.mul(scale(schedule.cOut), x0), backend.mul(scale(schedule.cSkip), x))
            guard i + 1 < schedule.steps else { break }
            x = try backend.scale(denoised, by: schedule.alpha[i + 1], adding: 0)
            if addNoise { x = try backend.add(x, backend.scale(freshNoise(), by: schedule.beta[i + 1], adding: 0)) }
        }
        return denoised
    }

    /// LCM step per row: c_out·(x − β·ε)/α + c_skip·x.
    func lcmStep(_ x: Tensor, _ eps: Tensor) throws -> Tensor {
        let x0 = try backend.mul(backend.sub(x, backend.mul(beta, eps)), inverseAlpha)
        return try backend.add(backend.mul(cOut, x0), backend.mul(cSkip, x))
    }
}
