import ArgumentParser
import Foundation
import LiveServer
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Live demo: a browser page streams the webcam through img2img (or txt2img) over a WebSocket.",
        discussion: "Binds 127.0.0.1 unless --host says otherwise; any other address needs --token. The protocol is in the README.")

    @OptionGroup var stream: StreamOptions

    @Option(help: "Address to bind (anything but loopback requires --token).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 8080

    @Option(help: "Secret that clients must present as ?token= on the page, the WebSocket and /metrics.")
    var token: String?

    @Option(help: "Largest WebSocket message in bytes.")
    var maxMessageBytes = LiveLimits().maxMessageBytes

    @Option(help: "Largest input frame side in pixels.")
    var maxImageSide = LiveLimits().maxImageSide

    @Option(help: "Messages per second a client may send.")
    var maxMessagesPerSecond = LiveLimits().maxMessagesPerSecond

    @Option(help: "Clients connected at once.")
    var maxClients = LiveLimits().maxClients

    @Option(help: "JPEG quality of output frames (1–100).")
    var jpegQuality = 85

    @Flag(help: "One UNet call per client instead of one for all clients with frames waiting.")
    var noBatchClients = false

    func run() async throws {
        var configuration = LiveServerConfiguration(host: host, port: port, token: token)
        configuration.limits.maxMessageBytes = maxMessageBytes
        configuration.limits.maxImageSide = maxImageSide
        configuration.limits.maxMessagesPerSecond = maxMessagesPerSecond
        configuration.limits.maxClients = maxClients
        configuration.jpegQuality = jpegQuality
        configuration.batchClients = !noBatchClients
        do {
            configuration = try configuration.validated()
        } catch {
            throw ValidationError(error.description)
        }
        let (model, scheduler, backend) = try stream.load()
        let parameters = try stream.parameters(defaultIndices: [32], model: model)
        let engine = LiveEngine(model: model, scheduler: scheduler, base: parameters, backend: backend)
        var logger = Logger(label: "streamdiffusion.serve")
        logger.logLevel = .info
        let server = try LiveServer(engine: engine, configuration: configuration, logger: logger,
                                    defaultSettings: engine.defaultSettings(prompt: stream.prompt))
        let (host, token) = (self.host, self.token)
        let serving = Task {
            try await server.run { port in
                let address = host.contains(":") ? "[\(host)]" : host
                print("serving \(parameters.width)×\(parameters.height) on http://\(address):\(port)/"
                      + (token.map { "?token=\($0)" } ?? "") + "  (Ctrl-C stops)")
                fflush(nil)   // the line must reach a pipe (scripts wait for it) at once
            }
        }
        let signals = stopOnSignals(serving)
        defer { signals.forEach { $0.cancel() } }
        try await serving.value
    }

    /// SIGINT or SIGTERM shuts the server down gracefully; if a browser still holds an idle
    /// connection after 3 s, the process exits anyway.
    private func stopOnSignals(_ serving: Task<Void, any Error>) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { (number: Int32) in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .main)
            source.setEventHandler {
                print("stopping…")
                serving.cancel()
                DispatchQueue.main.asyncAfter(deadline: .now() + 3) { Foundation.exit(0) }
            }
            source.resume()
            return source
        }
    }
}
