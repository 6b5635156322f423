import Foundation

/// Order statistics of a list of durations in ms (nearest-rank percentiles).
struct Percentiles: Codable, Sendable {
    var count: Int
    var mean: Double?
    var p50: Double?
    var p90: Double?
    var p99: Double?
    var max: Double?

    init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        func rank(_ p: Double) -> Double? {
            sorted.isEmpty ? nil : sorted[Swift.max(Int((p * Double(sorted.count)).rounded(.up)) - 1, 0)]
        }
        mean = sorted.isEmpty ? nil : sorted.reduce(0, +) / Double(sorted.count)
        (p50, p90, p99, max) = (rank(0.5), rank(0.9), rank(0.99), sorted.last)
    }
}

/// One connection's totals.
struct ClientSummary: Codable, Sendable {
    var client: Int
    var connected: Bool
    var failure: String?
    var framesSent: Int
    var outputs: Int
    var outputsPerSecond: Double
    var framesDropped: Int
    var latencyP50Ms: Double?
    var errors: [String: Int]
}

/// Everything `live-soak` measured, over all clients; also its `--json` output.
struct SoakReport: Codable, Sendable {
    var url: String
    var clients: Int
    var seconds: Double
    var fps: Double
    var size: Int
    var connectionsFailed: Int
    /// Distinct failure reasons and how many connections each ended.
    var failures: [String: Int]
    var framesSent: Int
    /// Output frames received, drain included.
    var outputs: Int
    /// Outputs whose `input` was null (txt2img, or a multi-step stream's first outputs).
    var outputsWithoutInput: Int
    /// Outputs received inside the sending window, per second of it.
    var outputsPerSecond: Double
    /// `outputsPerSecond` over the clients that connected.
    var outputsPerSecondPerClient: Double
    /// Inputs that never got an output: dropped by the server (latest frame wins) or refused.
    var framesDropped: Int
    var latencyMs: Percentiles
    /// The server's own time per output (`serverMs`): input arrival to output encoded.
    var serverMs: Percentiles
    /// Server `error` messages by code, plus protocol complaints of the client.
    var errors: [String: Int]
    /// Timer ticks the senders missed because the socket pushed back.
    var senderMissedTicks: Int
    var perClient: [ClientSummary]

    init(url: String, fps: Double, seconds: Double, size: Int, records: [ClientRecord]) {
        (self.url, self.fps, self.seconds, self.size, clients) = (url, fps, seconds, size, records.count)
        var failures: [String: Int] = [:]
        var errors: [String: Int] = [:]
        var latencies: [Double] = []
        var server: [Double] = []
        var perClient: [ClientSummary] = []
        for (index, r) in records.enumerated() {
            if let failure = r.failure { failures[failure, default: 0] += 1 }
            errors.merge(r.errors, uniquingKeysWith: +)
            latencies += r.latenciesMs
            server += r.serverMs
            perClient.append(ClientSummary(
                client: index + 1, connected: r.gotHello, failure: r.failure, framesSent: r.sendTimes.count,
                outputs: r.outputs, outputsPerSecond: Double(r.outputsInWindow) / seconds,
                framesDropped: r.sendTimes.count - r.answered.count, latencyP50Ms: Percentiles(r.latenciesMs).p50,
                errors: r.errors))
        }
        let connected = records.filter(\.gotHello).count
        connectionsFailed = records.filter { $0.failure != nil }.count
        self.failures = failures
        self.errors = errors
        self.perClient = perClient
        framesSent = records.reduce(0) { $0 + $1.sendTimes.count }
        outputs = records.reduce(0) { $0 + $1.outputs }
        outputsWithoutInput = records.reduce(0) { $0 + $1.outputsWithoutInput }
        outputsPerSecond = Double(records.reduce(0) { $0 + $1.outputsInWindow }) / seconds
        outputsPerSecondPerClient = connected == 0 ? 0 : outputsPerSecond / Double(connected)
        framesDropped = framesSent - records.reduce(0) { $0 + $1.answered.count }
        latencyMs = Percentiles(latencies)
        serverMs = Percentiles(server)
        senderMissedTicks = records.reduce(0) { $0 + $1.senderMissedTicks }
    }

    /// A human-readable summary.
    var table: String {
        func ms(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "–" }
        func rate(_ v: Double) -> String { String(format: "%.2f", v) }
        func counts(_ d: [String: Int]) -> String {
            d.isEmpty ? "none" : d.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        }
        let dropShare = framesSent == 0 ? 0 : 100 * Double(framesDropped) / Double(framesSent)
        var lines = [
            "live-soak: \(clients) client(s) × \(ms(seconds)) s at \(ms(fps)) fps, \(size)×\(size) JPEG → \(url)",
            "  connections failed   \(connectionsFailed) of \(clients)",
            "  frames sent          \(framesSent)",
            "  outputs received     \(outputs)" + (outputsWithoutInput > 0 ? " (\(outputsWithoutInput) without input)" : ""),
            "  outputs/s            \(rate(outputsPerSecond)) total, \(rate(outputsPerSecondPerClient)) per client",
            "  frames dropped       \(framesDropped) (\(String(format: "%.1f", dropShare)) % of sent)",
            "  latency ms           p50 \(ms(latencyMs.p50))  p90 \(ms(latencyMs.p90))  p99 \(ms(latencyMs.p99))  max \(ms(latencyMs.max))  (n=\(latencyMs.count))",
            "  server ms            p50 \(ms(serverMs.p50))  p90 \(ms(serverMs.p90))  p99 \(ms(serverMs.p99))  max \(ms(serverMs.max))",
            "  errors               \(counts(errors))",
            "  sender missed ticks  \(senderMissedTicks)",
        ]
        if !failures.isEmpty { lines.append("  failures             \(counts(failures))") }
        lines.append("  client   sent  outputs  out/s  dropped  p50 ms  errors")
        for c in perClient {
            let status = c.failure.map { "  FAILED: \($0)" } ?? ""
            let p50 = ms(c.latencyP50Ms)
            lines.append(String(format: "  %6d %6d %8d %6.2f %8d ", c.client, c.framesSent, c.outputs,
                                c.outputsPerSecond, c.framesDropped)
                         + String(repeating: " ", count: max(7 - p50.count, 0)) + p50 + "  " + counts(c.errors) + status)
        }
        return lines.joined(separator: "\n")
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
