import Foundation
import ModelFiles

/// What the denoising model predicts (`prediction_type`).
public enum PredictionType: String, Codable, Sendable, CaseIterable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

/// The keys of an `LCMScheduler` `scheduler_config.json` (diffusers defaults for missing keys;
/// unknown keys ignored). The noise keys are shared with every other scheduler (`noise`).
public struct LCMSchedulerConfig: Codable, Sendable, Equatable {
    public var noise: NoiseScheduleConfig
    /// Length of the LCM distillation schedule that inference timesteps are picked from.
    public var originalInferenceSteps: Int
    public var clipSample: Bool
    public var clipSampleRange: Double
    /// ᾱ used for a previous timestep < 0 (`final_alpha_cumprod`): 1 when true, else ᾱ_0. The LCM
    /// schedules never reach a negative timestep, so this has no effect on `timesteps(…)` schedules.
    public var setAlphaToOne: Bool
    /// Read for completeness; `LCMScheduler.set_timesteps` does not use it.
    public var stepsOffset: Int
    public var predictionType: PredictionType
    /// Dynamic thresholding: not implemented (an error when true; SD never uses it).
    public var thresholding: Bool
    /// Read for completeness; unused by the LCM timestep schedule.
    public var timestepSpacing: String
    /// `s = t · timestep_scaling` in the boundary-condition scalings.
    public var timestepScaling: Double

    public init(noise: NoiseScheduleConfig = NoiseScheduleConfig(), originalInferenceSteps: Int = 50,
                clipSample: Bool = false, clipSampleRange: Double = 1, setAlphaToOne: Bool = true,
                stepsOffset: Int = 0, predictionType: PredictionType = .epsilon, thresholding: Bool = false,
                timestepSpacing: String = "leading", timestepScaling: Double = 10) {
        self.noise = noise
        self.originalInferenceSteps = originalInferenceSteps
        self.clipSample = clipSample
        self.clipSampleRange = clipSampleRange
        self.setAlphaToOne = setAlphaToOne
        self.stepsOffset = stepsOffset
        self.predictionType = predictionType
        self.thresholding = thresholding
        self.timestepSpacing = timestepSpacing
        self.timestepScaling = timestepScaling
    }

    enum CodingKeys: String, CodingKey {
        case originalInferenceSteps = "original_inference_steps", clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one"
        case stepsOffset = "steps_offset", predictionType = "prediction_type", thresholding
        case timestepSpacing = "timestep_spacing", timestepScaling = "timestep_scaling"
    }

    public init(from decoder: Decoder) throws {
        let d = LCMSchedulerConfig()
        noise = try NoiseScheduleConfig(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        originalInferenceSteps = try c.decodeIfPresent(Int.self, forKey: .originalInferenceSteps) ?? d.originalInferenceSteps
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample) ?? d.clipSample
        clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange) ?? d.clipSampleRange
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne) ?? d.setAlphaToOne
        stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset) ?? d.stepsOffset
        predictionType = try c.decodeIfPresent(PredictionType.self, forKey: .predictionType) ?? d.predictionType
        thresholding = try c.decodeIfPresent(Bool.self, forKey: .thresholding) ?? d.thresholding
        timestepSpacing = try c.decodeIfPresent(String.self, forKey: .timestepSpacing) ?? d.timestepSpacing
        timestepScaling = try c.decodeIfPresent(Double.self, forKey: .timestepScaling) ?? d.timestepScaling
    }

    public func encode(to encoder: Encoder) throws {
        try noise.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(originalInferenceSteps, forKey: .originalInferenceSteps)
        try c.encode(clipSample, forKey: .clipSample)
        try c.encode(clipSampleRange, forKey: .clipSampleRange)
        try c.encode(setAlphaToOne, forKey: .setAlphaToOne)
        try c.encode(stepsOffset, forKey: .stepsOffset)
        try c.encode(predictionType, forKey: .predictionType)
        try c.encode(thresholding, forKey: .thresholding)
        try c.encode(timestepSpacing, forKey: .timestepSpacing)
        try c.encode(timestepScaling, forKey: .timestepScaling)
    }
}

/// The per-timestep constants of an LCM step, float32, as a stream precomputes them once:
/// sqrt(ᾱ_t), sqrt(1 − ᾱ_t) and the boundary-condition scalings c_skip, c_out.
public struct LCMStepScalars: Sendable, Equatable {
    public var timestep: Int
    public var alphaProdSqrt: Float
    public var betaProdSqrt: Float
    public var cSkip: Float
    public var cOut: Float

