import Foundation
import Testing
@testable import Media

/// Bad input gives a typed error naming its source: never a crash, hang or huge allocation.
@Suite struct RobustnessTests {
    let io = ImageIO()

    /// The error's file/name, whatever the case.
    private func file(of error: MediaError) -> String? {
        switch error {
        case let .cannotRead(file, _), let .cannotWrite(file, _), let .notAnImage(file, _),
             let .corrupt(file, _, _), let .tooLarge(file, _, _, _), let .unsupported(file, _):
            file
        case .encodingFailed, .invalidArgument: nil
        }
    }

    private func decodeError(_ bytes: [UInt8], name: String = "frame") -> MediaError? {
        do {
            _ = try io.decode(data: bytes, name: name)
            return nil
        } catch let error as MediaError {
            return error
        } catch {
            Issue.record("not a MediaError: \(error)")
            return nil
        }
    }

    @Test func emptyAndNonImageInputs() throws {
        #expect(decodeError([], name: "empty") == .notAnImage(file: "empty", reason: "empty (0 bytes)"))
        #expect(decodeError(Array("hello, world".utf8), name: "text")
            == .notAnImage(file: "text", reason: "unknown signature 68 65 6C 6C 6F 2C 20 77"))
        #expect(decodeError([0x89, 0x50], name: "short") == .notAnImage(file: "short", reason: "unknown signature 89 50"))
        // Signatures alone.
        guard case .corrupt(_, .png, _) = decodeError(pngSignature) else { Issue.record("PNG signature alone"); return }
        guard case .corrupt(_, .jpeg, _) = decodeError([0xFF, 0xD8, 0xFF]) else { Issue.record("SOI alone"); return }
    }

    @Test(arguments: ["rgb.png", "interlaced16.png", "palette_trns.png", "baseline420.jpg", "progressive.jpg", "gray.jpg"])
    func everyTruncationFails(_ name: String) throws {
        let data = [UInt8](try ImageFixtures.data(name))
        // PNG: everything up to the end of the last IDAT is needed (the IEND chunk is not, see
        // PNGTests). JPEG: everything up to the EOI marker's start, the last 2 bytes.
        let needed = name.hasSuffix(".png") ? data.count - 12 : data.count - 2
        for length in 0..<needed {
            let error = decodeError(Array(data.prefix(length)), name: name)
            #expect(error != nil, "\(name) truncated to \(length) bytes decoded")
            if let error { #expect(file(of: error) == name) }
        }
    }

    @Test func lenientJPEGDecodesATruncatedFile() throws {
        let data = [UInt8](try ImageFixtures.data("baseline420.jpg"))
        var lenient = ImageIO()
        lenient.jpegWarningsAreErrors = false
        let image = try lenient.decode(data: Array(data.prefix(data.count * 3 / 4)))
        #expect(image.width == 19 && image.height == 13)
        #expect(decodeError(Array(data.prefix(data.count * 3 / 4))) != nil)
    }

    @Test func hugeDimensionsAreRefusedBeforeAllocating() throws {
        let huge = [UInt8](try ImageFixtures.data("huge_dims.png"))
        #expect(decodeError(huge, name: "huge") == .tooLarge(file: "huge", width: 100_000, height: 100_000,
                                                           maxPixels: ImageIO.defaultMaxPixels))
        // PNG's own maximum, 2^31 - 1 per side, built here with a valid CRC.
        let ihdr = bigEndian(0x7FFF_FFFF) + bigEndian(0x7FFF_FFFF) + [8, 2, 0, 0, 0]
        let png = pngSignature + pngChunk("IHDR", ihdr) + pngChunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
            + pngChunk("IEND", [])
        #expect(decodeError(png) == .tooLarge(file: "frame", width: 0x7FFF_FFFF, height: 0x7FFF_FFFF,
                                              maxPixels: ImageIO.defaultMaxPixels))
        // JPEG: rewrite the SOF0 size fields of a real file to 65000 x 65000.
        var jpeg = [UInt8](try ImageFixtures.data("baseline420.jpg"))
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg[sof + 5] = 0xFD; jpeg[sof + 6] = 0xE8; jpeg[sof + 7] = 0xFD; jpeg[sof + 8] = 0xE8
        #expect(decodeError(jpeg) == .tooLarge(file: "frame", width: 65000, height: 65000,
                                               maxPixels: ImageIO.defaultMaxPixels))
        // The limit is configurable: a 17x13 image is over a 100-pixel limit.
        var tight = ImageIO(maxPixels: 100)
        #expect(throws: MediaError.tooLarge(file: "small", width: 17, height: 13, maxPixels: 100)) {
            try tight.decode(data: try ImageFixtures.data("rgb.png"), name: "small")
        }
        tight.maxPixels = 221
        #expect(try tight.decode(data: try ImageFixtures.data("rgb.png")).width == 17)
    }

    @Test func zeroSizedHeadersFail() throws {
        let ihdr = bigEndian(0) + bigEndian(10) + [8, 2, 0, 0, 0]
        let png = pngSignature + pngChunk("IHDR", ihdr) + pngChunk("IEND", [])
        guard case .corrupt(file: "frame", format: .png, _) = decodeError(png) else { Issue.record("zero-width PNG"); return }
        var jpeg = [UInt8](try ImageFixtures.data("gray.jpg"))
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg[sof + 5] = 0; jpeg[sof + 6] = 0
        #expect(decodeError(jpeg) != nil)
    }

    @Test func badCRCInImageDataFails() throws {
        var data = [UInt8](try ImageFixtures.data("rgb.png"))
        let idat = try #require((0..<(data.count - 4)).first { Array(data[$0..<($0 + 4)]) == Array("IDAT".utf8) })
        data[idat + 10] ^= 0x55
        guard case .corrupt(_, .png, let reason) = decodeError(data) else { Issue.record("bad CRC decoded"); return }
        #expect(!reason.isEmpty)
    }

    @Test func cmykJPEGIsUnsupported() throws {
        #expect(throws: MediaError.unsupported(file: "cmyk", reason: "CMYK/YCCK JPEG (only grayscale and YCbCr/RGB are read)")) {
            try io.decode(data: try ImageFixtures.data("cmyk.jpg"), name: "cmyk")
        }
        // A SOF declaring 4 components in a gray file's single-component layout.
        var jpeg = [UInt8](try ImageFixtures.data("gray.jpg"))
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg[sof + 9] = 4
        #expect(decodeError(jpeg) != nil)
    }

    @Test func fileProblemsNameTheFile() throws {
        let folder = try TemporaryFolder()
        let missing = folder.file("missing.png")
        #expect(throws: MediaError.cannotRead(file: missing.path, reason: "no such file")) { try io.read(url: missing) }
        #expect(throws: MediaError.cannotRead(file: folder.url.path, reason: "not a regular file")) { try io.read(url: folder.url) }
        let zero = URL(fileURLWithPath: "/dev/zero")
        #expect(throws: MediaError.cannotRead(file: "/dev/zero", reason: "not a regular file")) { try io.read(url: zero) }
        let empty = folder.file("empty.png")
        try Data().write(to: empty)
        #expect(throws: MediaError.notAnImage(file: empty.path, reason: "empty (0 bytes)")) { try io.read(url: empty) }
        let text = folder.file("notes.jpg")
        try Data("not an image".utf8).write(to: text)
        #expect(throws: MediaError.self) { try io.read(url: text) }
        var small = ImageIO()
        small.maxFileBytes = 10
        let png = ImageFixtures.url("rgb.png")
        #expect(throws: MediaError.self) { try small.read(url: png) }
        // A symlink to a device is still refused.
        let link = folder.file("link.png")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: zero)
        #expect(throws: MediaError.cannotRead(file: link.path, reason: "not a regular file")) { try io.read(url: link) }
        // Writing into a folder that does not exist.
        let image = testImage(width: 2, height: 2, seed: 1)
        let nowhere = folder.file("no/such/folder/x.png")
        do {
            try io.write(image, to: nowhere)
            Issue.record("wrote into a missing folder")
        } catch let MediaError.cannotWrite(file, _) {
            #expect(file == nowhere.path)
        }
    }

    /// Random byte flips, insertions and cuts over every fixture: each decode succeeds or throws a
    /// MediaError (any crash or trap fails the whole test run). Deterministic seeds.
    @Test func mutatedFilesNeverCrash() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: ImageFixtures.folder.path)
            .filter { ($0.hasSuffix(".png") || $0.hasSuffix(".jpg")) && $0 != "huge_dims.png" }.sorted()
        #expect(names.count >= 20)
        var rng = SplitMix64(state: 2024)
        var decoded = 0, failed = 0
        for name in names {
            let original = [UInt8](try ImageFixtures.data(name))
            for _ in 0..<60 {
                var bytes = original
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let i = Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 4 {
                    case 0: bytes[i] ^= UInt8(1 << (rng.next() % 8))
                    case 1: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                    case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                    default: bytes.removeSubrange(i..<min(bytes.count, i + 1 + Int(rng.next() % 16)))
                    }
                    if bytes.isEmpty { break }
                }
                do {
                    let image = try io.decode(data: bytes, name: name)
                    #expect(image.pixels.count == image.width * image.height * 3)
                    decoded += 1
                } catch is MediaError {
                    failed += 1
                }
            }
        }
        #expect(decoded > 0 && failed > 0)
    }
}
