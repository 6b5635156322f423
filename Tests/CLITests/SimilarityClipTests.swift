import Testing
@testable import streamdiffusion

/// The benchmark clips must be what BENCHMARKS.md says they are, measured with the filter's own
/// statistic (cosine similarity of the flattened frames, worked out here independently).
struct SimilarityClipTests {
    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var (dot, na, nb) = (0.0, 0.0, 0.0)
        for (x, y) in zip(a, b) { (dot, na, nb) = (dot + Double(x * y), na + Double(x * x), nb + Double(y * y)) }
        return dot / (na * nb).squareRoot()
    }

    @Test func framesAreInRangeAndDeterministic() {
        let clip = SimilarityClip(kind: .cuts, size: 32)
        let frame = clip.frame(4)
        #expect(frame.count == 32 * 32 * 3)
        #expect(frame.allSatisfy { (-1...1).contains($0) })
        #expect(frame == clip.frame(4))
        #expect(frame != clip.frame(5))   // the sensor noise differs per frame
    }

    @Test func similarityMatchesTheClipDescriptions() {
        let size = 64, threshold = 0.98
        let still = SimilarityClip(kind: .static, size: size)
        let pan = SimilarityClip(kind: .slowPan, size: size)
        let cuts = SimilarityClip(kind: .cuts, size: size)
        // Static: only the ±0.02 grain differs, far above the threshold (skip probability > 0.9).
        #expect(Self.cosine(still.frame(0), still.frame(1)) > 0.998)
        // Slow pan: one pixel apart is above the threshold, many pixels apart is not.
        let onePixel = Self.cosine(pan.frame(0), pan.frame(1))
        #expect(onePixel > threshold && onePixel < Self.cosine(still.frame(0), still.frame(1)))
        #expect(Self.cosine(pan.frame(0), pan.frame(20)) < threshold)
        // Cuts: within a scene similar, across a cut always processed (similarity < threshold).
        #expect(Self.cosine(cuts.frame(0), cuts.frame(1)) > threshold)
        #expect(Self.cosine(cuts.frame(2), cuts.frame(3)) < threshold)
        #expect(Self.cosine(cuts.frame(5), cuts.frame(6)) < threshold)
    }
}