    public init(timestep: Int, alphaProdSqrt: Float, betaProdSqrt: Float, cSkip: Float, cOut: Float) {
        self.timestep = timestep
        self.alphaProdSqrt = alphaProdSqrt
        self.betaProdSqrt = betaProdSqrt
        self.cSkip = cSkip
        self.cOut = cOut
    }
}

/// The two results of one LCM step.
public struct LCMStepOutput: Sendable, Equatable {
    /// The next model input: `denoised` re-noised to the next timestep, or `denoised` itself after
    /// the last step.
    public var prevSample: [Float]
    /// The consistency-model estimate of x0 at this step.
    public var denoised: [Float]
}

/// diffusers' `LCMScheduler` (scheduling_lcm.py) as pure functions: the timestep schedule, the
/// boundary-condition scalings, and the step math on flat float32 arrays. There is no hidden step
/// counter and no random generator: the caller passes the schedule position and the re-noise noise.
public struct LCMScheduler: Sendable {
    public static let sigmaData = 0.5

    public let config: LCMSchedulerConfig
    public let noiseSchedule: NoiseSchedule
    /// ᾱ for a previous timestep < 0 (1, or ᾱ_0 when `set_alpha_to_one` is false).
    public let finalAlphaCumprod: Float
    /// Standard deviation of the initial txt2img noise (1 for LCM).
    public let initNoiseSigma: Float = 1

    public init(config: LCMSchedulerConfig = LCMSchedulerConfig()) throws {
        if config.thresholding { throw SchedulerError.unsupported("thresholding = true") }
        guard config.originalInferenceSteps >= 1 else {
            throw SchedulerError.invalidConfig("original_inference_steps \(config.originalInferenceSteps) must be >= 1")
        }
        self.config = config
        noiseSchedule = try NoiseSchedule(config: config.noise)
        finalAlphaCumprod = config.setAlphaToOne ? 1 : noiseSchedule.alphasCumprod[0]
    }

    /// Reads a `scheduler_config.json` (an LCM config; any other scheduler's file gives LCM's
    /// defaults for the LCM-only keys, as diffusers' `LCMScheduler.from_config` does).
    public init(contentsOf url: URL) throws {
        try self.init(config: ConfigFile.load(LCMSchedulerConfig.self, from: url))
    }

    public var alphasCumprod: [Float] { noiseSchedule.alphasCumprod }
    var numTrainTimesteps: Int { noiseSchedule.count }

    // MARK: Timesteps

    /// The LCM origin (distillation) schedule for `originalSteps · strength` steps, ascending:
    /// `[1 … ⌊originalSteps·strength⌋] · k − 1` with `k = N / originalSteps`.
    func originTimesteps(originalSteps: Int, strength: Double) throws -> [Int] {
        let n = numTrainTimesteps
        guard originalSteps >= 1, originalSteps <= n else {
            throw SchedulerError.invalidRequest(
                "original_inference_steps \(originalSteps) must be in 1...\(n) (num_train_timesteps)")
        }
        guard strength.isFinite, strength > 0, strength <= 1 else {
            throw SchedulerError.invalidRequest("strength \(strength) must be in (0, 1]")
        }
        let k = n / originalSteps
        let count = Int(Double(originalSteps) * strength)  // Python int() truncates toward zero
        return count < 1 ? [] : (1...count).map { $0 * k - 1 }
    }

