import Media

/// One prompt of the demo model's meaning test: a colour, a shape and a background, all named in
/// the prompt and all readable from the picture by `PictureMeasures`.
public struct DemoCase: Sendable, Equatable, CustomStringConvertible {
    public let colour: String, shape: PictureMeasures.Shape, background: String

    public init(colour: String, shape: PictureMeasures.Shape, background: String) {
        (self.colour, self.shape, self.background) = (colour, shape, background)
    }

    /// The caption the training data would give this picture ("an orange star on a white background").
    public var prompt: String {
        let article = colour.first.map { "aeiou".contains($0) } == true ? "an" : "a"
        return "\(article) \(colour) \(shape.rawValue) on a \(background) background"
    }

    public var description: String { prompt }

    /// The 21-prompt grid: every chromatic colour × circle, square, star, on backgrounds taken in
    /// turn from a list (skipping the shape's own colour).
    public static let grid: [DemoCase] = {
        let backgrounds = ["white", "black", "blue", "yellow", "pink", "green", "purple"]
        var cases: [DemoCase] = [], turn = 0
        for colour in Palette.chromatic {
            for shape in PictureMeasures.Shape.allCases {
                var background = backgrounds[turn % backgrounds.count]
                turn += 1
                if background == colour { background = backgrounds[turn % backgrounds.count]; turn += 1 }
                cases.append(DemoCase(colour: colour, shape: shape, background: background))
            }
        }
        return cases
    }()

    /// An img2img starting picture for this case that the prompt must change in every respect: the
    /// next grid case, at least a third of the grid away, whose colour, shape and background all
    /// differ from this case's (and whose shape colour is not this case's background).
    public var contrastingCase: DemoCase {
        let grid = Self.grid
        let start = grid.firstIndex(of: self) ?? 0
        for offset in (grid.count / 3)..<(grid.count + grid.count / 3) {
            let other = grid[(start + offset) % grid.count]
            if other.colour != colour, other.shape != shape, other.background != background, other.colour != background {
                return other
            }
        }
        return grid[(start + grid.count / 2) % grid.count]   // not reached for the grid (tested)
    }
}

/// How many pictures showed what their prompt named, in total and per measure.
public struct DemoScore: Sendable, CustomStringConvertible {
    public var total = 0, background = 0, colour = 0, shape = 0, all = 0
    public var failures: [String] = []

    public init() {}

    /// The fraction of pictures right in all three respects.
    public var passRate: Double { Double(all) / Double(max(1, total)) }

    public var description: String {
        "\(all)/\(total) cases right (background \(background), colour \(colour), shape \(shape)); "
            + "first failures: \(failures.prefix(6).joined(separator: "; "))"
    }

    /// Judges one picture against its case: the background's nearest palette colour, the
    /// foreground's nearest hue and the shape must all be the named ones. Returns whether all were.
    @discardableResult
    public mutating func judge(_ m: PictureMeasures, _ c: DemoCase, label: String) -> Bool {
        let background = Palette.nearest(m.background) == c.background
        let colour = m.foreground.flatMap(Palette.nearestHue) == c.colour
        let shape = m.shape == c.shape
        total += 1
        self.background += background ? 1 : 0
        self.colour += colour ? 1 : 0
        self.shape += shape ? 1 : 0
        if background && colour && shape {
            all += 1
            return true
        }
        failures.append("\(label): bg \(Palette.nearest(m.background)), fg \(m.foreground.flatMap(Palette.nearestHue) ?? "none"), "
                        + "shape \(m.shape?.rawValue ?? "none") (solidity \(m.solidity), circularity \(m.circularity))")
        return false
    }

    @discardableResult
    public mutating func judge(_ image: RGBImage, _ c: DemoCase, label: String) -> Bool {
        judge(PictureMeasures(image), c, label: label)
    }
}
