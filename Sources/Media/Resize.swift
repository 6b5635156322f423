import Foundation

/// Resampling filters, each Pillow's filter of the same name with the same support.
/// diffusers' `VaeImageProcessor` resizes with `.lanczos` (its `resample="lanczos"` default);
/// Pillow's own `Image.resize` default is `.bicubic`.
public enum ResizeFilter: Sendable, CaseIterable {
    case box       // support 0.5
    case bilinear  // triangle, support 1
    case hamming   // support 1
    case bicubic   // Keys cubic with a = -0.5, support 2
    case lanczos   // Lanczos-3, support 3

    var support: Double {
        switch self {
        case .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ t: Double) -> Double {
        switch self {
        case .box:
            return t > -0.5 && t <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(t)
            return x < 1 ? 1 - x : 0
        case .hamming:
            let x = abs(t)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            let px = x * Double.pi
            // Pillow writes the constants as C floats (0.54f, 0.46f): keep their exact values.
            return sin(px) / px * (Double(Float(0.54)) + Double(Float(0.46)) * cos(px))
        case .bicubic:
            let a = -0.5
            let x = abs(t)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            return t >= -3 && t < 3 ? Self.sinc(t) * Self.sinc(t / 3) : 0
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = x * Double.pi
        return sin(px) / px
    }
}

extension RGBImage {
    /// Resamples to `width` x `height` with Pillow's algorithm (`Image.resize(size, filter)`,
    /// libImaging/Resample.c as of Pillow 13.0): a separable convolution whose kernel widens by the
    /// scale factor when shrinking (so downscaling antialiases), with weights normalised per output
    /// pixel and quantised to 22-bit fixed point, and an 8-bit image between the two passes. Same
    /// integer arithmetic and the same pass order as Pillow 13, so the output matches it byte for
    /// byte (the tests check every filter). Pass order: horizontal first, except when the height
    /// shrinks by more than twice as many pixels as the width does (Pillow 13's rule; Pillow 12
    /// and earlier always went horizontal first, which differs by +-1 in those cases).
    public func resized(width: Int, height: Int, filter: ResizeFilter = .lanczos) throws -> RGBImage {
        _ = try Self.byteCount(width: width, height: height)
        if width == self.width && height == self.height { return self }
        let shrinkY = self.height - height, shrinkX = self.width - width
        let horizontalFirst = !(shrinkY > 0 && shrinkY > shrinkX * 2)
        if !horizontalFirst {
            var out = self
            if height != self.height {
                out = Resampling(inSize: self.height, outSize: height, filter: filter).vertical(out, rowOffset: 0)
            }
            if width != self.width {
                out = Resampling(inSize: self.width, outSize: width, filter: filter).horizontal(out, rows: 0..<height)
            }
            return out
        }
        let vertical = Resampling(inSize: self.height, outSize: height, filter: filter)
        var source = self
        var rowOffset = 0
        if width != self.width {
            // Only the rows the vertical pass reads.
            let first = vertical.bounds[0]
            let last = vertical.bounds[2 * (height - 1)] + vertical.bounds[2 * (height - 1) + 1]
            let horizontal = Resampling(inSize: self.width, outSize: width, filter: filter)
            source = horizontal.horizontal(self, rows: first..<last)
            rowOffset = first
        }
        if height == self.height { return source }
        return vertical.vertical(source, rowOffset: rowOffset)
    }

    /// The `width` x `height` region whose top-left pixel is (`x`, `y`); it must lie inside the image.
    public func cropped(x: Int, y: Int, width: Int, height: Int) throws -> RGBImage {
        _ = try Self.byteCount(width: width, height: height)
        guard x >= 0, y >= 0, x <= self.width - width, y <= self.height - height else {
            throw MediaError.invalidArgument(
                "crop \(width)x\(height) at (\(x), \(y)) is outside the \(self.width)x\(self.height) image")
        }
        if x == 0 && y == 0 && width == self.width && height == self.height { return self }
        var out = [UInt8]()
        out.reserveCapacity(width * height * 3)
        for row in y..<(y + height) {
            let start = (row * self.width + x) * 3
            out.append(contentsOf: pixels[start..<(start + width * 3)])
        }
        return RGBImage(unchecked: width, height, out)
    }

    /// The largest centred region with the aspect ratio `aspectWidth : aspectHeight`: the full
    /// height of a too-wide image (width `round(height * aspectWidth / aspectHeight)`), or the full
    /// width of a too-tall one. The region starts at `(excess) / 2` rounded down, as
    /// torchvision's `CenterCrop` for even excesses.
    public func centerCropped(aspectWidth: Int, aspectHeight: Int) throws -> RGBImage {
        guard (1...(1 << 24)).contains(aspectWidth), (1...(1 << 24)).contains(aspectHeight) else {
            throw MediaError.invalidArgument("aspect ratio terms must be in 1...2^24, got \(aspectWidth):\(aspectHeight)")
        }
        // Compare width/height with aspectWidth/aspectHeight without division: with sides below
        // 2^31 and aspect terms at most 2^24 no product overflows.
        let wide = width * aspectHeight, tall = height * aspectWidth
        if wide > tall {
            let w = max(1, min(width, (2 * height * aspectWidth + aspectHeight) / (2 * aspectHeight)))
            return try cropped(x: (width - w) / 2, y: 0, width: w, height: height)
        } else if wide < tall {
            let h = max(1, min(height, (2 * width * aspectHeight + aspectWidth) / (2 * aspectWidth)))
            return try cropped(x: 0, y: (height - h) / 2, width: width, height: h)
        }
        return self
    }

    /// Centre-crops to the aspect of `width` x `height`, then resizes to exactly that size: what a
    /// webcam frame needs before it goes to a model of fixed input size.
    public func resizedToFill(width: Int, height: Int, filter: ResizeFilter = .lanczos) throws -> RGBImage {
        _ = try Self.byteCount(width: width, height: height)
        return try centerCropped(aspectWidth: width, aspectHeight: height)
            .resized(width: width, height: height, filter: filter)
    }
}

/// One axis of Pillow's resampling: for each output index, the first input index and count of
/// taps (`bounds`), and `taps` fixed-point weights (`precompute_coeffs` + `normalize_coeffs_8bpc`).
private struct Resampling {
    static let precisionBits: Int32 = 32 - 8 - 2

    let taps: Int
    let bounds: [Int]
    let weights: [Int32]

    init(inSize: Int, outSize: Int, filter: ResizeFilter) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        taps = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let one = Double(Int32(1) << Self.precisionBits)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            let xmin = max(0, Int(center - support + 0.5))  // C's (int) cast: truncation
            let xmax = min(inSize, Int(center + support + 0.5)) - xmin
            var sum = 0.0
            for x in 0..<taps { k[x] = 0 }
            for x in 0..<max(0, xmax) {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                sum += w
            }
            for x in 0..<taps {
                if sum != 0 && x < xmax { k[x] /= sum }
                let v = k[x] * one
                weights[xx * taps + x] = Int32(v < 0 ? -0.5 + v : 0.5 + v)  // truncation toward 0
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = xmax
        }
        self.bounds = bounds
        self.weights = weights
    }

    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum >> precisionBits
        return v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v)
    }

    /// The horizontal pass over `rows` of `image`.
    func horizontal(_ image: RGBImage, rows: Range<Int>) -> RGBImage {
        let outWidth = bounds.count / 2
        let inWidth = image.width
        let count = outWidth * rows.count * 3
        let out = [UInt8](unsafeUninitializedCapacity: count) { dst, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                weights.withUnsafeBufferPointer { kk in
                    for (oy, y) in rows.enumerated() {
                        let inRow = y * inWidth * 3
                        let outRow = oy * outWidth * 3
                        for xx in 0..<outWidth {
                            let xmin = bounds[2 * xx], n = bounds[2 * xx + 1]
                            let k = xx * taps
                            let half = Int32(1) << (Self.precisionBits - 1)
                            var s0 = half, s1 = half, s2 = half
                            for x in 0..<n {
                                let p = inRow + (xmin + x) * 3
                                let w = kk[k + x]
                                s0 &+= Int32(src[p]) &* w
                                s1 &+= Int32(src[p + 1]) &* w
                                s2 &+= Int32(src[p + 2]) &* w
                            }
                            dst[outRow + xx * 3] = Self.clip8(s0)
                            dst[outRow + xx * 3 + 1] = Self.clip8(s1)
                            dst[outRow + xx * 3 + 2] = Self.clip8(s2)
                        }
                    }
                }
            }
            initialized = count
        }
        return RGBImage(unchecked: outWidth, rows.count, out)
    }

    /// The vertical pass; `image` row 0 is source row `rowOffset`.
    func vertical(_ image: RGBImage, rowOffset: Int) -> RGBImage {
        let outHeight = bounds.count / 2
        let rowBytes = image.width * 3
        let count = rowBytes * outHeight
        let out = [UInt8](unsafeUninitializedCapacity: count) { dst, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                weights.withUnsafeBufferPointer { kk in
                    for yy in 0..<outHeight {
                        let ymin = bounds[2 * yy] - rowOffset, n = bounds[2 * yy + 1]
                        let k = yy * taps
                        let half = Int32(1) << (Self.precisionBits - 1)
                        for i in 0..<rowBytes {
                            var s = half
                            for y in 0..<n {
                                s &+= Int32(src[(ymin + y) * rowBytes + i]) &* kk[k + y]
                            }
                            dst[yy * rowBytes + i] = Self.clip8(s)
                        }
                    }
                }
            }
            initialized = count
        }
        return RGBImage(unchecked: image.width, outHeight, out)
    }
}