    /// The inference timesteps, most noisy first, exactly as `LCMScheduler.set_timesteps(n,
    /// strength=strength, original_inference_steps=…)`: the origin schedule reversed, then entries
    /// `⌊i · len/n⌋` (numpy `linspace(0, len, n, endpoint=False)` in float64, floored).
    /// n = 4 → 999, 759, 499, 259; n = 50 → 999, 979, …, 19.
    ///
    /// Throws where diffusers raises: n > num_train_timesteps, fewer origin steps than `n` (which
    /// includes n > original_inference_steps), original steps > num_train_timesteps. Also throws
    /// for n < 1 (diffusers: ZeroDivisionError or ValueError) and for strength outside (0, 1]
    /// (diffusers accepts strength > 1 and can then return timesteps ≥ num_train_timesteps).
    public func timesteps(numInferenceSteps n: Int, strength: Double = 1,
                          originalInferenceSteps: Int? = nil) throws -> [Int] {
        let originalSteps = originalInferenceSteps ?? config.originalInferenceSteps
        let origin = try originTimesteps(originalSteps: originalSteps, strength: strength)
        guard n >= 1 else { throw SchedulerError.invalidRequest("num_inference_steps \(n) must be >= 1") }
        guard n <= numTrainTimesteps else {
            throw SchedulerError.invalidRequest(
                "num_inference_steps \(n) cannot be larger than num_train_timesteps \(numTrainTimesteps)")
        }
        guard origin.count / n >= 1 else {
            throw SchedulerError.invalidRequest(
                "original_inference_steps × strength = \(originalSteps) × \(strength) gives \(origin.count) "
                    + "timesteps, fewer than num_inference_steps \(n)")
        }
        guard n <= originalSteps else {
            throw SchedulerError.invalidRequest(
                "num_inference_steps \(n) cannot be larger than original_inference_steps \(originalSteps)")
        }
        let reversed = Array(origin.reversed())
        let spacing = Double(reversed.count) / Double(n)
        return (0..<n).map { reversed[Int((Double($0) * spacing).rounded(.down))] }
    }

    /// A custom schedule (diffusers' `set_timesteps(timesteps=…, strength=…)`): strictly descending,
    /// first entry < num_train_timesteps; strength keeps the last `min(⌊len·strength⌋, len)`
    /// entries. diffusers only warns about entries off the origin schedule; so does this (it
    /// accepts them). Stricter than diffusers: negative entries and an empty result throw.
    public func timesteps(custom: [Int], strength: Double = 1, originalInferenceSteps: Int? = nil) throws -> [Int] {
        _ = try originTimesteps(originalSteps: originalInferenceSteps ?? config.originalInferenceSteps,
                                strength: strength)
        guard let first = custom.first else { throw SchedulerError.invalidRequest("custom timesteps are empty") }
        for i in custom.indices.dropFirst() where custom[i] >= custom[i - 1] {
            throw SchedulerError.invalidRequest("custom timesteps \(custom) must be in descending order")
        }
        guard first < numTrainTimesteps else {
            throw SchedulerError.invalidRequest("custom timesteps must start before num_train_timesteps \(numTrainTimesteps)")
        }
        guard custom.last! >= 0 else { throw SchedulerError.invalidRequest("custom timesteps \(custom) must be >= 0") }
        let n = custom.count
        let initTimestep = min(Int(Double(n) * strength), n)
        let start = max(n - initTimestep, 0)
        guard start < n else {
            throw SchedulerError.invalidRequest("strength \(strength) keeps none of the \(n) custom timesteps")
        }
        return Array(custom[start...])
    }

    // MARK: Scalings and step

    /// LCM boundary-condition scalings for a timestep, in double precision exactly as diffusers
    /// computes them for a Python int timestep: `s = t·timestep_scaling`,
    /// `c_skip = σ²/(s² + σ²)`, `c_out = s/(s² + σ²)**0.5` with σ = 0.5.
    /// (With a 0-dim tensor timestep, as in a diffusers pipeline loop and in StreamDiffusion,
    /// torch does the same in float32 with its own sqrt; those values are within 2 ulp of
    /// `Float(c_out)`.)
    public func boundaryScalings(timestep: Int) -> (cSkip: Double, cOut: Double) {
        let sigma2 = Self.sigmaData * Self.sigmaData
        let s = Double(timestep) * config.timestepScaling
        let d = s * s + sigma2
        // Python's `x ** 0.5` is C pow(x, 0.5), which can differ from sqrt in the last bit.
        return (sigma2 / d, s / pow(d, 0.5))
    }

    /// The float32 constants of a timestep (sqrt ᾱ_t, sqrt(1 − ᾱ_t), and the scalings rounded from
    /// `boundaryScalings`), for a stream to precompute.
    public func scalars(timestep t: Int) throws -> LCMStepScalars {
        try checkTimestep(t)
        let (cSkip, cOut) = boundaryScalings(timestep: t)
        return LCMStepScalars(timestep: t, alphaProdSqrt: noiseSchedule.alphaProdSqrt(t),
                              betaProdSqrt: noiseSchedule.betaProdSqrt(t), cSkip: Float(cSkip), cOut: Float(cOut))
    }

