import Foundation
import ModelFiles

/// diffusers' `beta_schedule`.
public enum BetaSchedule: String, Codable, Sendable, CaseIterable {
    /// `linspace(beta_start, beta_end, N)`.
    case linear
    /// `linspace(sqrt(beta_start), sqrt(beta_end), N) ** 2` — Stable Diffusion 1.x/2.x, sd-turbo, SDXL.
    case scaledLinear = "scaled_linear"
    /// Glide's cosine schedule (`betas_for_alpha_bar`, max beta 0.999).
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

/// The noise-schedule keys of a diffusers `scheduler_config.json` (any scheduler class: LCM, Euler,
/// DDIM, … all build their betas the same way). Unknown keys are ignored; missing keys take
/// `LCMScheduler`'s defaults (diffusers writes every key, so defaults rarely matter).
public struct NoiseScheduleConfig: Codable, Sendable, Equatable {
    public var numTrainTimesteps: Int
    public var betaStart: Double
    public var betaEnd: Double
    public var betaSchedule: BetaSchedule
    /// Explicit betas (`trained_betas`), used instead of the three keys above when present.
    public var trainedBetas: [Double]?
    /// Zero-terminal-SNR rescaling: not implemented (an error when true).
    public var rescaleBetasZeroSnr: Bool

    public init(numTrainTimesteps: Int = 1000, betaStart: Double = 0.00085, betaEnd: Double = 0.012,
                betaSchedule: BetaSchedule = .scaledLinear, trainedBetas: [Double]? = nil,
                rescaleBetasZeroSnr: Bool = false) {
        self.numTrainTimesteps = numTrainTimesteps
        self.betaStart = betaStart
        self.betaEnd = betaEnd
        self.betaSchedule = betaSchedule
        self.trainedBetas = trainedBetas
        self.rescaleBetasZeroSnr = rescaleBetasZeroSnr
    }

    enum CodingKeys: String, CodingKey {
        case numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start", betaEnd = "beta_end"
        case betaSchedule = "beta_schedule", trainedBetas = "trained_betas"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NoiseScheduleConfig()
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? d.numTrainTimesteps
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart) ?? d.betaStart
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd) ?? d.betaEnd
        betaSchedule = try c.decodeIfPresent(BetaSchedule.self, forKey: .betaSchedule) ?? d.betaSchedule
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        rescaleBetasZeroSnr = try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSnr) ?? false
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(numTrainTimesteps, forKey: .numTrainTimesteps)
        try c.encode(betaStart, forKey: .betaStart)
        try c.encode(betaEnd, forKey: .betaEnd)
        try c.encode(betaSchedule, forKey: .betaSchedule)
        try c.encode(trainedBetas, forKey: .trainedBetas)
        try c.encode(rescaleBetasZeroSnr, forKey: .rescaleBetasZeroSnr)
    }
}

/// The training noise schedule of a diffusion model: `betas`, `alphas = 1 - betas` and
/// `alphasCumprod` (ᾱ_t), float32 exactly as diffusers computes them with torch on the CPU:
///
/// - `torch.linspace(start, end, N, dtype=float32)` computes `step = (end - start)/(N - 1)` in
///   float32 and element i as `start + step·i` (i < N/2) or `end - step·(N-1-i)`, each a *fused*
///   multiply-add in torch's AVX2/AVX-512 kernels (this is what `torchLinspace` reproduces; torch's
///   non-FMA "DEFAULT" CPU kernel rounds the product first and differs by 1 ulp in some entries).
/// - `** 2` is a float32 square; `1.0 - betas` a float32 subtraction.
/// - `torch.cumprod` on the CPU accumulates a float32 tensor in *double* and rounds each partial
///   product to float32 (`cumprod` below); a float32 running product drifts from it by up to 15 ulp
///   (~1e-6 relative) at the end of a 1000-entry SD schedule.
public struct NoiseSchedule: Sendable, Equatable {
    public let config: NoiseScheduleConfig
    public let betas: [Float]
    public let alphas: [Float]
    /// ᾱ_t for t = 0 ..< numTrainTimesteps.
    public let alphasCumprod: [Float]

