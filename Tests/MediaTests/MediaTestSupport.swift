import Foundation
@testable import Media

/// Fixture files from tools/make_image_fixtures.py (Pillow 13.0.0, diffusers 0.39.0).
enum ImageFixtures {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images", isDirectory: true)

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    /// The RGB bytes Pillow decoded (`name.npy`, uint8 (H, W, 3), e.g. `rgb.png.npy`) as an image.
    static func expected(_ name: String) throws -> RGBImage {
        let array = try NPYArray(url: url("\(name).npy"))
        guard array.descr == "|u1", array.shape.count == 3, array.shape[2] == 3 else {
            throw MediaError.invalidArgument("\(name).npy is \(array.descr) \(array.shape), not uint8 (H, W, 3)")
        }
        return try RGBImage(width: array.shape[1], height: array.shape[0], pixels: [UInt8](array.data))
    }
}

/// A minimal reader of NumPy's .npy format (version 1/2/3, C order, little-endian descr).
struct NPYArray {
    let descr: String
    let shape: [Int]
    let data: Data

    init(url: URL) throws {
        let bytes = try Data(contentsOf: url)
        func fail(_ why: String) -> MediaError { .invalidArgument("\(url.lastPathComponent): \(why)") }
        guard bytes.count >= 10, bytes.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else { throw fail("not .npy") }
        let major = bytes[bytes.startIndex + 6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw fail("short header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        }
        guard bytes.count >= headerStart + headerLength else { throw fail("short header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        func value(_ key: String, from open: Character, to close: Character) -> String? {
            guard let keyRange = header.range(of: "'\(key)':") else { return nil }
            let rest = header[keyRange.upperBound...]
            guard let start = rest.firstIndex(of: open) else { return nil }
            let afterOpen = rest.index(after: start)
            guard let end = rest[afterOpen...].firstIndex(of: close) else { return nil }
            return String(rest[afterOpen..<end])
        }
        guard let descr = value("descr", from: "'", to: "'"),
              let shapeText = value("shape", from: "(", to: ")") else { throw fail("no descr/shape") }
        guard header.contains("'fortran_order': False") else { throw fail("Fortran order") }
        self.descr = descr
        shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        data = bytes.subdata(in: (headerStart + headerLength)..<bytes.count)
        let itemSize = descr.hasSuffix("1") ? 1 : descr.hasSuffix("4") ? 4 : 8
        guard data.count == shape.reduce(1, *) * itemSize else { throw fail("data size does not match shape") }
    }

    var floats: [Float] {
        precondition(descr == "<f4", "not float32")
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }
}

/// A temporary folder removed when the value is released.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("MediaTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// Largest absolute per-byte difference and the mean absolute difference of two same-size images.
func difference(_ a: RGBImage, _ b: RGBImage) -> (max: Int, mean: Double) {
    guard a.width == b.width && a.height == b.height else { return (Int.max, .infinity) }
    var maxDiff = 0, total = 0
    for (x, y) in zip(a.pixels, b.pixels) {
        let d = abs(Int(x) - Int(y))
        maxDiff = max(maxDiff, d)
        total += d
    }
    return (maxDiff, Double(total) / Double(a.pixels.count))
}

/// CRC-32 (PNG's, zlib's), to build chunks with valid checksums.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// One PNG chunk: length, type, data, CRC.
func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let body = Array(type.utf8) + data
    return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
}

func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

/// A deterministic generator (SplitMix64) for the mutation tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random image: gradients plus uniform noise of +-`noise` per channel, or (`smooth: false`)
/// pure noise.
func testImage(width: Int, height: Int, seed: UInt64, smooth: Bool = true, noise amplitude: Int = 8) -> RGBImage {
    var rng = SplitMix64(state: seed)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<3 {
                let noise = Int(rng.next() % 256)
                let base = switch c {
                case 0: x * 255 / max(width - 1, 1)
                case 1: y * 255 / max(height - 1, 1)
                default: (x + y) * 255 / max(width + height - 2, 1)
                }
                let value = smooth ? UInt8(clamping: base + (noise - 128) * amplitude / 128) : UInt8(noise)
                pixels[(y * width + x) * 3 + c] = value
            }
        }
    }
    return RGBImage(unchecked: width, height, pixels)
}
