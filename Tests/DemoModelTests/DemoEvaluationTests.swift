import DemoEvaluation
import Media
import Testing

/// The pure pieces of the DemoEvaluation module: the prompt grid, the rendered ground truth that
/// `bench guidance` feeds img2img, and the picture distance behind its diversity figure.
struct DemoEvaluationTests {
    @Test func gridHasTwentyOneDistinctPrompts() {
        #expect(DemoCase.grid.count == 21)
        #expect(Set(DemoCase.grid.map(\.prompt)).count == 21)
        // The backgrounds rotate white, black, blue, yellow, …: the fourth case is orange on yellow.
        #expect(DemoCase.grid[0].prompt == "a red circle on a white background")
        #expect(DemoCase.grid.contains { $0.prompt == "an orange circle on a yellow background" })
    }

    /// img2img starts from a picture the prompt must change in every respect.
    @Test func contrastingCasesDifferInEveryRespect() {
        for c in DemoCase.grid {
            let other = c.contrastingCase
            #expect(DemoCase.grid.contains(other))
            #expect(other.colour != c.colour && other.shape != c.shape && other.background != c.background, "\(c) ← \(other)")
        }
    }

    /// The renderer draws the grid as the training data draws it: the measures read every case right.
    @Test func renderedGridPicturesAreReadRight() throws {
        var score = DemoScore()
        for c in DemoCase.grid {
            let picture = try DemoRenderer.render(c, size: 128)
            #expect(picture.width == 128 && picture.height == 128)
            score.judge(picture, c, label: c.prompt)
        }
        #expect(score.all == 21, "\(score)")
        #expect(throws: DemoEvaluationError.self) { try DemoRenderer.render(DemoCase(colour: "teal", shape: .star, background: "white")) }
    }

    /// Worked by hand on 1×1 pictures: |0−255| + |0−51| + 0 over 3 × 255 = 306/765 = 0.4.
    @Test func meanAbsoluteDifferenceByHand() throws {
        let black = try RGBImage(width: 1, height: 1, pixels: [0, 0, 0])
        let white = try RGBImage(width: 1, height: 1, pixels: [255, 255, 255])
        let red = try RGBImage(width: 1, height: 1, pixels: [255, 0, 0])
        let mixed = try RGBImage(width: 1, height: 1, pixels: [255, 51, 0])
        #expect(abs(try PictureDistance.meanAbsoluteDifference(black, mixed) - 0.4) < 1e-12)
        #expect(try PictureDistance.meanAbsoluteDifference(white, white) == 0)
        // Pairs: black–white 1, black–red 1/3, white–red 2/3; mean 2/3.
        #expect(abs(try #require(try PictureDistance.meanPairwise([black, white, red])) - 2.0 / 3) < 1e-12)
        #expect(try PictureDistance.meanPairwise([black]) == nil)
        #expect(throws: DemoEvaluationError.self) {
            try PictureDistance.meanAbsoluteDifference(black, try RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 0, 0, 0]))
        }
    }
}
