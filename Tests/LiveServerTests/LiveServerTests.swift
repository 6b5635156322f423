import Foundation
import Media
import NIOCore
import StreamDiffusion
import Testing
@testable import LiveServer

/// The live server end to end over real WebSocket connections on loopback, on the fixture model.
@Suite(.serialized) struct LiveServerTests {
    /// What the pipeline itself gives for these frames and prompts, through the server's JPEG
    /// encoding (deterministic: same pixels, same bytes). The random fixture model's noisy output
    /// loses 5–9 levels on average to JPEG's chroma subsampling, more than a frame or a prompt
    /// changes it, so outputs are compared after the same encoding, where they must agree exactly
    /// up to float noise (< 0.5 level on average; measured 0).
    func reference(frames: [RGBImage], prompts: [String], configure: (inout LiveSettings) -> Void = { _ in }) throws -> [RGBImage] {
        let engine = try LiveFixture.engine()
        var settings = engine.defaultSettings(prompt: prompts[0])
        configure(&settings)
        let stream = try engine.makeStream(settings)
        let io = ImageIO()
        return try zip(frames, prompts).map { frame, prompt in
            try stream.updatePrompt(prompt)
            // The frame as the server receives it: JPEG-decoded, then resized to the stream's size.
            let received = try io.decode(data: Data(buffer: LiveFixture.jpeg(frame)))
                .resizedToFill(width: LiveFixture.size, height: LiveFixture.size, filter: .bilinear)
            let image = try engine.pixels(stream.img2img(engine.tensor(FramePixels(received)))).image()
            return try io.decode(data: io.encode(image, format: .jpeg, quality: LiveServerConfiguration().jpegQuality))
        }
    }

    /// Outputs are the pipeline's own results, one per input, in order.
    @Test func framesRoundTrip() async throws {
        let server = try await RunningServer.start()
        let frames = try (1...3).map { try LiveFixture.frame($0) }
        let expected = try reference(frames: frames, prompts: Array(repeating: LiveSettings().prompt, count: 3))
        let outputs = try await LiveClient.run(server.url("/ws")) { client in
            let hello = try await client.json()
            #expect(hello["type"] as? String == "hello")
            #expect(hello["width"] as? Int == LiveFixture.size && hello["height"] as? Int == LiveFixture.size)
            var outputs: [(RGBImage, [String: Any])] = []
            for frame in frames {
                try await client.send(frame)
                outputs.append(try await client.frame())
            }
            return outputs.map { SendableFrame(image: $0.0, input: $0.1["input"] as? Int, framesOut: $0.1["framesOut"] as? Int) }
        }
        await server.stop()
        #expect(outputs.map(\.input) == [1, 2, 3])
        #expect(outputs.map(\.framesOut) == [1, 2, 3])
        for (output, wanted) in zip(outputs, expected) {
            #expect(meanDifference(output.image, wanted) < 0.5)
        }
        #expect(meanDifference(expected[0], expected[1]) > 1, "frames too alike for the test to tell them apart")
    }

