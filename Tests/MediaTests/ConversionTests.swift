import Foundation
import Testing
@testable import Media

/// `floats()` / `init(floats:)` against diffusers' `VaeImageProcessor` (0.39.0) run on the fixtures.
@Suite struct ConversionTests {
    /// postprocess: `(x * 0.5 + 0.5).clamp(0, 1)`, `(v * 255).round()` (half to even). Inputs sit on
    /// and one ulp either side of every rounding boundary, plus out-of-range values and infinities.
    @Test func floatsToImageMatchesDiffusersPostprocess() throws {
        let input = try NPYArray(url: ImageFixtures.url("post_input.npy"))
        #expect(input.shape == [16, 64, 3])
        let image = try RGBImage(floats: input.floats, width: 64, height: 16)
        #expect(image == (try ImageFixtures.expected("post_expected")))
    }

    /// preprocess: `2 * (byte / 255) - 1` in Float32, bit for bit.
    @Test func imageToFloatsMatchesDiffusersPreprocess() throws {
        let image = try ImageIO().read(url: ImageFixtures.url("pre_source.png"))
        let expected = try NPYArray(url: ImageFixtures.url("pre_expected.npy"))
        #expect(expected.shape == [16, 16, 3])
        let floats = image.floats()
        #expect(floats.map(\.bitPattern) == expected.floats.map(\.bitPattern))
        var buffer = [Float](repeating: .nan, count: floats.count)
        try buffer.withUnsafeMutableBufferPointer { try image.floats(into: $0) }
        #expect(buffer == floats)
        #expect(throws: MediaError.self) {
            var short = [Float](repeating: 0, count: 5)
            try short.withUnsafeMutableBufferPointer { try image.floats(into: $0) }
        }
    }

    @Test func everyByteSurvivesTheRoundTrip() throws {
        var bytes: [UInt8] = []
        for v in 0..<256 { bytes += [UInt8(v), UInt8(255 - v), UInt8((v * 7) % 256)] }
        let image = try RGBImage(width: 16, height: 16, pixels: bytes)
        #expect(try RGBImage(floats: image.floats(), width: 16, height: 16) == image)
    }

    @Test func edgeValues() throws {
        let values: [Float] = [.nan, -.nan, .infinity, -.infinity, -1, 1, 0, 2, -2, .ulpOfOne, -Float.ulpOfOne]
        let image = try RGBImage(floats: values + [0], width: 2, height: 2)
        #expect(image.pixels == [0, 0, 255, 0, 0, 255, 128, 255, 0, 128, 127, 128])
        // The boundary 127.5 / 255 rounds to even (128); 0.5/255 -> 0, 1.5/255 -> 2.
        let half: [Float] = [0.5, 1.5, 2.5].map { $0 / 255 * 2 - 1 }
        let ref = half.map { v -> UInt8 in
            let x = (v * 0.5 + 0.5) * 255
            return UInt8(x.rounded(.toNearestOrEven))
        }
        #expect(try RGBImage(floats: half, width: 1, height: 1).pixels == ref)
    }

    @Test func sizesAreChecked() {
        #expect(throws: MediaError.self) { try RGBImage(floats: [0, 0, 0], width: 2, height: 1) }
        #expect(throws: MediaError.self) { try RGBImage(floats: [], width: 0, height: 0) }
        #expect(throws: MediaError.self) { try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]) }
        #expect(throws: MediaError.self) { try RGBImage(width: -1, height: 2, pixels: []) }
        #expect(throws: MediaError.self) { try RGBImage(width: Int.max, height: 2) }
    }
}
