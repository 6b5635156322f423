import Foundation
import Testing
@testable import Tensors

/// Deterministic random numbers (SplitMix64), so every property-style test is reproducible.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func floats(_ count: Int, scale: Float = 1, offset: Float = 0) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1...1, using: &self) * scale + offset }
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

/// Largest absolute difference, and the tolerance `relative` × max(|expected|, floor).
struct Closeness: CustomStringConvertible {
    let maxAbsDiff: Float, scale: Float, worstIndex: Int
    var description: String { "max |diff| \(maxAbsDiff) at \(worstIndex), output scale \(scale)" }
}

func closeness(_ actual: [Float], _ expected: [Float]) -> Closeness {
    precondition(actual.count == expected.count, "length \(actual.count) vs \(expected.count)")
    var worst: Float = 0, at = 0, scale: Float = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        if !(d <= worst) { worst = d.isNaN ? .infinity : d; at = i }
        scale = max(scale, abs(expected[i]))
    }
    return Closeness(maxAbsDiff: worst, scale: scale, worstIndex: at)
}

/// Passes when max |actual − expected| ≤ relative × max(max|expected|, 1e-3).
func expectClose(_ actual: [Float], _ expected: [Float], relative: Float, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    let c = closeness(actual, expected)
    let tolerance = relative * max(c.scale, 1e-3)
    #expect(c.maxAbsDiff <= tolerance, "\(what): \(c), tolerance \(tolerance)", sourceLocation: sourceLocation)
}

/// Backends shared by tests: oneDNN's primitives are cached per backend, so reuse saves time.
enum Backends {
    static let cpu: CPUBackend = {
        do { return try CPUBackend(threads: 2, precision: .float32) } catch { fatalError("CPU backend: \(error)") }
    }()
    static let cpuSingleThread: CPUBackend = {
        do { return try CPUBackend(threads: 1, precision: .float32) } catch { fatalError("CPU backend: \(error)") }
    }()
    static let bf16: CPUBackend? = CPUBackend.hardwareSupportsBFloat16 ? try? CPUBackend(threads: 2, precision: .bfloat16) : nil
    static let reference = ReferenceBackend()
}
