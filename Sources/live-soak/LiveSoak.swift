import ArgumentParser
import Foundation
import NIOCore

/// A load client for `streamdiffusion serve`: N WebSocket clients stream synthetic camera frames
/// at a fixed rate and measure end-to-end latency of the outputs that come back.
@main
struct LiveSoak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live-soak",
        abstract: "Soak-test a `streamdiffusion serve` WebSocket with concurrent synthetic camera clients.",
        discussion: """
            Each client sends one JPEG per tick of an --fps timer for --seconds (the server drops frames \
            it cannot keep up with: latest frame wins), reads --drain seconds more, then closes. Latency \
            is an output's arrival minus the send time of the input it names. A client whose connection \
            fails is counted, not fatal; the exit status is 1 only when every connection failed.
            """)

    @Option(help: "WebSocket URL of the server, e.g. ws://127.0.0.1:8080/ws (add ?token=… if it has one).")
    var url: String

    @Option(help: "Concurrent clients.")
    var clients = 4

    @Option(help: "Seconds each client streams frames.")
    var seconds = 20.0

    @Option(help: "Frames per second each client sends (a camera's rate).")
    var fps = 30.0

    @Option(help: "Side of the square synthetic frames, in pixels (the server resizes them).")
    var size = 256

    @Option(help: "Seconds to keep reading after the last frame, for outputs still in flight.")
    var drain = 2.0

    @Option(help: "Largest WebSocket message, in bytes, either way.")
    var maxMessageBytes = 16 << 20

    @Option(help: "Also write the report as JSON to this file.")
    var json: String?

    func validate() throws {
        guard url.hasPrefix("ws://") || url.hasPrefix("wss://") else {
            throw ValidationError("--url must start with ws:// or wss://, got \(url)")
        }
        guard (1...1000).contains(clients) else { throw ValidationError("--clients must be in 1…1000") }
        guard seconds.isFinite, seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds must be in (0, 86400]") }
        guard fps.isFinite, fps > 0, fps <= 1000 else { throw ValidationError("--fps must be in (0, 1000]") }
        guard (8...4096).contains(size) else { throw ValidationError("--size must be in 8…4096") }
        guard drain.isFinite, (0...600).contains(drain) else { throw ValidationError("--drain must be in 0…600") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
    }

    func run() async throws {
        // One second of distinct frames at most (and at least a few), all encoded before the clock starts.
        let cycle = min(max(Int(fps.rounded()), 4), 60)
        let frames: [ByteBuffer]
        do {
            frames = try SyntheticFrames.make(size: size, count: cycle)
        } catch {
            throw ValidationError("cannot make \(size)×\(size) JPEG frames: \(error)")
        }
        if let largest = frames.map(\.readableBytes).max(), largest > maxMessageBytes {
            throw ValidationError("a \(size)×\(size) frame is \(largest) bytes, over --max-message-bytes \(maxMessageBytes)")
        }
        let records = await withTaskGroup(of: (Int, ClientRecord).self) { group in
            for index in 0..<clients {
                let client = SoakClient(url: url, frames: frames, fps: fps, seconds: seconds, drainSeconds: drain,
                                        phase: index * cycle / clients, maxMessageBytes: maxMessageBytes)
                group.addTask { (index, await client.run()) }
            }
            var records = [ClientRecord](repeating: ClientRecord(), count: clients)
            for await (index, record) in group { records[index] = record }
            return records
        }
        let report = SoakReport(url: url, fps: fps, seconds: seconds, size: size, records: records)
        print(report.table)
        if let json {
            do {
                try report.json().write(to: URL(fileURLWithPath: json))
            } catch {
                throw ValidationError("cannot write the JSON report to \(json): \(error.localizedDescription)")
            }
        }
        if report.connectionsFailed == clients { throw ExitCode(1) }
    }
}
