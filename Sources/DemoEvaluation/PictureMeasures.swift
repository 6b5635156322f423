import Foundation
import Media

/// The named colours of tools/demo_data.py (sRGB 0–255), which the demo model was trained on.
public enum Palette {
    public static let colours: [String: (Float, Float, Float)] = [
        "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (240, 220, 40), "green": (40, 170, 60),
        "blue": (40, 80, 220), "purple": (140, 60, 190), "pink": (245, 130, 190), "white": (245, 245, 245),
        "black": (20, 20, 20), "grey": (128, 128, 128),
    ]
    public static let chromatic = ["red", "orange", "yellow", "green", "blue", "purple", "pink"]

    /// The palette colour nearest in RGB.
    public static func nearest(_ c: RGB) -> String {
        colours.min { c.distance(to: RGB($0.value)) < c.distance(to: RGB($1.value)) }?.key ?? ""
    }

    /// The chromatic palette colour nearest in hue, or nil for an unsaturated colour (HSV saturation
    /// below 0.3: no hue to speak of). The palette's hues are 24°–50° apart, so nearest hue means
    /// within about half that of the named colour.
    public static func nearestHue(_ c: RGB) -> String? {
        guard let h = c.hue, c.saturation >= 0.3 else { return nil }
        func distance(_ name: String) -> Float { colours[name].map { RGB($0).hueDistance(h) } ?? 360 }
        return chromatic.min { distance($0) < distance($1) }
    }
}

public struct RGB: Equatable, Sendable {
    public var r, g, b: Float   // 0–255

    public init(_ r: Float, _ g: Float, _ b: Float) { (self.r, self.g, self.b) = (r, g, b) }
    public init(_ t: (Float, Float, Float)) { (r, g, b) = t }

    public func distance(to o: RGB) -> Float { ((r - o.r) * (r - o.r) + (g - o.g) * (g - o.g) + (b - o.b) * (b - o.b)).squareRoot() }

    public var saturation: Float {
        let hi = max(r, g, b), lo = min(r, g, b)
        return hi > 0 ? (hi - lo) / hi : 0
    }

    /// HSV hue in degrees; nil for grey.
    public var hue: Float? {
        let hi = max(r, g, b), lo = min(r, g, b), d = hi - lo
        guard d > 1e-3 else { return nil }
        var h: Float
        if hi == r { h = (g - b) / d } else if hi == g { h = 2 + (b - r) / d } else { h = 4 + (r - g) / d }
        h *= 60
        return h < 0 ? h + 360 : h
    }

    public func hueDistance(_ h: Float) -> Float {
        guard let own = hue else { return 360 }
        let d = abs(own - h).truncatingRemainder(dividingBy: 360)
        return min(d, 360 - d)
    }
}

/// What a generated picture shows: its background colour, its foreground colour and the shape of
/// its largest foreground region. Pixels are RGB 0–255, row-major.
public struct PictureMeasures: Sendable {
    public enum Shape: String, CaseIterable, Sendable { case circle, square, star }

    public let background: RGB
    public let foreground: RGB?
    /// Foreground area / area of its convex hull: 1 for convex shapes, ≈ 0.52 for the 5-point star.
    public let solidity: Float
    /// Foreground area / area of the circle around its centroid through its farthest pixel:
    /// 1 for a disc, 2/π ≈ 0.64 for a square, lower for a star.
    public let circularity: Float
    public let area: Int

    /// Star when clearly non-convex, else circle or square by how much of the enclosing circle is filled
    /// (thresholds halfway between the ideal values).
    public var shape: Shape? {
        guard foreground != nil, area >= 20 else { return nil }
        if solidity < 0.76 { return .star }
        return circularity >= 0.8 ? .circle : .square
    }

