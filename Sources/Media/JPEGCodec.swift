import CTurboJPEG
import Foundation

/// JPEG through libjpeg-turbo's TurboJPEG API, which reports errors as return codes.
///
/// Decoding uses the accurate integer IDCT and fancy (smooth) chroma upsampling, which are
/// libjpeg's defaults and so what Pillow uses: the same library gives the same pixels.
/// Progressive files are limited to 500 scans (`TJFLAG_LIMITSCANS`), so a small file cannot make
/// the decoder loop for minutes.
enum JPEGCodec {
    static func decode(_ bytes: UnsafeRawBufferPointer, name: String, maxPixels: Int,
                       warningsAreErrors: Bool) throws -> RGBImage {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw MediaError.notAnImage(file: name, reason: "empty (0 bytes)")
        }
        guard let handle = tjInitDecompress() else {
            throw MediaError.corrupt(file: name, format: .jpeg, reason: "cannot create a TurboJPEG decoder")
        }
        defer { tjDestroy(handle) }
        let size = UInt(bytes.count)
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, base, size, &width, &height, &subsampling, &colorspace) == 0 else {
            throw MediaError.corrupt(file: name, format: .jpeg, reason: errorText(handle))
        }
        if colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue) {
            throw MediaError.unsupported(file: name, reason: "CMYK/YCCK JPEG (only grayscale and YCbCr/RGB are read)")
        }
        let (w, h) = (Int(width), Int(height))
        guard w > 0, h > 0 else {
            throw MediaError.corrupt(file: name, format: .jpeg, reason: "zero image size \(w)x\(h)")
        }
        guard w * h <= maxPixels else {  // both <= 65535: no overflow
            throw MediaError.tooLarge(file: name, width: w, height: h, maxPixels: maxPixels)
        }
        // Warnings are libjpeg's word for recoverable damage (premature end of data, bad Huffman
        // code, extraneous bytes): the decoder goes on and fills the rest with grey. In strict mode
        // the first one stops decoding and fails, as Pillow fails on a truncated file.
        var flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS
        if warningsAreErrors { flags |= TJFLAG_STOPONWARNING }
        var failure: String?
        let pixels = [UInt8](unsafeUninitializedCapacity: w * h * 3) { buffer, count in
            let rc = tjDecompress2(handle, base, size, buffer.baseAddress, width, 0, height,
                                   Int32(TJPF_RGB.rawValue), flags)
            if rc != 0 && (warningsAreErrors || tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue)) {
                failure = errorText(handle)
                count = 0
            } else {
                count = w * h * 3
            }
        }
        if let failure {
            throw MediaError.corrupt(file: name, format: .jpeg, reason: failure)
        }
        return RGBImage(unchecked: w, h, pixels)
    }

    /// Baseline JPEG (JFIF), accurate integer DCT (as Pillow; TurboJPEG's own default is the fast one).
    static func encode(_ image: RGBImage, quality: Int, subsampling: JPEGSubsampling) throws -> Data {
        guard (1...100).contains(quality) else {
            throw MediaError.invalidArgument("JPEG quality must be in 1...100, got \(quality)")
        }
        guard image.width <= 65535, image.height <= 65535 else {
            throw MediaError.encodingFailed(
                format: .jpeg, reason: "JPEG allows at most 65535x65535 pixels, image is \(image.width)x\(image.height)")
        }
        guard let handle = tjInitCompress() else {
            throw MediaError.encodingFailed(format: .jpeg, reason: "cannot create a TurboJPEG encoder")
        }
        defer { tjDestroy(handle) }
        let sampling: TJSAMP = switch subsampling {
        case .yuv444: TJSAMP_444
        case .yuv422: TJSAMP_422
        case .yuv420: TJSAMP_420
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let rc = image.pixels.withUnsafeBufferPointer { pixels in
            tjCompress2(handle, pixels.baseAddress, Int32(image.width), 0, Int32(image.height),
                        Int32(TJPF_RGB.rawValue), &out, &size, Int32(sampling.rawValue), Int32(quality),
                        TJFLAG_ACCURATEDCT)
        }
        defer { if let out { tjFree(out) } }
        guard rc == 0, let out else {
            throw MediaError.encodingFailed(format: .jpeg, reason: errorText(handle))
        }
        return Data(bytes: out, count: Int(size))
    }

    private static func errorText(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "unknown libjpeg-turbo error" }
        return String(cString: text)
    }
}
