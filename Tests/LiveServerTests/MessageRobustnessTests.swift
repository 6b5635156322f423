import Foundation
import Media
import Testing
@testable import LiveServer

/// Property tests of the two parsers that see client bytes: settings JSON and image frames.
/// Thousands of mutated messages must each give a value or a typed error — never a crash, a hang
/// or a setting outside its documented range.
@Suite struct MessageRobustnessTests {
    struct Mutator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }

        /// Flips, deletes, inserts or truncates a few bytes.
        mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
            var out = bytes
            for _ in 0...below(4) {
                switch below(4) {
                case 0 where !out.isEmpty: out[below(out.count)] ^= UInt8(truncatingIfNeeded: next() | 1)
                case 1 where !out.isEmpty: out.remove(at: below(out.count))
                case 2: out.insert(UInt8(truncatingIfNeeded: next()), at: below(out.count + 1))
                default: out = Array(out.prefix(below(out.count + 1)))
                }
            }
            return out
        }
    }

    @Test func mutatedSettingsGiveValidSettingsOrTypedErrors() throws {
        let valid = #"{"type":"settings","mode":"txt2img","prompt":"a cat","negativePrompt":"","guidanceScale":1.4,"delta":0.5,"tIndexList":[20,40],"seed":7,"similarityFilter":true,"similarityThreshold":0.9}"#
        let limits = LiveLimits()
        var mutator = Mutator(state: 1)
        var accepted = 0
        for _ in 0..<3000 {
            let text = String(decoding: mutator.mutate(Array(valid.utf8)), as: UTF8.self)
            guard let message = try? JSONDecoder().decode(ClientMessage.self, from: Data(text.utf8)) else { continue }
            do {
                let s = try message.applied(to: LiveSettings(), limits: limits, scheduleLength: 50)
                accepted += 1
                #expect((0...20).contains(s.guidanceScale) && (0...10).contains(s.delta))
                #expect((1...limits.maxSteps).contains(s.tIndexList.count) && s.tIndexList.allSatisfy { (0..<50).contains($0) })
                #expect((0...1).contains(s.similarityThreshold))
            } catch {
                #expect(error.code == "bad_settings")
            }
        }
        #expect(accepted > 100, "the mutations should leave many messages valid (\(accepted))")
    }

    @Test func mutatedFramesDecodeOrFailCleanly() throws {
        let frame = try LiveFixture.frame(3)
        let jpeg = Array(try ImageIO().encode(frame, format: .jpeg, quality: 90))
        var mutator = Mutator(state: 2)
        var decoded = 0
        for _ in 0..<1500 {
            do {
                let image = try ImageIO(maxPixels: 4096 * 4096).decode(data: mutator.mutate(jpeg))
                #expect(image.width > 0 && image.height > 0)
                decoded += 1
            } catch is MediaError {
                // refused with a typed error: fine
            }
        }
        #expect(decoded < 1500)
    }
}
