/// An 8-bit RGB image: `pixels` holds `width * height * 3` bytes, RGB interleaved, row-major,
/// top row first. Every decoded file becomes one of these (see `ImageIO`).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var pixels: [UInt8]

    /// Checks that both sides are positive and that `pixels` holds exactly `width * height * 3` bytes.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        let count = try Self.byteCount(width: width, height: height)
        guard pixels.count == count else {
            throw MediaError.invalidArgument("\(width)x\(height) RGB image needs \(count) bytes, got \(pixels.count)")
        }
        self.init(unchecked: width, height, pixels)
    }

    /// A solid-colour image.
    public init(width: Int, height: Int, red: UInt8 = 0, green: UInt8 = 0, blue: UInt8 = 0) throws {
        let count = try Self.byteCount(width: width, height: height)
        var pixels = [UInt8](repeating: 0, count: count)
        for i in stride(from: 0, to: count, by: 3) {
            pixels[i] = red
            pixels[i + 1] = green
            pixels[i + 2] = blue
        }
        self.init(unchecked: width, height, pixels)
    }

    /// For the module's own code, which has already checked the sizes.
    init(unchecked width: Int, _ height: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    static func byteCount(width: Int, height: Int) throws -> Int {
        guard width > 0, height > 0 else {
            throw MediaError.invalidArgument("image size must be positive, got \(width)x\(height)")
        }
        let (pixelCount, o1) = width.multipliedReportingOverflow(by: height)
        let (bytes, o2) = pixelCount.multipliedReportingOverflow(by: 3)
        guard !o1, !o2 else { throw MediaError.invalidArgument("image size \(width)x\(height) overflows") }
        return bytes
    }

    /// The (red, green, blue) bytes of one pixel; `x` and `y` must be inside the image.
    public func pixel(x: Int, y: Int) -> (red: UInt8, green: UInt8, blue: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

// MARK: - Conversions to and from the models' float layout

extension RGBImage {
    /// `byte -> 2 * (byte / 255) - 1` in Float32, exactly diffusers' `VaeImageProcessor.preprocess`
    /// (`pil_to_numpy`: `np.array(img).astype(np.float32) / 255.0`, then `normalize`: `2.0 * x - 1.0`).
    static let normalizedByteTable: [Float] = (0..<256).map { 2 * (Float($0) / 255) - 1 }

    /// The image as NHWC floats in [-1, 1] (`height * width * 3` values, batch of one implied).
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: pixels.count) { buffer, count in
            writeFloats(into: buffer)
            count = pixels.count
        }
    }

    /// As `floats()`, into a caller's buffer of exactly `width * height * 3` floats (no allocation,
    /// for the per-frame path).
    public func floats(into buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard buffer.count == pixels.count else {
            throw MediaError.invalidArgument("float buffer holds \(buffer.count) values, image needs \(pixels.count)")
        }
        writeFloats(into: buffer)
    }

    private func writeFloats(into buffer: UnsafeMutableBufferPointer<Float>) {
        Self.normalizedByteTable.withUnsafeBufferPointer { table in
            pixels.withUnsafeBufferPointer { bytes in
                for i in 0..<bytes.count { buffer[i] = table[Int(bytes[i])] }
            }
        }
    }

    /// From NHWC floats (`height * width * 3`, nominally in [-1, 1]) exactly as diffusers'
    /// `VaeImageProcessor.postprocess(..., output_type="pil")` does it in Float32:
    /// `denormalize`: `(x * 0.5 + 0.5).clamp(0, 1)`, then `numpy_to_pil`: `(v * 255).round()`, where
    /// numpy rounds halves to even. Out-of-range values clamp; NaN becomes 0 (numpy's cast of NaN
    /// to uint8 is undefined; this picks the value x86 gives).
    public init(floats: [Float], width: Int, height: Int) throws {
        self = try floats.withUnsafeBufferPointer { try RGBImage(floats: $0, width: width, height: height) }
    }

    /// As `init(floats:width:height:)`, reading a caller's buffer.
    public init(floats: UnsafeBufferPointer<Float>, width: Int, height: Int) throws {
        let count = try Self.byteCount(width: width, height: height)
        guard floats.count == count else {
            throw MediaError.invalidArgument("\(width)x\(height) image needs \(count) floats, got \(floats.count)")
        }
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = Self.byte(fromNormalized: floats[i]) }
            initialized = count
        }
        self.init(unchecked: width, height, pixels)
    }

    /// One value of the postprocess mapping (see `init(floats:width:height:)`).
    @inline(__always)
    static func byte(fromNormalized x: Float) -> UInt8 {
        var v = x * 0.5 + 0.5
        if !(v > 0) { v = 0 }  // also NaN
        if v > 1 { v = 1 }
        return UInt8((v * 255).rounded(.toNearestOrEven))
    }
}
