import Tensors

/// How a stream denoises: the scheduler's timestep for each entry of `t_index_list` and the
/// constants every UNet row needs, computed once (`prepare`) and reused every frame.
public struct StreamSchedule: Sendable, Equatable {
    /// Timestep of each step (one per `t_index_list` entry), most noisy first.
    public let timesteps: [Int]
    /// sqrt(ᾱ_t) and sqrt(1 − ᾱ_t) per step.
    public let alpha: [Float], beta: [Float]
    /// LCM boundary condition per step (`LCMScheduler.scalars`).
    public let cSkip: [Float], cOut: [Float]

    /// The stream's steps: `tIndexList` indexes the scheduler's `numInferenceSteps`-step LCM schedule
    /// (50 steps: 999, 979, …, 19), as the official `t_index_list` does.
    public init(scheduler: LCMScheduler, tIndexList: [Int], numInferenceSteps: Int = 50) throws {
        let all = try scheduler.timesteps(numInferenceSteps: numInferenceSteps)
        guard !tIndexList.isEmpty else { throw StreamError.invalidParameter("t_index_list is empty") }
        if let bad = tIndexList.first(where: { $0 < 0 || $0 >= all.count }) {
            throw StreamError.invalidParameter(
                "t_index_list entry \(bad) is outside 0...\(all.count - 1) (the \(numInferenceSteps)-step schedule)")
        }
        try self.init(scheduler: scheduler, timesteps: tIndexList.map { all[$0] })
    }

    /// The stream's steps at explicit timesteps (most noisy first).
    public init(scheduler: LCMScheduler, timesteps: [Int]) throws {
        guard !timesteps.isEmpty else { throw StreamError.invalidParameter("no timesteps") }
        let scalars = try timesteps.map { t -> LCMStepScalars in
            guard t >= 0, t < scheduler.alphasCumprod.count else {
                throw StreamError.invalidParameter("timestep \(t) outside the noise schedule 0..<\(scheduler.alphasCumprod.count)")
            }
            return try scheduler.scalars(timestep: t)
        }
        self.timesteps = timesteps
        alpha = scalars.map(\.alphaProdSqrt)
        beta = scalars.map(\.betaProdSqrt)
        cSkip = scalars.map(\.cSkip)
        cOut = scalars.map(\.cOut)
    }

    public var steps: Int { timesteps.count }

    /// Per-row columns [steps·frames, 1, 1, 1] of a per-step value, step-major (each step's value
    /// repeated for every frame in the buffer), as the stream batch lays its rows out.
    func column(_ values: [Float], frames: Int, on backend: any Backend) throws -> Tensor {
        let rows = values.flatMap { Array(repeating: $0, count: frames) }
        return try backend.tensor(rows, shape: [rows.count, 1, 1, 1])
    }
}

public enum StreamError: Error, Equatable, CustomStringConvertible {
    case invalidParameter(String)
    case notPrepared
    case badInput(String)

    public var description: String {
        switch self {
        case let .invalidParameter(m): return "invalid stream parameter: \(m)"
        case .notPrepared: return "the stream is not prepared: call prepare(…) first"
        case let .badInput(m): return m
        }
    }
}
