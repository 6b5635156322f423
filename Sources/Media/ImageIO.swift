import Foundation

/// Reads and writes PNG and JPEG files and buffers as `RGBImage`.
///
/// Reading detects the format from the first bytes, never the extension. Whatever the file holds
/// (grayscale, palette, RGBA, 16-bit, interlaced PNG; baseline, progressive, grayscale JPEG)
/// comes back as 8-bit RGB, with Pillow's `convert("RGB")` semantics: alpha is dropped, not
/// composited; palette transparency is ignored; 16-bit samples keep their high byte; gamma and
/// ICC profiles are not applied; EXIF orientation is not applied (as `Image.open`).
///
/// Outside input never crashes, hangs or over-allocates: the file must be a regular file of at
/// most `maxFileBytes`, and a header declaring more than `maxPixels` pixels is refused before the
/// pixel buffer is allocated. Every failure is a `MediaError` naming the file.
public struct ImageIO: Sendable {
    /// 64 megapixels (2^26): an 8192x8192 image, 192 MiB as RGB.
    public static let defaultMaxPixels = 1 << 26

    /// Largest decoded image accepted, in pixels.
    public var maxPixels: Int
    /// Largest file `read(url:)` opens, in bytes (default 256 MiB).
    public var maxFileBytes: Int = 256 << 20
    /// zlib level for PNG output, 0 (store) ... 9 (smallest); libpng's default is 6.
    public var pngCompressionLevel: Int = 6
    /// Chroma subsampling for JPEG output; 4:2:0 as Pillow's default.
    public var jpegSubsampling: JPEGSubsampling = .yuv420
    /// When true (the default), any libjpeg warning (premature end of data, corrupt entropy data)
    /// fails the decode; when false such a JPEG decodes, its damaged part grey, as libjpeg leaves it.
    public var jpegWarningsAreErrors: Bool = true

    public init(maxPixels: Int = ImageIO.defaultMaxPixels) {
        self.maxPixels = maxPixels
    }

    // MARK: Files

    /// Decodes the PNG or JPEG file at `url` (a file URL).
    public func read(url: URL) throws -> RGBImage {
        let data = try readFile(url)
        return try decode(data: data, name: url.path)
    }

    /// Encodes `image` in the format the extension names (`.png`, `.jpg`, `.jpeg`) and writes it
    /// atomically. `quality` (1...100) applies to JPEG only.
    public func write(_ image: RGBImage, to url: URL, quality: Int = 95) throws {
        guard let format = ImageFormat(pathExtension: url.pathExtension) else {
            throw MediaError.unsupported(
                file: url.path, reason: "unknown image extension '\(url.pathExtension)' (use .png, .jpg or .jpeg)")
        }
        let data = try encode(image, format: format, quality: quality)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw MediaError.cannotWrite(file: url.path, reason: error.localizedDescription)
        }
    }

    // MARK: Memory

    /// Decodes a PNG or JPEG held in memory (for example a frame from the live server). `name`
    /// goes into error messages.
    public func decode(data: some ContiguousBytes, name: String = "<memory>") throws -> RGBImage {
        try data.withUnsafeBytes { bytes in
            guard !bytes.isEmpty else { throw MediaError.notAnImage(file: name, reason: "empty (0 bytes)") }
            switch ImageFormat(sniffing: bytes) {
            case .png:
                return try PNGCodec.decode(bytes, name: name, maxPixels: maxPixels)
            case .jpeg:
                return try JPEGCodec.decode(bytes, name: name, maxPixels: maxPixels,
                                            warningsAreErrors: jpegWarningsAreErrors)
            case nil:
                let head = bytes.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
                throw MediaError.notAnImage(file: name, reason: "unknown signature \(head)")
            }
        }
    }

    /// Encodes `image` as PNG or JPEG; `quality` (1...100) applies to JPEG only.
    public func encode(_ image: RGBImage, format: ImageFormat, quality: Int = 95) throws -> Data {
        switch format {
        case .png: try PNGCodec.encode(image, level: pngCompressionLevel)
        case .jpeg: try JPEGCodec.encode(image, quality: quality, subsampling: jpegSubsampling)
        }
    }

    // MARK: -

    /// The whole file, after checking that it is a regular file (not a folder, FIFO or device
    /// such as /dev/zero, which would never end) within the size limit. The read itself is bounded
    /// too, in case the file grows after the check.
    private func readFile(_ url: URL) throws -> Data {
        let name = url.path
        guard url.isFileURL else { throw MediaError.cannotRead(file: url.absoluteString, reason: "not a file URL") }
        let resolved = url.resolvingSymlinksInPath()
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: resolved.path)
        } catch {
            let exists = FileManager.default.fileExists(atPath: resolved.path)
            throw MediaError.cannotRead(file: name, reason: exists ? error.localizedDescription : "no such file")
        }
        guard (attributes[.type] as? FileAttributeType) == .typeRegular else {
            throw MediaError.cannotRead(file: name, reason: "not a regular file")
        }
        let tooBig = MediaError.cannotRead(file: name, reason: "file is over the limit of \(maxFileBytes) bytes")
        guard ((attributes[.size] as? NSNumber)?.intValue ?? 0) <= maxFileBytes else { throw tooBig }
        let data: Data
        do {
            let handle = try FileHandle(forReadingFrom: resolved)
            defer { try? handle.close() }
            data = try handle.read(upToCount: maxFileBytes + 1) ?? Data()
        } catch {
            throw MediaError.cannotRead(file: name, reason: error.localizedDescription)
        }
        guard data.count <= maxFileBytes else { throw tooBig }
        return data
    }
}

extension RGBImage {
    /// Reads a PNG or JPEG file with the default `ImageIO` settings.
    public init(contentsOf url: URL) throws {
        self = try ImageIO().read(url: url)
    }

    /// Writes a PNG or JPEG file (by extension) with the default `ImageIO` settings.
    public func write(to url: URL, quality: Int = 95) throws {
        try ImageIO().write(self, to: url, quality: quality)
    }
}
