import Foundation
import Testing
@testable import Media

@Suite struct JPEGTests {
    let io = ImageIO()

    /// Debian's libjpeg-turbo 2.1.5 and the 3.2.0 inside Pillow's wheel run the same accurate
    /// integer IDCT and fancy upsampling, so the pixels are identical: the tolerance is zero.
    @Test(arguments: ["baseline420", "baseline422", "baseline444", "progressive", "gray", "pillow_q95"])
    func decodesLikePillow(_ name: String) throws {
        let image = try io.read(url: ImageFixtures.url("\(name).jpg"))
        let expected = try ImageFixtures.expected("\(name).jpg")
        #expect(image.width == expected.width && image.height == expected.height)
        #expect(image == expected, "max diff \(difference(image, expected).max)")
    }

    /// Quality 95, 4:2:0 (Pillow's defaults at quality=95) encodes to the pixels Pillow's encoder
    /// gives: same library family, same accurate DCT, same quantisation tables.
    @Test func encodesLikePillowAtQuality95() throws {
        let source = try io.read(url: ImageFixtures.url("encode_source.png"))
        let ours = try io.decode(data: try io.encode(source, format: .jpeg))
        let pillows = try io.read(url: ImageFixtures.url("pillow_q95.jpg"))
        #expect(ours == pillows, "max diff \(difference(ours, pillows).max)")
    }

    /// Lossy round trips stay within stated bounds, on a 48x40 gradient with +-2 noise: quality 95
    /// 4:2:0 (the defaults): mean |diff| <= 1.5, max |diff| <= 12 (measured 0.94 and 6); quality 100
    /// 4:4:4: mean <= 1, max <= 6 (measured 0.49 and 4: colour conversion and DCT rounding only).
    @Test func roundTripWithinTolerance() throws {
        let image = testImage(width: 48, height: 40, seed: 7, noise: 2)
        let data = try io.encode(image, format: .jpeg)
        #expect(Array(data.prefix(3)) == [0xFF, 0xD8, 0xFF])
        let back = try io.decode(data: data)
        let d = difference(image, back)
        #expect(d.mean <= 1.5 && d.max <= 12, "mean \(d.mean) max \(d.max)")

        var best = ImageIO()
        best.jpegSubsampling = .yuv444
        let fine = try best.decode(data: try best.encode(image, format: .jpeg, quality: 100))
        let e = difference(image, fine)
        #expect(e.mean <= 1 && e.max <= 6, "mean \(e.mean) max \(e.max)")

        let small = try io.encode(image, format: .jpeg, quality: 20)
        #expect(small.count < data.count)
    }

    @Test func writesByExtensionAndReadsByContent() throws {
        let folder = try TemporaryFolder()
        let image = testImage(width: 16, height: 16, seed: 8, noise: 2)
        for name in ["a.jpg", "b.jpeg", "c.JPG"] {
            try io.write(image, to: folder.file(name), quality: 90)
            let data = try Data(contentsOf: folder.file(name))
            #expect(Array(data.prefix(3)) == [0xFF, 0xD8, 0xFF])
            let d = difference(try io.read(url: folder.file(name)), image)
            #expect(d.mean < 3, "mean \(d.mean)")  // measured 2.04: a steep 16x16 gradient at quality 90
        }
        // The extension is ignored when reading: a PNG named .jpg is read as PNG.
        let png = try io.encode(image, format: .png)
        try png.write(to: folder.file("really-a-png.jpg"))
        #expect(try io.read(url: folder.file("really-a-png.jpg")) == image)
    }

    @Test func rejectsBadQualityAndUnknownExtensions() throws {
        let image = testImage(width: 4, height: 4, seed: 9)
        for quality in [0, 101, -5] {
            #expect(throws: MediaError.self) { try io.encode(image, format: .jpeg, quality: quality) }
        }
        let folder = try TemporaryFolder()
        #expect(throws: MediaError.unsupported(file: folder.file("x.webp").path,
                                              reason: "unknown image extension 'webp' (use .png, .jpg or .jpeg)")) {
            try io.write(image, to: folder.file("x.webp"))
        }
        #expect(throws: MediaError.self) { try io.write(image, to: folder.file("noextension")) }
    }
}
