import Tensors

/// How a stream denoises: the scheduler's timestep for each entry of `t_index_list` and the
/// constants every UNet row needs, computed once (`prepare`) and reused every frame.
public struct StreamSchedule: Sendable, Equatable {
    /// Timestep of each step (one per `t_index_list` entry), most noisy first.
    public let timesteps: [Int]
    /// sqrt(ᾱ_t) and sqrt(1 − ᾱ_t) per step.
    public let alpha: [Float], beta: [Float]
    /// LCM boundary condition per step: c_skip = σ²/(s² + σ²), c_out = s/√(s² + σ²), s = 10·t, σ = 0.5.
    public let cSkip: [Float], cOut: [Float]

    /// `timesteps` from the LCM scheduler (`timesteps[tIndexList[i]]`); `alphasCumprod` the
    /// training noise schedule (1000 entries for SD).
    public init(timesteps: [Int], alphasCumprod: [Float], timestepScaling: Float = 10) throws {
        guard !timesteps.isEmpty, timesteps.allSatisfy({ $0 >= 0 && $0 < alphasCumprod.count }) else {
            throw StreamError.invalidParameter("timesteps \(timesteps) outside the noise schedule 0..<\(alphasCumprod.count)")
        }
        self.timesteps = timesteps
        alpha = timesteps.map { alphasCumprod[$0].squareRoot() }
        beta = timesteps.map { (1 - alphasCumprod[$0]).squareRoot() }
        let sigmaData: Float = 0.5
        cSkip = timesteps.map { t in
            let s = Float(t) * timestepScaling
            return sigmaData * sigmaData / (s * s + sigmaData * sigmaData)
        }
        cOut = timesteps.map { t in
            let s = Float(t) * timestepScaling
            return s / (s * s + sigmaData * sigmaData).squareRoot()
        }
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
