import Foundation
import Testing
@testable import Media

@Suite struct PNGTests {
    let io = ImageIO()

    /// Every PNG flavour decodes to exactly the bytes Pillow's `convert("RGB")` gives, except
    /// gray16 whose expected bytes are the high byte (Pillow clips I;16 to 255; see PNGCodec).
    @Test(arguments: ["rgb", "rgba", "gray", "gray1", "gray2", "la", "palette4", "palette8", "palette_trns",
                      "gray16", "rgb16", "rgba16", "la16", "interlaced", "interlaced16", "gamma"])
    func decodesLikePillow(_ name: String) throws {
        let image = try io.read(url: ImageFixtures.url("\(name).png"))
        let expected = try ImageFixtures.expected("\(name).png")
        #expect(image.width == 17 && image.height == 13)
        #expect(image == expected, "max diff \(difference(image, expected).max)")
    }

    @Test func roundTripIsLossless() throws {
        for (w, h, seed) in [(1, 1, 1), (17, 13, 2), (64, 3, 3), (3, 64, 4)] as [(Int, Int, UInt64)] {
            let image = testImage(width: w, height: h, seed: seed, smooth: false)
            for level in [0, 1, 6, 9] {
                var io = ImageIO()
                io.pngCompressionLevel = level
                let data = try io.encode(image, format: .png)
                #expect(Array(data.prefix(8)) == pngSignature)
                #expect(try io.decode(data: data) == image)
            }
        }
    }

    @Test func writesAndReadsFilesByExtension() throws {
        let folder = try TemporaryFolder()
        let image = testImage(width: 9, height: 7, seed: 5, smooth: false)
        for name in ["a.png", "b.PNG"] {
            try io.write(image, to: folder.file(name))
            #expect(try io.read(url: folder.file(name)) == image)
        }
        try image.write(to: folder.file("c.png"))
        #expect(try RGBImage(contentsOf: folder.file("c.png")) == image)
    }

    @Test func encodingRejectsABadCompressionLevel() throws {
        var io = ImageIO()
        io.pngCompressionLevel = 10
        #expect(throws: MediaError.self) { try io.encode(testImage(width: 2, height: 2, seed: 1), format: .png) }
    }

    /// Chunks after the image data, or a missing IEND, do not matter once the pixels are complete.
    @Test func missingTrailerStillDecodes() throws {
        let data = try ImageFixtures.data("rgb.png")
        let iend = pngChunk("IEND", [])
        #expect(Array(data.suffix(iend.count)) == iend)
        let image = try io.decode(data: data.dropLast(iend.count))
        #expect(image == (try ImageFixtures.expected("rgb.png")))
    }
}