    /// A prompt sent mid-stream applies to the next frame, on the same stream (no reload).
    @Test func promptChangeTakesEffect() async throws {
        let server = try await RunningServer.start()
        let frame = try LiveFixture.frame(1)
        let prompts = ["a red circle on a blue background", "a yellow star on a green background"]
        let expected = try reference(frames: [frame, frame], prompts: prompts)
        let outputs = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(json: #"{"type": "settings", "prompt": "\#(prompts[0])"}"#)
            try await client.send(frame)
            let first = try await client.frame().image
            try await client.send(json: #"{"type": "settings", "prompt": "\#(prompts[1])"}"#)
            try await client.send(frame)
            return [first, try await client.frame().image]
        }
        await server.stop()
        let apart = meanDifference(expected[0], expected[1])
        #expect(apart > 1, "the prompts must change the fixture model's output for this test to mean anything")
        #expect(meanDifference(outputs[0], expected[0]) < 0.5)
        #expect(meanDifference(outputs[1], expected[1]) < 0.5)
    }

    /// Clients whose frames wait while the model is busy share its next call; each still gets
    /// exactly its own stream's result (its own prompt).
    @Test func clientsWithFramesWaitingShareOneCall() async throws {
        // 1.5 s per call: room for B to connect and send while the worker is busy with A's first frame.
        let server = try await RunningServer.start(slowModel: 1.5)
        let prompts = ["a red circle on a blue background", "a yellow star on a green background"]
        let (frameA1, frameA2, frameB) = (try LiveFixture.frame(1), try LiveFixture.frame(2), try LiveFixture.frame(3))
        let expectedA = try reference(frames: [frameA1, frameA2], prompts: [prompts[0], prompts[0]])
        let expectedB = try reference(frames: [frameB], prompts: [prompts[1]])
        let url = server.url("/ws")
        let outputs = try await LiveClient.run(url) { a in
            _ = try await a.json()
            try await a.send(json: #"{"type": "settings", "prompt": "\#(prompts[0])"}"#)
            try await a.send(frameA1)
            while server.server.worker.modelCalls < 1 { try await Task.sleep(for: .milliseconds(5)) }
            // The worker has taken A's first frame and is busy for 1.5 s: B's frame and A's second wait.
            async let b = LiveClient.run(url) { b in
                _ = try await b.json()
                try await b.send(json: #"{"type": "settings", "prompt": "\#(prompts[1])"}"#)
                try await b.send(frameB)
                return try await b.frame().image
            }
            try await a.send(frameA2)
            let first = try await a.frame().image, second = try await a.frame().image
            return [first, second, try await b]
        }
        let calls = server.server.worker.modelCalls
        await server.stop()
        #expect(calls == 2, "A's first frame alone, then A's second and B's together")
        #expect(meanDifference(outputs[0], expectedA[0]) < 0.5)
        #expect(meanDifference(outputs[1], expectedA[1]) < 0.5)
        #expect(meanDifference(outputs[2], expectedB[0]) < 0.5)
    }

    /// Settings other than the prompt rebuild the client's stream: the output is the new stream's.
    @Test func otherSettingsRebuildTheStream() async throws {
        let server = try await RunningServer.start()
        let frame = try LiveFixture.frame(1)
        let prompt = LiveSettings().prompt
        let before = try reference(frames: [frame], prompts: [prompt])[0]
        let after = try reference(frames: [frame], prompts: [prompt]) { $0.seed = 9; $0.tIndexList = [20]; $0.guidanceScale = 2 }[0]
        let output = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(frame)
            _ = try await client.frame()
            try await client.send(json: #"{"type": "settings", "seed": 9, "tIndexList": [20], "guidanceScale": 2}"#)
            try await client.send(frame)
            return try await client.frame().image
        }
        await server.stop()
        #expect(meanDifference(before, after) > 1, "the settings must change the output for this test to mean anything")
        #expect(meanDifference(output, after) < 0.5)
    }

    /// A client flooding a slow model (50 ms a frame) never builds a queue: frames in between are
    /// dropped, outputs keep their order, and the last frame sent is the one finally processed.
    @Test func latestFrameWinsUnderAFlood() async throws {
        let server = try await RunningServer.start(slowModel: 0.05) { $0.limits.maxMessagesPerSecond = 10_000 }
        let count = 40
        let frames = try (1...count).map { try LiveFixture.jpeg(LiveFixture.frame($0)) }
        let result = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            for frame in frames { try await client.outbound.write(.binary(frame)) }
            var inputs: [Int] = []
            var stats: [String: Any] = [:]
            while inputs.last != count {
                let output = try await client.frame()
                inputs.append(try #require(output.stats["input"] as? Int))
                stats = output.stats
            }
            return (inputs, stats["dropped"] as? Int ?? -1, stats["framesIn"] as? Int ?? -1)
        }
        await server.stop()
        let (inputs, dropped, framesIn) = result
        #expect(framesIn == count)
        #expect(inputs.count < count / 2, "a 50 ms model cannot have processed most of a burst: \(inputs)")
        #expect(inputs == inputs.sorted() && Set(inputs).count == inputs.count)
        #expect(dropped == count - inputs.count)
    }

    /// Without batching, clients take turns: a client flooding a slow model (0.2 s a call) delays
    /// another client's frame by at most the call in progress and one more.
    @Test func clientsTakeTurns() async throws {
        let server = try await RunningServer.start(slowModel: 0.2) {
            $0.batchClients = false
            $0.limits.maxMessagesPerSecond = 10_000
        }
        let url = server.url("/ws")
        let callsForB = try await LiveClient.run(url) { a in
            _ = try await a.json()
            let (outbound, frames) = (a.outbound, try (1...40).map { try LiveFixture.jpeg(LiveFixture.frame($0)) })
            let flood = Task {
                for frame in frames {
                    try await outbound.write(.binary(frame))
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            defer { flood.cancel() }
            while server.server.worker.modelCalls < 2 { try await Task.sleep(for: .milliseconds(5)) }
            return try await LiveClient.run(url) { b in
                _ = try await b.json()
                try await b.send(LiveFixture.frame(99))
                let sent = server.server.worker.modelCalls
                _ = try await b.frame()
                return server.server.worker.modelCalls - sent
            }
        }
        await server.stop()
        #expect(callsForB <= 2, "B waited \(callsForB) model calls")
    }

    /// Bad frames and messages get an error reply each; the connection and other clients go on.
    @Test func badMessagesGetErrors() async throws {
        let server = try await RunningServer.start { $0.limits.maxImageSide = 128 }
        let good = try LiveFixture.frame(1)
        let jpeg = Array(try LiveFixture.jpeg(good).readableBytesView)
        let wide = Array(try LiveFixture.jpeg(LiveFixture.frame(1, width: 200, height: 100)).readableBytesView)
        let bad: [BadMessage] = [
            .binary(Array("GIF89a not a jpeg".utf8)), .binary(Array(jpeg.prefix(jpeg.count / 2))),  // not JPEG, truncated
            .binary([]), .binary(wide),                                                             // empty, over 128 per side
            .text("{not json"), .text(#"{"type": "launch"}"#),
            .text(#"{"type": "settings", "guidanceScale": 1e9}"#),
            .text(#"{"type": "settings", "tIndexList": [0, 1, 2, 3, 4, 5]}"#),
            .text(#"{"type": "settings", "tIndexList": [50]}"#),
        ]
        let codes = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            var codes: [String] = []
            for message in bad {
                switch message {
                case let .binary(bytes): try await client.send(bytes: bytes)
                case let .text(text): try await client.send(json: text)
                }
                codes.append(try await client.errorCode())
            }
            try await client.send(good)
            _ = try await client.frame()
            return codes
        }
        #expect(codes == ["bad_image", "bad_image", "bad_image", "bad_image",
                          "bad_json", "bad_json", "bad_settings", "bad_settings", "bad_settings"])
        let metrics = try await server.get("/metrics").body
        #expect(metrics.contains(#"streamdiffusion_errors_total{code="bad_image"} 4"#))
        await server.stop()
    }

    /// A message over the size limit closes only that connection; another client is still served.
    @Test func hugeMessageClosesOnlyThatClient() async throws {
        let server = try await RunningServer.start { $0.limits.maxMessageBytes = 64 << 10 }
        let closed = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(bytes: [UInt8](repeating: 0xFF, count: 200 << 10))
            do {
                while true { _ = try await client.next() }
            } catch LiveTestError.closed {
                return true
            } catch {
                return true   // the server may also reset the connection
            }
        }
        #expect(closed)
        let served = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(LiveFixture.frame(2))
            return try await client.frame().image.width
        }
        #expect(served == LiveFixture.size)
        await server.stop()
    }

    @Test func tokenIsEnforced() async throws {
        #expect(throws: LiveConfigurationError.tokenRequired(host: "0.0.0.0")) {
            _ = try LiveServerConfiguration(host: "0.0.0.0", port: 0).validated()
        }
        let server = try await RunningServer.start { $0.token = "s3cret" }
        #expect(try await server.get("/").status == 401)
        #expect(try await server.get("/?token=wrong").status == 401)
        #expect(try await server.get("/?token=s3cret").status == 200)
        #expect(try await server.get("/metrics").status == 401)
        #expect(try await server.get("/healthz").status == 200)
        await #expect(throws: (any Error).self) {
            _ = try await LiveClient.run(server.url("/ws?token=wrong"), timeout: 10) { client in try await client.json().count }
        }
        let hello = try await LiveClient.run(server.url("/ws?token=s3cret")) { client in try await client.json()["type"] as? String }
        #expect(hello == "hello")
        await server.stop()
    }

    @Test func pageHealthAndMetrics() async throws {
        let server = try await RunningServer.start()
        let page = try await server.get("/")
        #expect(page.status == 200 && page.body.contains("<canvas"))
        #expect(try await server.get("/healthz").body.contains(#""status":"ok""#))
        _ = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(LiveFixture.frame(1))
            return try await client.frame().image.width
        }
        let metrics = try await server.get("/metrics").body
        #expect(metrics.contains("streamdiffusion_frames_in_total 1\n"))
        #expect(metrics.contains("streamdiffusion_frames_out_total 1\n"))
        #expect(metrics.contains("streamdiffusion_latency_seconds_count 1\n"))
        #expect(metrics.contains(#"streamdiffusion_latency_seconds_bucket{le="+Inf"} 1"#))
        await server.stop()
    }

    /// One client too many is refused at the upgrade; one over the message rate gets an error.
    @Test func clientAndRateLimits() async throws {
        let server = try await RunningServer.start { $0.limits.maxClients = 1; $0.limits.maxMessagesPerSecond = 5 }
        let result = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            var refused = false
            do {
                _ = try await LiveClient.run(server.url("/ws"), timeout: 10) { second in try await second.json().count }
            } catch {
                refused = true
            }
            for _ in 0..<8 { try await client.send(json: #"{"type": "settings", "seed": 3}"#) }
            return (refused, try await client.errorCode())
        }
        #expect(result.0, "a second client was admitted over maxClients 1")
        #expect(result.1 == "rate_limited")
        await server.stop()
    }

    /// A client that leaves while the model works on its frame leaves no session behind, and the
    /// worker serves the next client.
    @Test func disconnectMidFrameLeavesNothingBehind() async throws {
        let server = try await RunningServer.start(slowModel: 0.2)
        _ = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(LiveFixture.frame(1))
            try await client.send(LiveFixture.frame(2))
            return 0
        }
        var clients = -1
        for _ in 0..<50 where clients != 0 {
            try await Task.sleep(for: .milliseconds(20))
            clients = server.server.metrics.clientCount
        }
        #expect(clients == 0)
        #expect(server.server.worker.sessionCount == 0)
        let served = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(LiveFixture.frame(3))
            return try await client.frame().stats["input"] as? Int
        }
        #expect(served == 1)
        await server.stop()
    }

    /// txt2img mode streams generations of the prompt with no input, one at a time per client.
    @Test func txt2imgModeStreams() async throws {
        let server = try await RunningServer.start()
        let inputs = try await LiveClient.run(server.url("/ws")) { client in
            _ = try await client.json()
            try await client.send(json: #"{"type": "settings", "mode": "txt2img", "prompt": "a blue square"}"#)
            var inputs: [Int?] = []
            for _ in 0..<3 { inputs.append(try await client.frame().stats["input"] as? Int) }
            return inputs
        }
        #expect(inputs == [nil, nil, nil])
        await server.stop()
    }
}

enum BadMessage: Sendable { case binary([UInt8]), text(String) }

struct SendableFrame: Sendable {
    let image: RGBImage
    let input: Int?
    let framesOut: Int?
}
