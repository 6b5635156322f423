import Foundation

/// Errors of the schedulers: a config they cannot honour, or a request (step count, strength,
/// timestep list, array sizes) that has no valid answer.
public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    /// The scheduler config asks for something this implementation does not do.
    case unsupported(String)
    /// The config's values are inconsistent (e.g. `num_train_timesteps` < 1).
    case invalidConfig(String)
    /// A timestep request or step input that is impossible (diffusers raises `ValueError` for the
    /// same requests).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case let .unsupported(m): return "unsupported scheduler setting: \(m)"
        case let .invalidConfig(m): return "invalid scheduler config: \(m)"
        case let .invalidRequest(m): return "invalid scheduler request: \(m)"
        }
    }
}

/// How diffusers' discrete schedulers (DDIM, Euler, Euler ancestral, …) space `n` inference
/// timesteps over the training schedule (`timestep_spacing`). LCM does not use this (it has its
/// own schedule, `LCMScheduler.timesteps`); sd-turbo and SDXL-Turbo ship `EulerDiscreteScheduler`
/// configs with `"trailing"`, so one step is t = 999.
public enum TimestepSpacing: String, Codable, Sendable, CaseIterable {
    /// `arange(n) * (N // n)` reversed, plus `steps_offset`.
    case leading
    /// `round(arange(N, 0, -N/n)) - 1`.
    case trailing

    /// The timesteps, most noisy first, as diffusers' `EulerDiscreteScheduler.set_timesteps`
    /// computes them (numpy float64, then float32; they are whole numbers for both spacings).
    public func timesteps(numInferenceSteps n: Int, numTrainTimesteps N: Int = 1000,
                          stepsOffset: Int = 0) throws -> [Float] {
        guard n >= 1, n <= N else {
            throw SchedulerError.invalidRequest("num_inference_steps \(n) must be in 1...\(N)")
        }
        switch self {
        case .leading:
            let ratio = N / n
            return (0..<n).reversed().map { Float(Double($0 * ratio) + Double(stepsOffset)) }
        case .trailing:
            // np.arange(N, 0, -N/n): length ceil((0 - N) / step); numpy fills element i as
            // start + i * (x1 - x0) where x1 = start + step (its fill rule), then rounds half to even.
            let start = Double(N), step = -Double(N) / Double(n)
            let count = Int(((0 - start) / step).rounded(.up))
            let delta = (start + step) - start
            return (0..<count).map { i in
                let x = i == 0 ? start : (i == 1 ? start + step : start + Double(i) * delta)
                return Float(x.rounded(.toNearestOrEven) - 1)
            }
        }
    }
}