    /// sqrt of ᾱ at a "previous" timestep (`final_alpha_cumprod` below 0) and of 1 − that ᾱ.
    public func renoiseScalars(previousTimestep t: Int) throws -> (alphaProdSqrt: Float, betaProdSqrt: Float) {
        guard t < numTrainTimesteps else {
            throw SchedulerError.invalidRequest("timestep \(t) outside 0..<\(numTrainTimesteps)")
        }
        let a = t >= 0 ? alphasCumprod[t] : finalAlphaCumprod
        return (a.squareRoot(), (1 - a).squareRoot())
    }

    /// The model's x0 estimate and the consistency denoised sample, float32 in diffusers' order:
    /// epsilon `x0 = (x − β·ε)/α`, v `x0 = α·x − β·v`, sample `x0 = output`; optional clip;
    /// `denoised = c_out·x0 + c_skip·x` (α = sqrt ᾱ_t, β = sqrt(1 − ᾱ_t)).
    public func denoised(modelOutput: [Float], sample: [Float], scalars k: LCMStepScalars) throws -> [Float] {
        guard modelOutput.count == sample.count else {
            throw SchedulerError.invalidRequest("model output has \(modelOutput.count) values, sample \(sample.count)")
        }
        let a = k.alphaProdSqrt, b = k.betaProdSqrt, cSkip = k.cSkip, cOut = k.cOut
        let clip = config.clipSample ? Float(config.clipSampleRange) : nil
        var out = [Float](repeating: 0, count: sample.count)
        for i in sample.indices {
            let x = sample[i], m = modelOutput[i]
            var x0: Float
            switch config.predictionType {
            case .epsilon: x0 = (x - b * m) / a
            case .vPrediction: x0 = a * x - b * m
            case .sample: x0 = m
            }
            if let r = clip { x0 = min(max(x0, -r), r) }
            out[i] = cOut * x0 + cSkip * x
        }
        return out
    }

    /// Re-noise a denoised sample to the previous (less noisy) timestep with the given noise:
    /// `sqrt(ᾱ_prev)·denoised + sqrt(1 − ᾱ_prev)·noise`.
    public func renoise(denoised: [Float], noise: [Float], previousTimestep: Int) throws -> [Float] {
        guard noise.count == denoised.count else {
            throw SchedulerError.invalidRequest("noise has \(noise.count) values, sample \(denoised.count)")
        }
        let (a, b) = try renoiseScalars(previousTimestep: previousTimestep)
        return zip(denoised, noise).map { a * $0 + b * $1 }
    }

    /// One `LCMScheduler.step`: `previousTimestep` is the next entry of the schedule, or nil at the
    /// last step (then `prevSample == denoised` and no noise is used). Between steps diffusers draws
    /// fresh z ~ N(0, I); here the caller passes it as `noise`.
    public func step(modelOutput: [Float], timestep: Int, sample: [Float], previousTimestep: Int?,
                     noise: [Float]?) throws -> LCMStepOutput {
        let d = try denoised(modelOutput: modelOutput, sample: sample, scalars: scalars(timestep: timestep))
        guard let prev = previousTimestep else { return LCMStepOutput(prevSample: d, denoised: d) }
        guard let noise else {
            throw SchedulerError.invalidRequest("a step before the last one needs noise to re-noise with")
        }
        return LCMStepOutput(prevSample: try renoise(denoised: d, noise: noise, previousTimestep: prev), denoised: d)
    }

    /// Step `stepIndex` of a schedule from `timesteps(…)` (the previous timestep is the next entry).
    public func step(modelOutput: [Float], stepIndex: Int, timesteps: [Int], sample: [Float],
                     noise: [Float]?) throws -> LCMStepOutput {
        guard timesteps.indices.contains(stepIndex) else {
            throw SchedulerError.invalidRequest("step index \(stepIndex) outside a \(timesteps.count)-step schedule")
        }
        let prev = stepIndex + 1 < timesteps.count ? timesteps[stepIndex + 1] : nil
        return try step(modelOutput: modelOutput, timestep: timesteps[stepIndex], sample: sample,
                        previousTimestep: prev, noise: noise)
    }

    func checkTimestep(_ t: Int) throws {
        guard t >= 0, t < numTrainTimesteps else {
            throw SchedulerError.invalidRequest("timestep \(t) outside 0..<\(numTrainTimesteps)")
        }
    }
}
