import Foundation

/// Server-wide counters and the latency histogram behind `/metrics` (Prometheus text format 0.0.4).
final class LiveMetrics: @unchecked Sendable {
    /// Upper bounds of the latency buckets, in seconds (input arrival → output encoded).
    static let latencyBuckets: [Double] = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    struct Counters {
        var framesIn = 0, framesOut = 0, framesDropped = 0, framesSkipped = 0, clients = 0, connections = 0
    }

    private let lock = NSLock()
    private var counters = Counters()
    private var errors: [String: Int] = [:]
    private var bucketCounts = [Int](repeating: 0, count: latencyBuckets.count)
    private var latencyCount = 0
    private var latencySum = 0.0

    func record(_ update: (inout Counters) -> Void) {
        lock.lock(); defer { lock.unlock() }
        update(&counters)
    }

    func error(_ code: String) {
        lock.lock(); defer { lock.unlock() }
        errors[code, default: 0] += 1
    }

    func latency(seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        for (i, bound) in Self.latencyBuckets.enumerated() where seconds <= bound { bucketCounts[i] += 1 }
        latencyCount += 1
        latencySum += seconds
    }

    var clientCount: Int { lock.lock(); defer { lock.unlock() }; return counters.clients }

    /// The exposition text. Bucket counts are cumulative, as the format requires.
    func text() -> String {
        lock.lock(); defer { lock.unlock() }
        let c = counters
        var out = ""
        func counter(_ name: String, _ help: String, _ value: Int, type: String = "counter") {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        counter("streamdiffusion_frames_in_total", "Input frames received.", c.framesIn)
        counter("streamdiffusion_frames_out_total", "Output frames sent.", c.framesOut)
        counter("streamdiffusion_frames_dropped_total",
                "Frames replaced by a newer one before the model or the socket took them.", c.framesDropped)
        counter("streamdiffusion_frames_skipped_total", "Inputs the similarity filter skipped.", c.framesSkipped)
        counter("streamdiffusion_connections_total", "WebSocket connections accepted.", c.connections)
        counter("streamdiffusion_clients", "WebSocket clients connected now.", c.clients, type: "gauge")
        out += "# HELP streamdiffusion_errors_total Client messages refused, by reason.\n"
        out += "# TYPE streamdiffusion_errors_total counter\n"
        for (code, n) in errors.sorted(by: { $0.key < $1.key }) {
            out += "streamdiffusion_errors_total{code=\"\(code)\"} \(n)\n"
        }
        out += "# HELP streamdiffusion_latency_seconds Input arrival to output encoded.\n"
        out += "# TYPE streamdiffusion_latency_seconds histogram\n"
        for (bound, n) in zip(Self.latencyBuckets, bucketCounts) {
            out += "streamdiffusion_latency_seconds_bucket{le=\"\(bound)\"} \(n)\n"
        }
        out += "streamdiffusion_latency_seconds_bucket{le=\"+Inf\"} \(latencyCount)\n"
        out += "streamdiffusion_latency_seconds_sum \(latencySum)\n"
        out += "streamdiffusion_latency_seconds_count \(latencyCount)\n"
        return out
    }
}
