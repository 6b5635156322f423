import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Media
import NIOCore

/// `streamdiffusion serve`: the browser page on `/`, the frame stream on `/ws`, `/healthz` and
/// `/metrics`. The server only moves bytes and enforces limits; the `InferenceWorker` computes.
public final class LiveServer: Sendable {
    public let configuration: LiveServerConfiguration
    let engine: LiveEngine
    let logger: Logger
    let metrics = LiveMetrics()
    let worker: InferenceWorker
    let ids = IDSource()

    /// What a new client starts with.
    let defaultSettings: LiveSettings

    public init(engine: LiveEngine, configuration: LiveServerConfiguration, logger: Logger,
                defaultSettings: LiveSettings? = nil) throws {
        self.configuration = try configuration.validated()
        (self.engine, self.logger) = (engine, logger)
        self.defaultSettings = defaultSettings ?? engine.defaultSettings()
        worker = InferenceWorker(engine: engine, metrics: metrics, logger: logger,
                                 batchClients: self.configuration.batchClients)
    }

    /// Serves until the task is cancelled, which shuts down gracefully: the listener closes and
    /// every WebSocket client is told goodbye. `onReady` receives the bound port (useful with port 0).
    public func run(onReady: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: BasicWebSocketRequestContext.self)
        addRoutes(to: router)
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(
                webSocketRouter: router,
                configuration: .init(ws: .init(maxFrameSize: configuration.limits.maxMessageBytes))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                 serverName: "streamdiffusion"),
            onServerRunning: { channel in await onReady(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        worker.start()
        defer { worker.stop() }
        if !configuration.bindsLoopbackOnly {
            logger.warning("listening on \(configuration.host): other machines can reach this server (token required)")
        }
        if configuration.token != nil {
            logger.notice("clients must present the token: open /?token=… (the WebSocket and /metrics check it too)")
        }
        try await app.run()
    }

    /// Test seam: a delay before each model job, on the worker thread.
    func slowModel(by seconds: Double) {
        worker.beforeCall = { Thread.sleep(forTimeInterval: seconds) }
    }

    private func authorized(_ request: Request) -> Bool {
        guard let token = configuration.token else { return true }
        return constantTimeEqual(request.uri.queryParameters.get("token") ?? "", token)
    }

    private func addRoutes(to router: Router<BasicWebSocketRequestContext>) {
        router.get("/") { request, _ -> Response in
            guard self.authorized(request) else { throw HTTPError(.unauthorized, message: "missing or wrong ?token=") }
            return Response(status: .ok,
                            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: Page.html)))
        }
        router.get("/healthz") { _, _ -> Response in
            let body = "{\"status\":\"ok\",\"clients\":\(self.metrics.clientCount)}\n"
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { request, _ -> Response in
            guard self.authorized(request) else { throw HTTPError(.unauthorized, message: "missing or wrong ?token=") }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(string: self.metrics.text())))
        }
        router.ws("/ws", shouldUpgrade: { request, _ in
            guard self.authorized(request) else { throw HTTPError(.unauthorized, message: "missing or wrong ?token=") }
            guard self.metrics.clientCount < self.configuration.limits.maxClients else {
                throw HTTPError(.serviceUnavailable, message: "server full (\(self.configuration.limits.maxClients) clients)")
            }
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, _ in
            try await self.serve(inbound: inbound, outbound: outbound)
        })
    }
}

/// Client numbers for logs.
final class IDSource: @unchecked Sendable {
    private let lock = NSLock()
    private var last = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; last += 1; return last }
}
