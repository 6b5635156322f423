import Testing
@testable import StreamDiffusion

/// The official decision rule (image_filter.py), worked through by hand with scripted draws.
@Suite struct SimilarImageFilterTests {
    static func scripted(_ values: [Float]) -> () -> Float {
        var index = 0
        return { defer { index += 1 }; return values[index % values.count] }
    }

    @Test func probabilityFollowsTheThreshold() {
        let filter = SimilarImageFilter(threshold: 0.98, maxSkipFrames: 10, draws: Self.scripted([0.5]))
        #expect(abs(filter.skipProbability(similarity: 0.99) - 0.5) < 1e-12)   // halfway between η and 1
        #expect(filter.skipProbability(similarity: 0.98) == 0)
        #expect(filter.skipProbability(similarity: 0.5) == 0)
        #expect(filter.skipProbability(similarity: 1) == 1)
        let never = SimilarImageFilter(threshold: 1, maxSkipFrames: 10, draws: Self.scripted([0]))
        #expect(never.skipProbability(similarity: 1) == 0)
    }

    /// Identical frames (cos = 1, p = 1): every draw says skip; after max+1 skips a refresh is
    /// forced, and the counter only resets then.
    @Test func forcedRefreshAfterMaxSkips() {
        var filter = SimilarImageFilter(threshold: 0.98, maxSkipFrames: 2, draws: Self.scripted([0.3]))
        let frame: [Float] = [1, 2, 3]
        let decisions = (0..<8).map { _ in filter.shouldSkip(frame) }
        // first frame processed; then skip, skip, skip (count 3 > 2 only after the third), refresh…
        #expect(decisions == [false, true, true, true, false, true, true, true])
    }

    /// A dissimilar frame is processed and becomes the new reference, but does not reset the count.
    @Test func processedFramesDoNotResetTheCounter() {
        var filter = SimilarImageFilter(threshold: 0.9, maxSkipFrames: 1, draws: Self.scripted([0.5]))
        let a: [Float] = [1, 0, 0], b: [Float] = [0, 1, 0]
        #expect(filter.shouldSkip(a) == false)   // first frame
        #expect(filter.shouldSkip(a) == true)    // cos 1 → skip, count 1
        #expect(filter.shouldSkip(b) == false)   // cos 0 → processed, count stays 1
        #expect(filter.skipCount == 1)
        #expect(filter.shouldSkip(b) == true)    // count 2
        #expect(filter.shouldSkip(b) == false)   // 2 > 1: forced refresh, count 0
        #expect(filter.skipCount == 0)
    }

    @Test func seededDrawsAreReproducible() {
        var one = SimilarImageFilter(threshold: 0.98, maxSkipFrames: 10, seed: 7)
        var two = SimilarImageFilter(threshold: 0.98, maxSkipFrames: 10, seed: 7)
        let frames: [[Float]] = (0..<20).map { i in [1, 1 + Float(i % 3) * 0.05, 1] }
        #expect(frames.map { one.shouldSkip($0) } == frames.map { two.shouldSkip($0) })
    }
}
