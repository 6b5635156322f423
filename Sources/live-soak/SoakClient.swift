import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import Synchronization

/// What one connection saw. Its sender and receiver tasks share it, so it lives behind a lock.
struct ClientRecord: Sendable {
    /// Send time of input n at index n − 1 (the server numbers a client's binary messages from 1).
    var sendTimes: [ContinuousClock.Instant] = []
    /// End of the sending window; outputs before it count towards the output rate.
    var windowEnd: ContinuousClock.Instant?
    /// Arrival of the binary message whose `frame` message has not come yet.
    var pendingImageAt: ContinuousClock.Instant?
    var gotHello = false
    var outputs = 0
    var outputsInWindow = 0
    var outputsWithoutInput = 0
    /// Distinct inputs that got an output.
    var answered = Set<Int>()
    /// End-to-end latency (image arrival − send of its input) of each output, in ms.
    var latenciesMs: [Double] = []
    /// The server's own `serverMs` (input arrival to output encoded) of each output.
    var serverMs: [Double] = []
    /// Server `error` messages by code, plus this client's own protocol complaints.
    var errors: [String: Int] = [:]
    /// Timer ticks the sender missed because a write had not finished (the socket pushed back).
    var senderMissedTicks = 0
    /// Why the connection failed, if it did.
    var failure: String?
}

/// A `ClientRecord` behind a lock, shared by one connection's tasks.
final class ClientLog: Sendable {
    private let state = Mutex(ClientRecord())

    func update<T: Sendable>(_ body: (inout ClientRecord) -> T) -> T {
        state.withLock { body(&$0) }
    }
}

/// The text messages the server sends; every field but `type` depends on the kind.
private struct ServerMessage: Decodable {
    var type: String
    var input: Int?
    var serverMs: Double?
    var code: String?
    var message: String?
}

struct SoakClient: Sendable {
    let url: String
    let frames: [ByteBuffer]
    let fps: Double
    let seconds: Double
    /// How long to keep reading after the last frame, for outputs still in flight.
    let drainSeconds: Double
    /// Where in the frame cycle this client starts, so clients do not send identical frames.
    let phase: Int
    let maxMessageBytes: Int

    /// Connects, streams frames for `seconds`, reads for `drainSeconds` more, then closes.
    /// Never throws: a failure is written into the record.
    func run() async -> ClientRecord {
        let record = ClientLog()
        var logger = Logger(label: "live-soak")
        logger.logLevel = .critical
        let configuration = WebSocketClientConfiguration(maxFrameSize: maxMessageBytes, closeTimeout: .seconds(2))
        do {
            try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
                try await self.session(inbound: inbound, outbound: outbound, record: record)
            }
        } catch is CancellationError {
            // The receive loop ends by cancellation; that is the normal end of a session.
        } catch {
            record.update { if $0.failure == nil { $0.failure = Self.describe(error) } }
        }
        return record.update { r in
            if r.failure == nil, !r.gotHello { r.failure = "the server closed the connection before its hello message" }
            return r
        }
    }

    private enum Role { case sender, receiver, drain }

    private func session(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
                         record: ClientLog) async throws {
        let (helloStream, helloContinuation) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Role.self) { group in
            group.addTask {
                try await receive(inbound: inbound, record: record, hello: helloContinuation)
                return .receiver
            }
            group.addTask {
                var hello = helloStream.makeAsyncIterator()
                guard await hello.next() != nil else { return .sender }  // closed before hello
                try await send(outbound: outbound, record: record)
                return .sender
            }
            // Only the server ends the receiver (this client ends it by cancellation).
            var finished = try await group.next()
            if finished == .sender {
                group.addTask {
                    try await Task.sleep(for: .seconds(drainSeconds))
                    return .drain
                }
                finished = try await group.next()
            }
            if finished == .receiver {
                record.update { r in
                    if r.gotHello, r.failure == nil { r.failure = "the server closed the connection while streaming" }
                }
            }
            group.cancelAll()
        }
    }

    private func receive(inbound: WebSocketInboundStream, record: ClientLog,
                         hello: AsyncStream<Void>.Continuation) async throws {
        defer { hello.finish() }
        let decoder = JSONDecoder()
        for try await message in inbound.messages(maxSize: maxMessageBytes) {
            let now = ContinuousClock.now
            switch message {
            case .binary:
                record.update { r in
                    if r.pendingImageAt != nil { r.errors["image_without_frame_message", default: 0] += 1 }
                    r.pendingImageAt = now
                }
            case let .text(text):
                guard let parsed = try? decoder.decode(ServerMessage.self, from: Data(text.utf8)) else {
                    record.update { $0.errors["unparsable_message", default: 0] += 1 }
                    continue
                }
                let isHello = record.update { r in Self.apply(parsed, at: now, to: &r) }
                if isHello { hello.yield() }
            }
        }
    }

    /// Applies one server text message; returns whether it was the hello.
    private static func apply(_ message: ServerMessage, at now: ContinuousClock.Instant, to r: inout ClientRecord) -> Bool {
        switch message.type {
        case "hello":
            r.gotHello = true
            return true
        case "frame":
            guard let imageAt = r.pendingImageAt else {
                r.errors["frame_message_without_image", default: 0] += 1
                return false
            }
            r.pendingImageAt = nil
            r.outputs += 1
            if let end = r.windowEnd, imageAt <= end { r.outputsInWindow += 1 }
            if let ms = message.serverMs { r.serverMs.append(ms) }
            guard let input = message.input else {
                r.outputsWithoutInput += 1
                return false
            }
            guard input >= 1, input <= r.sendTimes.count else {
                r.errors["unknown_input_number", default: 0] += 1
                return false
            }
            r.answered.insert(input)
            r.latenciesMs.append(milliseconds(imageAt - r.sendTimes[input - 1]))
        case "error":
            r.errors[message.code ?? "error_without_code", default: 0] += 1
        default:
            r.errors["unknown_message_type", default: 0] += 1
        }
        return false
    }

    /// Sends one frame per tick of a `fps` timer until the window ends. A tick that comes while a
    /// write is still pending is skipped, as a camera would drop it; the sender never bursts.
    private func send(outbound: WebSocketOutboundWriter, record: ClientLog) async throws {
        let clock = ContinuousClock()
        let interval = Duration.seconds(1 / fps)
        let start = clock.now
        let end = start + .seconds(seconds)
        record.update { $0.windowEnd = end }
        var next = start
        var index = phase
        while next < end {
            let frame = frames[index % frames.count]
            index += 1
            record.update { $0.sendTimes.append(clock.now) }
            try await outbound.write(.binary(frame))
            next += interval
            let now = clock.now
            if now > next {
                let missed = Int((now - next) / interval)
                record.update { $0.senderMissedTicks += missed }
                next += interval * missed
            }
            try await Task.sleep(until: next, clock: clock)
        }
    }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? WebSocketClientError { return e.description }
        return String(describing: error)
    }
}
