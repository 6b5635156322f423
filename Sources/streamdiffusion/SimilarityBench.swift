import Foundation
import StreamDiffusion
import Tensors

/// The similarity-filter table: synthetic clips (a static camera, a slow pan, a fast pan, a cut
/// every few frames) run through the same stream with the filter off and on. Process CPU time is the energy
/// proxy: on a CPU-only machine the cores are where the joules go, and unlike wall time it also
/// counts the filter's own work on the skipped frames.
struct SimilarityClip {
    enum Kind: String, CaseIterable {
        case `static`, slowPan = "slow pan", fastPan = "fast pan", cuts = "cut every 3 frames"

        /// The name `bench ssf --clips` takes.
        var argument: String {
            switch self {
            case .static: return "static"
            case .slowPan: return "slow-pan"
            case .fastPan: return "fast-pan"
            case .cuts: return "cuts"
            }
        }

        /// Pan speed in pixels per frame: slow 1; fast size/32, so the scene crosses the frame's
        /// width in 32 frames (about a second at 30 fps) at any size.
        func panPixels(size: Int) -> Int {
            switch self {
            case .slowPan: return 1
            case .fastPan: return max(1, size / 32)
            case .static, .cuts: return 0
            }
        }
    }

    let kind: Kind
    let size: Int

    /// Frame `index` as NHWC values in [−1, 1]: a smooth scene of stripes and a blob plus
    /// ±0.02 sensor noise that differs per frame (no real camera is ever bit-static).
    func frame(_ index: Int) -> [Float] {
        let scene = kind == .cuts ? index / 3 : 0
        let shift = Float(kind == .cuts ? index % 3 : index * kind.panPixels(size: size))   // pixels
        let period = Float(48 + 17 * (scene % 5)), phase = Float(scene) * 1.3
        let blobX = Float(size) * (0.3 + 0.1 * Float(scene % 4)), blobY = Float(size) * 0.5
        var noise = UInt32(truncatingIfNeeded: 0x9E37_79B9 &* (index + 1))
        var values = [Float](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let u = (Float(x) + shift) / period, v = Float(y) / (period * 1.5)
                let dx = Float(x) + shift - blobX, dy = Float(y) - blobY
                let blob = exp(-(dx * dx + dy * dy) / Float(size * size / 16))
                for c in 0..<3 {
                    noise = noise &* 1_664_525 &+ 1_013_904_223
                    let grain = (Float(noise >> 8) / Float(1 << 24) - 0.5) * 0.04
                    let stripes = 0.5 * sin(2 * .pi * u + phase + Float(c)) * cos(2 * .pi * v)
                    values[(y * size + x) * 3 + c] = max(-1, min(1, stripes + 0.4 * blob - 0.1 + grain))
                }
            }
        }
        return values
    }
}

struct SimilarityMeasurement {
    let processed: Int, skipped: Int
    let wallMsPerFrame: Double, cpuMsPerFrame: Double
    /// Per input frame: whether the filter skipped it (its output repeats the previous one).
    let skips: [Bool]
}

enum ProcessClock {
    /// CPU seconds this process has used on every thread.
    static func cpuSeconds() -> Double { seconds(CLOCK_PROCESS_CPUTIME_ID) }

    static func wallSeconds() -> Double { seconds(CLOCK_MONOTONIC) }

    private static func seconds(_ clock: clockid_t) -> Double {
        var spec = timespec()
        clock_gettime(clock, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

extension SimilarityClip {
    /// The first `frames` frames as raw float32 NHWC in a temporary file, for the Python peer.
    func write(frames: Int) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("similarity-\(UUID().uuidString).f32")
        var values: [Float] = []
        for k in 0..<frames { values += frame(k) }
        try values.withUnsafeBytes { Data($0) }.write(to: url)
        return url
    }

    /// Feeds every frame through `stream` (already prepared with or without the filter) and
    /// reports the per-input-frame cost. Frames are uploaded before timing starts.
    func measure(_ stream: StreamPipeline, frames: Int) throws -> SimilarityMeasurement {
        let inputs = try (0..<frames).map { try stream.backend.tensor(frame($0), shape: [1, size, size, 3]) }
        var skips = [Bool](repeating: false, count: frames)
        let (cpu0, wall0) = (ProcessClock.cpuSeconds(), ProcessClock.wallSeconds())
        for (k, input) in inputs.enumerated() {
            let before = stream.skippedFrames
            _ = try stream.img2img(input)
            skips[k] = stream.skippedFrames > before
        }
        let (cpu, wall) = (ProcessClock.cpuSeconds() - cpu0, ProcessClock.wallSeconds() - wall0)
        let skipped = skips.filter { $0 }.count
        return SimilarityMeasurement(processed: frames - skipped, skipped: skipped,
                                     wallMsPerFrame: 1000 * wall / Double(frames),
                                     cpuMsPerFrame: 1000 * cpu / Double(frames), skips: skips)
    }
}
