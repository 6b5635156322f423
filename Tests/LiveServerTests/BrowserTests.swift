import Foundation
import Media
import Testing
@testable import LiveServer

/// The page in a real browser: Debian's chromium, headless, with its fake camera (a moving test
/// pattern), against a server on loopback. Driven over the Chrome DevTools Protocol.
///
/// `make test` installs chromium and sets LIVE_REQUIRE_BROWSER=1, so there a missing browser is a
/// failure; a plain `swift test` without chromium skips this suite.
@Suite(.serialized, .enabled(if: Chromium.path != nil || ProcessInfo.processInfo.environment["LIVE_REQUIRE_BROWSER"] == "1"))
struct BrowserTests {
    @Test func pageStreamsTheFakeCameraThroughTheModel() async throws {
        let chromium = try #require(Chromium.path, "chromium is not installed (make test installs it)")
        let server = try await RunningServer.start()
        let browser = try Chromium(executable: chromium, url: "http://127.0.0.1:\(server.port)/")
        defer { browser.close() }
        let page = try await browser.pageWebSocket()

        let result = try await LiveClient.run(page, timeout: 90) { client in
            var cdp = DevTools(client: client)
            // Wait (up to 60 s of real time) for the camera, then for outputs to come back.
            var stats: [String: Any] = [:]
            for _ in 0..<600 {
                stats = try await cdp.evaluateJSON("JSON.stringify(window.liveStats)")
                if (stats["framesOut"] as? Int ?? 0) >= 5 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            // The overlay must keep changing as outputs arrive (up to 10 s: the machine may be busy).
            let overlayBefore = try await cdp.evaluateString("document.getElementById('stats').textContent")
            var overlayAfter = overlayBefore
            for _ in 0..<100 where overlayAfter == overlayBefore {
                try await Task.sleep(for: .milliseconds(100))
                overlayAfter = try await cdp.evaluateString("document.getElementById('stats').textContent")
            }
            let rect = try await cdp.evaluateJSON("JSON.stringify(document.getElementById('output').getBoundingClientRect())")
            let png = try await cdp.screenshot()
            return BrowserResult(stats: String(decoding: try JSONSerialization.data(withJSONObject: stats), as: UTF8.self),
                                 overlayBefore: overlayBefore, overlayAfter: overlayAfter,
                                 rect: [rect["x"], rect["y"], rect["width"], rect["height"]].map { ($0 as? Double) ?? -1 },
                                 png: png)
        }
        let metrics = try await server.get("/metrics").body
        // The browser goes first: connections it opened but never used (preconnects) would hold up
        // the server's graceful shutdown until chromium drops them (about a minute).
        browser.close()
        await server.stop()

        let stats = try #require(JSONSerialization.jsonObject(with: Data(result.stats.utf8)) as? [String: Any])
        #expect(stats["cameraReady"] as? Bool == true, "the fake camera did not start: \(stats)")
        #expect((stats["framesOut"] as? Int ?? 0) >= 5, "outputs did not arrive: \(stats)")
        #expect((stats["latencyMs"] as? Double).map { $0 > 0 } == true, "no end-to-end latency measured: \(stats)")
        #expect(result.overlayBefore.contains("fps") && result.overlayBefore != result.overlayAfter,
                "the stats overlay did not update: '\(result.overlayBefore)' → '\(result.overlayAfter)'")
        #expect(metrics.contains("streamdiffusion_frames_out_total"))

        // The screenshot's output canvas must show an image: not one flat colour (a blank canvas is
        // flat black). The random fixture model's output varies by tens of levels across the frame.
        let shot = try ImageIO().decode(data: result.png, name: "screenshot")
        let screenshotURL = FileManager.default.temporaryDirectory.appendingPathComponent("live-browser-test.png")
        try shot.write(to: screenshotURL)
        let (x, y, w, h) = (Int(result.rect[0]), Int(result.rect[1]), Int(result.rect[2]), Int(result.rect[3]))
        #expect(w > 100 && h > 100 && x >= 0 && y >= 0 && x + w <= shot.width && y + h <= shot.height,
                "output canvas at \(result.rect) outside the \(shot.width)×\(shot.height) screenshot")
        guard w > 100, h > 100, x + w <= shot.width, y + h <= shot.height else { return }
        // Sample the canvas area, avoiding the stats overlay in its top-right corner.
        var luma: [Double] = []
        for sy in stride(from: y + h / 3, to: y + h - 4, by: 3) {
            for sx in stride(from: x + 4, to: x + w - 4, by: 3) {
                let p = shot.pixel(x: sx, y: sy)
                luma.append(0.299 * Double(p.red) + 0.587 * Double(p.green) + 0.114 * Double(p.blue))
            }
        }
        let mean = luma.reduce(0, +) / Double(luma.count)
        let deviation = (luma.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(luma.count)).squareRoot()
        #expect(deviation > 5, "output canvas looks blank (mean \(mean), std \(deviation)); screenshot: \(screenshotURL.path)")
    }
}

struct BrowserResult: Sendable {
    let stats: String
    let overlayBefore: String, overlayAfter: String
    let rect: [Double]
    let png: Data
}

/// A headless chromium process with remote debugging on a free port.
final class Chromium: @unchecked Sendable {
    static var path: String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for dir in dirs where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") { return "\(dir)/\(name)" }
        }
        return nil
    }

    let process = Process()
    let profile: URL
    private var closed = false

    init(executable: String, url: String) throws {
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir=\(profile.path)",
            "--window-size=1280,900", url,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// The DevTools WebSocket of the page (chromium writes its port to DevToolsActivePort).
    func pageWebSocket() async throws -> String {
        let portFile = profile.appendingPathComponent("DevToolsActivePort")
        for _ in 0..<300 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8),
               let port = text.split(separator: "\n").first.flatMap({ Int($0) }),
               let list = try? HTTPGet.fetch(host: "127.0.0.1", port: port, path: "/json/list"),
               let targets = try? JSONSerialization.jsonObject(with: Data(list.body.utf8)) as? [[String: Any]],
               let page = targets.first(where: { $0["type"] as? String == "page" }),
               let socket = page["webSocketDebuggerUrl"] as? String {
                return socket
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LiveTestError.unexpected("chromium did not open its DevTools port within 30 s")
    }

    func close() {
        guard !closed else { return }
        closed = true
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: profile)
    }
}

/// Just enough of the Chrome DevTools Protocol: evaluate an expression, take a screenshot.
struct DevTools {
    var client: LiveClient
    var nextID = 0

    mutating func call(_ method: String, _ params: [String: Any]) async throws -> [String: Any] {
        nextID += 1
        let request = try JSONSerialization.data(withJSONObject: ["id": nextID, "method": method, "params": params])
        try await client.send(json: String(decoding: request, as: UTF8.self))
        while true {
            let message = try await client.json()
            guard message["id"] as? Int == nextID else { continue }   // events
            if let error = message["error"] { throw LiveTestError.unexpected("\(method): \(error)") }
            return message["result"] as? [String: Any] ?? [:]
        }
    }

    mutating func evaluateString(_ expression: String) async throws -> String {
        let result = try await call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        return (result["result"] as? [String: Any])?["value"] as? String ?? ""
    }

    mutating func evaluateJSON(_ expression: String) async throws -> [String: Any] {
        let text = try await evaluateString(expression)
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    mutating func screenshot() async throws -> Data {
        let result = try await call("Page.captureScreenshot", ["format": "png"])
        guard let base64 = result["data"] as? String, let data = Data(base64Encoded: base64) else {
            throw LiveTestError.unexpected("Page.captureScreenshot returned no image")
        }
        return data
    }
}
