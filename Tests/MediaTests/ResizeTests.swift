import Foundation
import Testing
@testable import Media

@Suite struct ResizeTests {
    static let sizes = [(11, 9), (37, 29), (23, 8), (5, 17), (64, 3), (17, 5), (30, 10), (18, 4)]

    /// Pillow 13.0.0's `Image.resize((w, h), filter)` on a 23x17 RGB image, down, up and mixed:
    /// identical bytes (tolerance 0), since the fixed-point arithmetic and pass order are Pillow's.
    @Test(arguments: [("box", ResizeFilter.box), ("bilinear", .bilinear), ("hamming", .hamming),
                      ("bicubic", .bicubic), ("lanczos", .lanczos)])
    func matchesPillow(_ name: String, _ filter: ResizeFilter) throws {
        let source = try ImageIO().read(url: ImageFixtures.url("resize_source.png"))
        #expect(source.width == 23 && source.height == 17)
        for (w, h) in Self.sizes {
            let ours = try source.resized(width: w, height: h, filter: filter)
            let pillow = try ImageFixtures.expected("resize_\(name)_\(w)x\(h)")
            #expect(ours == pillow, "\(name) \(w)x\(h): max diff \(difference(ours, pillow).max)")
        }
    }

    @Test func sameSizeIsIdentityAndConstantStaysConstant() throws {
        let image = testImage(width: 13, height: 7, seed: 3, smooth: false)
        #expect(try image.resized(width: 13, height: 7) == image)
        let grey = try RGBImage(width: 10, height: 6, red: 200, green: 17, blue: 255)
        for filter in ResizeFilter.allCases {
            for (w, h) in [(3, 2), (31, 9), (10, 1), (1, 1)] {
                #expect(try grey.resized(width: w, height: h, filter: filter)
                        == RGBImage(width: w, height: h, red: 200, green: 17, blue: 255))
            }
        }
        #expect(throws: MediaError.self) { try image.resized(width: 0, height: 4) }
    }

    @Test func cropAndCenterCrop() throws {
        let image = testImage(width: 8, height: 6, seed: 4, smooth: false)
        let crop = try image.cropped(x: 2, y: 1, width: 3, height: 4)
        #expect(crop.width == 3 && crop.height == 4)
        for y in 0..<4 {
            for x in 0..<3 { #expect(crop.pixel(x: x, y: y) == image.pixel(x: x + 2, y: y + 1)) }
        }
        #expect(throws: MediaError.self) { try image.cropped(x: 6, y: 0, width: 3, height: 1) }
        #expect(throws: MediaError.self) { try image.cropped(x: -1, y: 0, width: 3, height: 1) }

        // 8x6 to square: the middle 6x6 (x from 1). To 16:9 (8 x 4.5 -> 8x5 rounded): y from 0.
        #expect(try image.centerCropped(aspectWidth: 1, aspectHeight: 1) == image.cropped(x: 1, y: 0, width: 6, height: 6))
        #expect(try image.centerCropped(aspectWidth: 16, aspectHeight: 9) == image.cropped(x: 0, y: 0, width: 8, height: 5))
        #expect(try image.centerCropped(aspectWidth: 4, aspectHeight: 3) == image)
        // 640x480 webcam frame to 512x512: a 480x480 centre crop from x = 80.
        let frame = try RGBImage(width: 640, height: 480)
        let square = try frame.centerCropped(aspectWidth: 512, aspectHeight: 512)
        #expect(square.width == 480 && square.height == 480)
        let filled = try frame.resizedToFill(width: 512, height: 512)
        #expect(filled.width == 512 && filled.height == 512)
        #expect(throws: MediaError.self) { try image.centerCropped(aspectWidth: 0, aspectHeight: 1) }
    }

    @Test func resizeToFillEqualsCropThenResize() throws {
        let image = testImage(width: 40, height: 30, seed: 5)
        let filled = try image.resizedToFill(width: 16, height: 16, filter: .bicubic)
        #expect(filled == (try image.cropped(x: 5, y: 0, width: 30, height: 30).resized(width: 16, height: 16, filter: .bicubic)))
    }
}
