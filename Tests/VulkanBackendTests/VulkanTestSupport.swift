import Foundation
import Testing
import Tensors
@testable import VulkanBackend

/// Deterministic random numbers (SplitMix64), as in TensorsTests.
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

/// Passes when max |actual − expected| ≤ relative × max(max|expected|, 1e-3): the error measured
/// against the output's scale, so near-zero elements do not demand impossible relative accuracy.
func expectClose(_ actual: [Float], _ expected: [Float], relative: Float, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var worst: Float = 0, at = 0, scale: Float = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        if !(d <= worst) { worst = d.isNaN ? .infinity : d; at = i }
        scale = max(scale, abs(expected[i]))
    }
    let tolerance = relative * max(scale, 1e-3)
    #expect(worst <= tolerance, "\(what): max |diff| \(worst) at \(at), output scale \(scale), tolerance \(tolerance)",
            sourceLocation: sourceLocation)
}

/// The backends every Vulkan test shares: Vulkan on the preferred device (lavapipe on CI) under the
/// validation layer, and the fp32 CPU backend as the oracle. Creating a Vulkan device and compiling
/// pipelines takes a while on lavapipe, so they are made once. The fp32 tests (1e-4 of the scale)
/// run on the portable shaders; CooperativeMatrixTests checks the fp16 cooperative-matrix products
/// on a device that has them.
enum Backends {
    static let vulkanResult: Result<VulkanBackend, Error> = Result {
        try VulkanBackend(options: .init(allowCPU: true, validation: true, cooperativeMatrix: .off))
    }

    /// The shared Vulkan backend; a test fails with the backend's own one-line error when Vulkan is
    /// missing (`make setup` installs the loader, lavapipe and the validation layer).
    static func vulkan() throws -> VulkanBackend { try vulkanResult.get() }

    static let cpu: CPUBackend = {
        do { return try CPUBackend(threads: 2, precision: .float32) } catch { fatalError("CPU backend: \(error)") }
    }()
}

/// Runs `body` with the shared Vulkan backend, then fails on any validation-layer message it caused.
func withVulkan(sourceLocation: SourceLocation = #_sourceLocation, _ body: (VulkanBackend) throws -> Void) throws {
    let vulkan = try Backends.vulkan()
    try body(vulkan)
    try vulkan.synchronize()
    let messages = vulkan.validationMessages
    if !messages.isEmpty { _ = try? vulkan.checkValidation() }
    #expect(messages.isEmpty, "validation layer: \(messages.joined(separator: " | "))", sourceLocation: sourceLocation)
}
