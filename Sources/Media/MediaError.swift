/// Everything that can go wrong reading, decoding, encoding or writing media. `file` names the
/// path, or the name the caller gave an in-memory buffer (`"<memory>"` by default).
public enum MediaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened or read (missing, a folder or device, over the size limit).
    case cannotRead(file: String, reason: String)
    /// The file could not be written.
    case cannotWrite(file: String, reason: String)
    /// Empty, or not starting with a PNG or JPEG signature.
    case notAnImage(file: String, reason: String)
    /// The decoder (libpng, libjpeg-turbo) rejected the data: truncated, bad CRC, bad markers...
    case corrupt(file: String, format: ImageFormat, reason: String)
    /// The header declares more pixels than `ImageIO.maxPixels`; nothing that size was allocated.
    case tooLarge(file: String, width: Int, height: Int, maxPixels: Int)
    /// A valid file this module does not handle (a CMYK JPEG, an unknown extension on write).
    case unsupported(file: String, reason: String)
    /// The encoder failed (e.g. dimensions beyond the format's limits).
    case encodingFailed(format: ImageFormat, reason: String)
    /// A caller passed an impossible value (pixel count mismatch, zero size, quality 0, ...).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason): "cannot read \(file): \(reason)"
        case let .cannotWrite(file, reason): "cannot write \(file): \(reason)"
        case let .notAnImage(file, reason): "\(file) is not a PNG or JPEG image: \(reason)"
        case let .corrupt(file, format, reason): "\(file): corrupt \(format.name) data: \(reason)"
        case let .tooLarge(file, width, height, maxPixels):
            "\(file): image is \(width)x\(height) pixels, over the limit of \(maxPixels) pixels"
        case let .unsupported(file, reason): "\(file): unsupported: \(reason)"
        case let .encodingFailed(format, reason): "cannot encode \(format.name): \(reason)"
        case let .invalidArgument(reason): "invalid argument: \(reason)"
        }
    }
}
