import Foundation
import HummingbirdWSClient
import Logging
import Media
import Models
import NIOCore
import StreamDiffusion
import Tensors
import Testing
@testable import LiveServer

/// The fixture model (tiny-sd15 with tiny-taesd) at 64×64, 1 step, fp32 on one thread.
enum LiveFixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let models = root.appendingPathComponent("Tests/Fixtures/models")
    static let size = 64

    static func engine(tIndexList: [Int] = [32]) throws -> LiveEngine {
        let backend = try CPUBackend(threads: 1, precision: .float32)
        let model = try StableDiffusionModel.load(models.appendingPathComponent("tiny-sd15").path, backend: backend,
                                                  tinyVAE: models.appendingPathComponent("tiny-taesd").path)
        let scheduler = try LCMScheduler(contentsOf: model.folder.configURL("scheduler"))
        var p = StreamParameters()
        (p.width, p.height, p.tIndexList) = (size, size, tIndexList)
        return LiveEngine(model: model, scheduler: scheduler, base: p, backend: backend)
    }

    /// A frame: a diagonal gradient whose colours shift with `k`, so consecutive frames differ.
    static func frame(_ k: Int, width: Int = size, height: Int = size) throws -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height { for x in 0..<width {
            let i = (y * width + x) * 3
            pixels[i] = UInt8((x * 4 + k * 37) % 256)
            pixels[i + 1] = UInt8((y * 4 + k * 11) % 256)
            pixels[i + 2] = UInt8(((x + y) * 2 + k * 5) % 256)
        } }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }

    static func jpeg(_ image: RGBImage) throws -> ByteBuffer {
        ByteBuffer(bytes: try ImageIO().encode(image, format: .jpeg, quality: 95))
    }
}

/// A server on a free loopback port, stopped by `stop()`.
struct RunningServer {
    let server: LiveServer
    let port: Int
    let task: Task<Void, any Error>

    static func start(engine: LiveEngine? = nil, slowModel: Double? = nil,
                      configure: (inout LiveServerConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        var configuration = LiveServerConfiguration(port: 0)
        configure(&configuration)
        var logger = Logger(label: "live-test")
        logger.logLevel = .critical   // cancelling the server task at the end logs an error
        let server = try LiveServer(engine: engine ?? LiveFixture.engine(), configuration: configuration, logger: logger)
        if let slowModel { server.slowModel(by: slowModel) }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await server.run { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        return RunningServer(server: server, port: port, task: task)
    }

    func url(_ path: String) -> String { "ws://127.0.0.1:\(port)\(path)" }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    /// GET over plain HTTP/1.1 on a socket: status code and body. The blocking socket reads run on
    /// a thread of their own: on Swift concurrency's small pool (2 threads on 2 cores) two of them
    /// would starve the server's own handlers until the reads time out.
    func get(_ path: String) async throws -> (status: Int, body: String) {
        let port = port
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try HTTPGet.fetch(host: "127.0.0.1", port: port, path: path) })
            }
        }
    }
}

/// A scripted WebSocket client: the script sends and reads; the whole exchange has a deadline.
struct LiveClient {
    var inbound: WebSocketInboundMessageStream.AsyncIterator
    let outbound: WebSocketOutboundWriter

    /// Runs `script` on a connection to `url` and returns its result; throws if the connection
    /// fails (e.g. a refused upgrade) or the script takes longer than `timeout` seconds.
    static func run<T: Sendable>(_ url: String, timeout: Double = 60,
                                 _ script: @escaping @Sendable (inout LiveClient) async throws -> T) async throws -> T {
        let box = ResultBox<T>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var logger = Logger(label: "live-test-client")
                logger.logLevel = .critical
                try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 16 << 20), logger: logger) {
                    inbound, outbound, _ in
                    var client = LiveClient(inbound: inbound.messages(maxSize: 16 << 20).makeAsyncIterator(), outbound: outbound)
                    box.set(try await script(&client))
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(timeout))
                throw LiveTestError.timeout
            }
            try await group.next()
            group.cancelAll()
        }
        guard let value = box.value else { throw LiveTestError.noResult }
        return value
    }

    mutating func next() async throws -> WebSocketMessage {
        guard let message = try await inbound.next() else { throw LiveTestError.closed }
        return message
    }

    /// The next JSON message (skipping nothing: a binary message here is an error).
    mutating func json() async throws -> [String: Any] {
        guard case let .text(text) = try await next() else { throw LiveTestError.unexpected("binary message") }
        return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The next output frame and its `frame` message, skipping error messages into `errors`.
    mutating func frame(errors: inout [[String: Any]]) async throws -> (image: RGBImage, stats: [String: Any]) {
        while true {
            switch try await next() {
            case let .binary(buffer):
                let image = try ImageIO().decode(data: Data(buffer: buffer))
                let stats = try await json()
                #expect(stats["type"] as? String == "frame")
                return (image, stats)
            case let .text(text):
                let message = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                errors.append(message)
            }
        }
    }

    mutating func frame() async throws -> (image: RGBImage, stats: [String: Any]) {
        var errors: [[String: Any]] = []
        let result = try await frame(errors: &errors)
        #expect(errors.isEmpty, "unexpected messages: \(errors)")
        return result
    }

    /// The next error message's code.
    mutating func errorCode() async throws -> String {
        let message = try await json()
        #expect(message["type"] as? String == "error")
        return message["code"] as? String ?? "?"
    }

    func send(_ image: RGBImage) async throws { try await outbound.write(.binary(LiveFixture.jpeg(image))) }
    func send(bytes: [UInt8]) async throws { try await outbound.write(.binary(ByteBuffer(bytes: bytes))) }
    func send(json: String) async throws { try await outbound.write(.text(json)) }
}

enum LiveTestError: Error { case timeout, closed, noResult, unexpected(String) }

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    var value: T? { lock.lock(); defer { lock.unlock() }; return stored }
    func set(_ value: T) { lock.lock(); stored = value; lock.unlock() }
}

/// Mean absolute difference of two same-sized images, in 0…255 levels.
func meanDifference(_ a: RGBImage, _ b: RGBImage) -> Double {
    precondition(a.width == b.width && a.height == b.height)
    var sum = 0
    for (x, y) in zip(a.pixels, b.pixels) { sum += abs(Int(x) - Int(y)) }
    return Double(sum) / Double(a.pixels.count)
}
