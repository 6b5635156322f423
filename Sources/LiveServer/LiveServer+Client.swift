import Foundation
import Hummingbird
import HummingbirdWebSocket
import Media
import NIOCore
import ServiceLifecycle

extension LiveServer {
    /// One client's connection: a receive loop on this task, and two writers (outputs, errors).
    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let limits = configuration.limits
        var admitted = false
        metrics.record { counters in
            admitted = counters.clients < limits.maxClients
            if admitted { counters.clients += 1; counters.connections += 1 }
        }
        guard admitted else {
            try await outbound.close(.unknown(1013), reason: "server full")
            return
        }
        let settings = defaultSettings
        let session = LiveSession(id: ids.next(), settings: settings)
        logger.info("client \(session.id) connected")
        worker.add(session)
        defer {
            worker.remove(session)
            metrics.record { $0.clients -= 1 }
            logger.info("client \(session.id) disconnected")
        }
        try await send(HelloMessage(width: engine.base.width, height: engine.base.height, model: engine.name,
                                    settings: settings, limits: limits), to: outbound)
        // On shutdown (the server task cancelled) say goodbye, so the server's wait for open
        // connections does not last until the browser leaves.
        await withTaskCancellationOrGracefulShutdownHandler {
            await receive(inbound: inbound, outbound: outbound, session: session, settings: settings)
        } onCancelOrGracefulShutdown: {
            Task { try? await outbound.close(.goingAway, reason: "server shutting down") }
        }
    }

    private func receive(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, session: LiveSession,
                         settings initial: LiveSettings) async {
        let limits = configuration.limits
        var settings = initial
        await withTaskGroup(of: Void.self) { group in
            // The writers end with the session, or at the first failed write (the socket is gone).
            group.addTask { try? await self.writeOutputs(of: session, to: outbound) }
            group.addTask {
                for await notice in session.notices {
                    guard (try? await self.send(ErrorMessage(code: notice.code, message: notice.description), to: outbound)) != nil
                    else { return }
                }
            }
            var rate = TokenBucket(perSecond: limits.maxMessagesPerSecond)
            var sequence = 0
            do {
                for try await message in inbound.messages(maxSize: limits.maxMessageBytes) {
                    if case .binary = message { sequence += 1 }
                    guard rate.take(now: DispatchTime.nowNanoseconds) else {
                        refuse(.rateLimited(limits.maxMessagesPerSecond), session: session)
                        continue
                    }
                    do {
                        switch message {
                        case let .binary(buffer):
                            try receiveFrame(buffer, sequence: sequence, session: session)
                        case let .text(text):
                            settings = try receiveControl(text, settings: settings, session: session)
                        }
                    } catch let error as LiveError {
                        refuse(error, session: session)
                    }
                }
            } catch {
                // A message over the size limit, or a broken connection: the client is dropped.
                logger.info("client \(session.id): \(error)")
            }
            session.finish()
            group.cancelAll()
        }
    }

    private func refuse(_ error: LiveError, session: LiveSession) {
        metrics.error(error.code)
        session.noticeSink.yield(error)
    }

    private func receiveFrame(_ buffer: ByteBuffer, sequence: Int, session: LiveSession) throws(LiveError) {
        session.count { $0.framesIn += 1 }
        metrics.record { $0.framesIn += 1 }
        let arrival = DispatchTime.nowNanoseconds
        let side = configuration.limits.maxImageSide
        let image: RGBImage
        do {
            let decoded = try ImageIO(maxPixels: side * side).decode(data: Data(buffer: buffer), name: "frame \(sequence)")
            guard decoded.width <= side, decoded.height <= side else {
                throw LiveError.badImage("frame \(sequence) is \(decoded.width)×\(decoded.height), over the limit of \(side) per side")
            }
            // Fill the stream's size (centre crop to its aspect, then bilinear: cheap and smooth enough live).
            image = try decoded.resizedToFill(width: engine.base.width, height: engine.base.height, filter: .bilinear)
        } catch let error as LiveError {
            throw error
        } catch {
            throw .badImage("\(error)")
        }
        worker.submit(InputFrame(sequence: sequence, pixels: FramePixels(image), arrival: arrival), for: session)
    }

    private func receiveControl(_ text: String, settings: LiveSettings, session: LiveSession) throws(LiveError) -> LiveSettings {
        let message: ClientMessage
        do {
            message = try JSONDecoder().decode(ClientMessage.self, from: Data(text.utf8))
        } catch {
            throw .badJSON(String(describing: error).prefix(300).description)
        }
        guard message.type == "settings" else { throw .badJSON("unknown message type '\(message.type.prefix(40))' (expected 'settings')") }
        let updated = try message.applied(to: settings, limits: configuration.limits,
                                          scheduleLength: engine.base.numInferenceSteps)
        worker.update(updated, for: session)
        return updated
    }

    /// Post-processes and encodes each output as JPEG, sends it, then its `frame` stats message.
    private func writeOutputs(of session: LiveSession, to outbound: WebSocketOutboundWriter) async throws {
        for await output in session.outputs {
            defer { worker.delivered(session) }
            let jpeg = try ImageIO().encode(output.pixels.image(), format: .jpeg, quality: configuration.jpegQuality)
            let now = DispatchTime.nowNanoseconds
            try await outbound.write(.binary(ByteBuffer(bytes: jpeg)))
            session.count { $0.framesOut += 1; $0.outputTimes.append(now) }
            metrics.record { $0.framesOut += 1 }
            let latency = Double(now &- output.arrival) / 1e9
            metrics.latency(seconds: latency)
            let (stats, fps) = session.snapshot(now: now)
            try await send(FrameMessage(input: output.input, serverMs: latency * 1000, fps: fps,
                                        framesIn: stats.framesIn, framesOut: stats.framesOut,
                                        skipped: stats.skipped, dropped: stats.dropped), to: outbound)
        }
    }

    private func send(_ message: some Encodable, to outbound: WebSocketOutboundWriter) async throws {
        let data = try JSONEncoder.live.encode(message)
        try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
    }
}

/// Messages per second with bursts up to the same count.
struct TokenBucket {
    let rate: Double
    var tokens: Double
    var last: UInt64?

    init(perSecond: Int) { (rate, tokens) = (Double(perSecond), Double(perSecond)) }

    mutating func take(now: UInt64) -> Bool {
        if let last { tokens = min(rate, tokens + Double(now &- last) / 1e9 * rate) }
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
