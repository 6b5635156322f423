import CPNGShim
import Foundation

/// PNG through libpng, via the C shim (which owns every setjmp: see png_shim.c).
enum PNGCodec {
    private static let messageCapacity = 256

    /// Decodes to 8-bit RGB as Pillow's `Image.open(...).convert("RGB")` would, except 16-bit
    /// grayscale: Pillow clips those samples to 255 (its I;16 -> L conversion), this keeps the
    /// high byte as for every other 16-bit type. Sizes are checked before any pixel allocation.
    static func decode(_ bytes: UnsafeRawBufferPointer, name: String, maxPixels: Int) throws -> RGBImage {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw MediaError.notAnImage(file: name, reason: "empty (0 bytes)")
        }
        var message = [CChar](repeating: 0, count: messageCapacity)
        var width: UInt32 = 0
        var height: UInt32 = 0
        let status = sdpng_read_size(base, bytes.count, &width, &height, &message, messageCapacity)
        try check(status, message, name: name)
        let (w, h) = (Int(width), Int(height))
        guard w > 0, h > 0 else {
            throw MediaError.corrupt(file: name, format: .png, reason: "zero image size \(w)x\(h)")
        }
        guard w * h <= maxPixels else {  // both < 2^31: no overflow
            throw MediaError.tooLarge(file: name, width: w, height: h, maxPixels: maxPixels)
        }
        var decodeStatus = SDPNG_OK
        let pixels = [UInt8](unsafeUninitializedCapacity: w * h * 3) { buffer, count in
            decodeStatus = sdpng_decode_rgb8(base, bytes.count, buffer.baseAddress, width, height,
                                             &message, messageCapacity)
            count = decodeStatus == SDPNG_OK ? w * h * 3 : 0
        }
        try check(decodeStatus, message, name: name)
        return RGBImage(unchecked: w, h, pixels)
    }

    /// A non-interlaced 8-bit RGB PNG at zlib `level` (0...9).
    static func encode(_ image: RGBImage, level: Int) throws -> Data {
        guard (0...9).contains(level) else {
            throw MediaError.invalidArgument("PNG compression level must be in 0...9, got \(level)")
        }
        guard let width = UInt32(exactly: image.width), let height = UInt32(exactly: image.height) else {
            throw MediaError.encodingFailed(format: .png, reason: "image is \(image.width)x\(image.height) pixels")
        }
        var message = [CChar](repeating: 0, count: messageCapacity)
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            sdpng_encode_rgb8(pixels.baseAddress, width, height, Int32(level), &out, &size, &message, messageCapacity)
        }
        defer { sdpng_free(out) }
        guard status == SDPNG_OK, let out else {
            throw MediaError.encodingFailed(format: .png, reason: cString(message))
        }
        return Data(bytes: out, count: size)
    }

    private static func check(_ status: sdpng_status, _ message: [CChar], name: String) throws {
        switch status {
        case SDPNG_OK: return
        case SDPNG_NOT_PNG: throw MediaError.notAnImage(file: name, reason: cString(message))
        default: throw MediaError.corrupt(file: name, format: .png, reason: cString(message))
        }
    }
}

/// The text of a NUL-terminated C buffer (invalid UTF-8 repaired).
func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
