import Foundation
import Media

/// Ground-truth pictures of grid cases, drawn as tools/demo_data.py draws its training data but
/// without the random jitter: a solid background and one centred shape of radius 0.2 × the side
/// (a square's half-side is 0.85 × that radius; a star has 10 points alternating between the
/// radius and 0.42 of it, nudged down by 0.05 radius), supersampled 2× and box-filtered.
public enum DemoRenderer {
    public static func render(_ c: DemoCase, size: Int = 128) throws -> RGBImage {
        guard size >= 16, let shapeColour = Palette.colours[c.colour], let background = Palette.colours[c.background] else {
            throw DemoEvaluationError.invalid("cannot render '\(c.prompt)' at \(size)² (size ≥ 16 and palette colours needed)")
        }
        let n = 2 * size   // supersampled side
        let (cx, cy, radius) = (0.5 * Float(n), 0.5 * Float(n), 0.2 * Float(n))
        let star = (0..<10).map { k -> (Float, Float) in
            let r = radius * (k % 2 == 0 ? 1 : 0.42), a = -Float.pi / 2 + Float(k) * Float.pi / 5
            return (r * cos(a), r * sin(a) + 0.05 * radius)
        }
        func inside(_ dx: Float, _ dy: Float) -> Bool {
            switch c.shape {
            case .circle: return dx * dx + dy * dy <= radius * radius
            case .square: return abs(dx) <= 0.85 * radius && abs(dy) <= 0.85 * radius
            case .star: return Self.insidePolygon(star, dx, dy)
            }
        }
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        let colours = [background, shapeColour].map { [$0.0, $0.1, $0.2] }
        for y in 0..<size {
            for x in 0..<size {
                var sum: [Float] = [0, 0, 0]
                for sy in 0..<2 {
                    for sx in 0..<2 {
                        let hit = inside(Float(2 * x + sx) + 0.5 - cx, Float(2 * y + sy) + 0.5 - cy)
                        for ch in 0..<3 { sum[ch] += colours[hit ? 1 : 0][ch] }
                    }
                }
                for ch in 0..<3 { pixels[(y * size + x) * 3 + ch] = UInt8((sum[ch] / 4).rounded()) }
            }
        }
        return try RGBImage(width: size, height: size, pixels: pixels)
    }

    /// Even-odd rule, one crossing test per edge (as tools/demo_data.py's polygon_mask).
    static func insidePolygon(_ points: [(Float, Float)], _ x: Float, _ y: Float) -> Bool {
        var inside = false
        for (i, (x0, y0)) in points.enumerated() {
            let (x1, y1) = points[(i + 1) % points.count]
            guard y0 != y1, (y0 > y) != (y1 > y) else { continue }
            if x < x0 + (y - y0) * (x1 - x0) / (y1 - y0) { inside.toggle() }
        }
        return inside
    }
}

public enum DemoEvaluationError: Error, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case let .invalid(message): return message
        }
    }
}
