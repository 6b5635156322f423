import Media

/// How different pictures are, for the diversity of a model's output across seeds.
public enum PictureDistance {
    /// Mean absolute difference per channel value, in [0, 1] (0: identical; 1: black against white).
    public static func meanAbsoluteDifference(_ a: RGBImage, _ b: RGBImage) throws -> Double {
        guard a.width == b.width, a.height == b.height else {
            throw DemoEvaluationError.invalid("pictures differ in size: \(a.width)×\(a.height) and \(b.width)×\(b.height)")
        }
        var sum = 0
        for i in a.pixels.indices { sum += abs(Int(a.pixels[i]) - Int(b.pixels[i])) }
        return Double(sum) / (255 * Double(a.pixels.count))
    }

    /// The mean of `meanAbsoluteDifference` over every unordered pair; nil for fewer than two pictures.
    public static func meanPairwise(_ pictures: [RGBImage]) throws -> Double? {
        guard pictures.count >= 2 else { return nil }
        var sum = 0.0, pairs = 0
        for i in pictures.indices {
            for j in (i + 1)..<pictures.count {
                sum += try meanAbsoluteDifference(pictures[i], pictures[j])
                pairs += 1
            }
        }
        return sum / Double(pairs)
    }
}
