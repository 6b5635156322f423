import Foundation

/// The stochastic similarity filter (SSF): skips an input frame with probability
/// max(0, 1 − (1 − cos)/(1 − η)), where cos is its cosine similarity to the last *processed* input
/// and η the threshold. The rule is the official one, including its quirks: a uniform number is
/// drawn for every frame after the first; the skip counter resets only on a forced refresh (after
/// more than `maxSkipFrames` skips), not on an ordinary processed frame.
public struct SimilarImageFilter {
    /// η, in Double as in the official Python (0.98 must mean exactly what it means there).
    public var threshold: Double
    public var maxSkipFrames: Int
    public private(set) var skipCount = 0
    private var previous: [Float]?
    private var draw: () -> Float

    /// Draws come from a seeded generator (the official code uses Python's unseeded `random`).
    public init(threshold: Double = 0.98, maxSkipFrames: Int = 10, seed: UInt64 = 0) {
        var state = seed
        self.init(threshold: threshold, maxSkipFrames: maxSkipFrames) {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Float((z ^ (z >> 31)) >> 40) / Float(1 << 24)
        }
    }

    /// `draws` supplies the U(0, 1) samples (tests replay the official run's draws).
    public init(threshold: Double, maxSkipFrames: Int, draws: @escaping () -> Float) {
        (self.threshold, self.maxSkipFrames, self.draw) = (threshold, maxSkipFrames, draws)
    }

    /// Cosine similarity as torch's CosineSimilarity(eps = 1e-6), accumulated in Double.
    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            dot += Double(a[i]) * Double(b[i])
            na += Double(a[i]) * Double(a[i])
            nb += Double(b[i]) * Double(b[i])
        }
        return dot / max(na.squareRoot() * nb.squareRoot(), 1e-6)
    }

    /// The probability of skipping a frame with similarity `cos` to the last processed one.
    public func skipProbability(similarity cos: Double) -> Double {
        threshold >= 1 ? 0 : max(0, 1 - (1 - cos) / (1 - threshold))
    }

    /// Decides for one input (the preprocessed image, flattened): true means skip it and repeat the
    /// previous output. Inputs of a different size than the last one are always processed.
    public mutating func shouldSkip(_ input: [Float]) -> Bool {
        guard let previous, previous.count == input.count else {
            self.previous = input
            return false
        }
        let probability = skipProbability(similarity: SimilarImageFilter.cosine(previous, input))
        let sample = Double(draw())
        if probability < sample {
            self.previous = input
            return false
        }
        if skipCount > maxSkipFrames {
            skipCount = 0
            self.previous = input
            return false
        }
        skipCount += 1
        return true
    }
}
