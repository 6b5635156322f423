import Foundation

/// Limits that protect the server from clients; each is a `serve` option.
public struct LiveLimits: Codable, Sendable, Equatable {
    /// Largest WebSocket message (a JPEG frame or a JSON control message), in bytes.
    public var maxMessageBytes = 4 << 20
    /// Largest input frame, per side in pixels (checked from the JPEG header, before decoding).
    public var maxImageSide = 4096
    /// Messages a client may send per second (a token bucket of this size, refilled continuously).
    public var maxMessagesPerSecond = 60
    /// Clients connected at once; one more gets HTTP 503 on the upgrade.
    public var maxClients = 4
    public var maxPromptCharacters = 1000
    /// Denoising steps a client may ask for (UNet rows per frame).
    public var maxSteps = 4

    public init() {}
}

/// Where the server listens and who may use it.
public struct LiveServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests); the bound port is reported by `LiveServer.run(onReady:)`.
    public var port = 8080
    /// Required on page load (`/?token=…`), on the WebSocket upgrade (`/ws?token=…`) and for
    /// `/metrics` when set; required to bind anything but loopback.
    public var token: String?
    public var limits = LiveLimits()
    /// JPEG quality of output frames.
    public var jpegQuality = 85
    /// Clients with frames waiting share one UNet call (see docs/BENCHMARKS.md for what it gains).
    public var batchClients = true

    public init(host: String = "127.0.0.1", port: Int = 8080, token: String? = nil) {
        (self.host, self.port, self.token) = (host, port, token)
    }

    /// Loopback names and addresses: 127.0.0.0/8, ::1 and localhost.
    public var bindsLoopbackOnly: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Refuses configurations that would expose the model to the network without a token.
    public func validated() throws(LiveConfigurationError) -> Self {
        guard bindsLoopbackOnly || !(token ?? "").isEmpty else { throw .tokenRequired(host: host) }
        guard (0...65535).contains(port) else { throw .invalid("port \(port) is outside 0…65535") }
        let l = limits
        guard l.maxMessageBytes >= 1024, l.maxImageSide >= 8, l.maxMessagesPerSecond >= 1, l.maxClients >= 1,
              l.maxSteps >= 1, l.maxPromptCharacters >= 1 else {
            throw .invalid("limits must be positive (message ≥ 1024 bytes, image side ≥ 8)")
        }
        guard (1...100).contains(jpegQuality) else { throw .invalid("JPEG quality must be in 1…100") }
        return self
    }
}

public enum LiveConfigurationError: Error, Equatable, CustomStringConvertible {
    case tokenRequired(host: String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .tokenRequired(host):
            "binding \(host) exposes the server beyond this machine: pass --token SECRET (clients then open /?token=SECRET)"
        case let .invalid(m): "invalid server configuration: \(m)"
        }
    }
}

/// Compares secrets in time that does not depend on where they first differ.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let (x, y) = (Array(a.utf8), Array(b.utf8))
    var difference: UInt8 = x.count == y.count ? 0 : 1
    for i in 0..<max(x.count, y.count) {
        difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return difference == 0
}