    public init(config: NoiseScheduleConfig = NoiseScheduleConfig()) throws {
        let n = config.numTrainTimesteps
        guard n >= 1 else { throw SchedulerError.invalidConfig("num_train_timesteps \(n) must be >= 1") }
        if config.rescaleBetasZeroSnr {
            throw SchedulerError.unsupported("rescale_betas_zero_snr = true")
        }
        var betas: [Float]
        if let trained = config.trainedBetas {
            // diffusers: torch.tensor(trained_betas, dtype=float32); the schedule's length is the list's.
            guard !trained.isEmpty else { throw SchedulerError.invalidConfig("trained_betas is empty") }
            betas = trained.map { Float($0) }
        } else {
            switch config.betaSchedule {
            case .linear:
                betas = Self.torchLinspace(Float(config.betaStart), Float(config.betaEnd), count: n)
            case .scaledLinear:
                // beta_start**0.5 is a Python float (double) square root, then float32 for torch.
                betas = Self.torchLinspace(Float(config.betaStart.squareRoot()),
                                           Float(config.betaEnd.squareRoot()), count: n).map { $0 * $0 }
            case .squaredcosCapV2:
                betas = Self.cosineBetas(count: n)
            }
        }
        self.config = config
        self.betas = betas
        alphas = betas.map { 1 - $0 }
        alphasCumprod = Self.cumprod(alphas)
    }

    /// Builds the schedule from the noise keys of a `scheduler_config.json`.
    public init(contentsOf url: URL) throws {
        try self.init(config: ConfigFile.load(NoiseScheduleConfig.self, from: url))
    }

    /// Number of training timesteps (the length of the tables).
    public var count: Int { alphasCumprod.count }

    /// sqrt(ᾱ_t) (float32, correctly rounded).
    public func alphaProdSqrt(_ t: Int) -> Float { alphasCumprod[t].squareRoot() }
    /// sqrt(1 − ᾱ_t) (float32: the subtraction and the square root each rounded, as torch does).
    public func betaProdSqrt(_ t: Int) -> Float { (1 - alphasCumprod[t]).squareRoot() }

    /// Forward diffusion `x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·noise` (diffusers' `add_noise`), elementwise.
    public func addNoise(original: [Float], noise: [Float], timestep t: Int) throws -> [Float] {
        guard t >= 0, t < count else {
            throw SchedulerError.invalidRequest("timestep \(t) outside 0..<\(count)")
        }
        guard original.count == noise.count else {
            throw SchedulerError.invalidRequest("add_noise: \(original.count) samples but \(noise.count) noise values")
        }
        let a = alphaProdSqrt(t), b = betaProdSqrt(t)
        return zip(original, noise).map { a * $0 + b * $1 }
    }

    /// `torch.linspace(start, end, count, dtype=torch.float32)` on the CPU (AVX2/AVX-512 kernels).
    public static func torchLinspace(_ start: Float, _ end: Float, count: Int) -> [Float] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { i in
            i < halfway
                ? start.addingProduct(step, Float(i))
                : end.addingProduct(-step, Float(count - 1 - i))
        }
    }

    /// `torch.cumprod` of a float32 vector on the CPU: a double accumulator, each prefix rounded to float32.
    public static func cumprod(_ values: [Float]) -> [Float] {
        var acc = 1.0
        return values.map { v in
            acc *= Double(v)
            return Float(acc)
        }
    }

    /// diffusers' `betas_for_alpha_bar(N)` with the cosine transform: Python doubles, then float32.
    static func cosineBetas(count n: Int, maxBeta: Double = 0.999) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<n).map { i in
            let t1 = Double(i) / Double(n), t2 = Double(i + 1) / Double(n)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), maxBeta))
        }
    }
}