    public init(pixels: [RGB], width: Int, height: Int) {
        // Background: the per-channel median of a 3-pixel frame around the picture.
        var frame: [RGB] = []
        for y in 0..<height {
            for x in 0..<width where x < 3 || y < 3 || x >= width - 3 || y >= height - 3 {
                frame.append(pixels[y * width + x])
            }
        }
        let bg = Self.median(frame)
        background = bg
        // Foreground colour: the median of the pixels at least half as far from the background as the
        // 99th-percentile pixel, when that pixel stands out at all (30/255).
        let distances = pixels.map { $0.distance(to: bg) }
        let far = distances.sorted()[Int(Float(distances.count - 1) * 0.99)]
        guard far >= 30 else {
            (foreground, solidity, circularity, area) = (nil, 0, 0, 0)
            return
        }
        let fg = Self.median(zip(pixels, distances).filter { $0.1 >= far / 2 }.map(\.0))
        foreground = fg
        // Mask: pixels nearer the foreground colour than the background; keep the largest region.
        let mask = pixels.map { $0.distance(to: fg) < $0.distance(to: bg) }
        let region = Self.largestRegion(mask, width: width, height: height)
        area = region.count
        let points = region.map { (Float($0 % width) + 0.5, Float($0 / width) + 0.5) }
        let cx = points.reduce(0) { $0 + $1.0 } / Float(max(1, area)), cy = points.reduce(0) { $0 + $1.1 } / Float(max(1, area))
        // Pixel-edge distances: a pixel centre at distance d reaches to about d + 0.5.
        let reach = points.map { (p: (Float, Float)) -> Float in
            let dx = p.0 - cx, dy = p.1 - cy
            return (dx * dx + dy * dy).squareRoot() + 0.5
        }.max() ?? 1
        circularity = Float(area) / (Float.pi * reach * reach)
        solidity = Float(area) / max(1, Self.hullArea(of: region.flatMap { p -> [(Float, Float)] in
            let x = Float(p % width), y = Float(p / width)
            return [(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)]   // the pixel's corners
        }))
    }

    /// The measures of an 8-bit picture.
    public init(_ image: RGBImage) {
        let p = image.pixels
        let pixels = (0..<(image.width * image.height)).map { RGB(Float(p[3 * $0]), Float(p[3 * $0 + 1]), Float(p[3 * $0 + 2])) }
        self.init(pixels: pixels, width: image.width, height: image.height)
    }

    static func median(_ colours: [RGB]) -> RGB {
        func mid(_ v: [Float]) -> Float { v.sorted()[v.count / 2] }
        guard !colours.isEmpty else { return RGB(0, 0, 0) }
        return RGB(mid(colours.map(\.r)), mid(colours.map(\.g)), mid(colours.map(\.b)))
    }

    /// Indices of the largest 4-connected true region.
    static func largestRegion(_ mask: [Bool], width: Int, height: Int) -> [Int] {
        var seen = [Bool](repeating: false, count: mask.count), best: [Int] = []
        for start in mask.indices where mask[start] && !seen[start] {
            var region: [Int] = [], stack = [start]
            seen[start] = true
            while let p = stack.popLast() {
                region.append(p)
                let x = p % width, y = p / width
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                where nx >= 0 && ny >= 0 && nx < width && ny < height {
                    let q = ny * width + nx
                    if mask[q] && !seen[q] { seen[q] = true; stack.append(q) }
                }
            }
            if region.count > best.count { best = region }
        }
        return best
    }

    /// Area of the convex hull (Andrew's monotone chain, then the shoelace formula).
    static func hullArea(of points: [(Float, Float)]) -> Float {
        let p = points.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        guard p.count >= 3 else { return 0 }
        func cross(_ o: (Float, Float), _ a: (Float, Float), _ b: (Float, Float)) -> Float {
            (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
        }
        var hull: [(Float, Float)] = []
        for pass in 0..<2 {
            let start = hull.count
            for q in pass == 0 ? p : p.reversed() {
                while hull.count >= start + 2 && cross(hull[hull.count - 2], hull[hull.count - 1], q) <= 0 { hull.removeLast() }
                hull.append(q)
            }
            hull.removeLast()
        }
        var twice: Float = 0
        for i in hull.indices {
            let a = hull[i], b = hull[(i + 1) % hull.count]
            twice += a.0 * b.1 - b.0 * a.1
        }
        return abs(twice) / 2
    }
}
