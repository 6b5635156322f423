import Foundation
import Media
import NIOCore

/// A short, pre-encoded cycle of JPEG frames that differ from each other (a gradient that moves a
/// few pixels per frame), so the load client spends its CPU on sending rather than on encoding.
enum SyntheticFrames {
    /// `count` frames of `size`×`size`, quality 90.
    static func make(size: Int, count: Int) throws -> [ByteBuffer] {
        let io = ImageIO()
        return try (0..<count).map { index in
            let image = try gradient(size: size, phase: index, of: count)
            return ByteBuffer(bytes: try io.encode(image, format: .jpeg, quality: 90))
        }
    }

    /// A diagonal colour ramp whose offset and blue level move with `phase`, plus a bright square
    /// that travels across the frame (something like motion in front of a camera).
    static func gradient(size: Int, phase: Int, of count: Int) throws -> RGBImage {
        let shift = phase * 256 / max(count, 1)
        let box = max(size / 6, 1)
        let boxX = (phase * (size - box)) / max(count - 1, 1)
        let boxY = size / 3
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let i = (y * size + x) * 3
                let inBox = (boxX..<boxX + box).contains(x) && (boxY..<boxY + box).contains(y)
                pixels[i] = inBox ? 250 : UInt8(truncatingIfNeeded: (x * 256 / size + shift) & 255)
                pixels[i + 1] = inBox ? 240 : UInt8(truncatingIfNeeded: (y * 256 / size) & 255)
                pixels[i + 2] = inBox ? 60 : UInt8(truncatingIfNeeded: (128 + shift / 2) & 255)
            }
        }
        return try RGBImage(width: size, height: size, pixels: pixels)
    }
}
