import Foundation
import Testing
@testable import streamdiffusion

/// The pure pieces of `bench scaling`, `bench guidance` and `bench ssf`.
struct FindingsPiecesTests {
    @Test func longestRunOfTrue() {
        #expect(longestRun([]) == 0)
        #expect(longestRun([false, false]) == 0)
        #expect(longestRun([false, true, true, false, true, true, true, false]) == 3)
        #expect(longestRun([true, true, true, true]) == 4)
    }

    /// Two seeds: skips F T T F (10 CPU ms/frame) and F T T T (20), filter off at 30 ms/frame:
    /// 5 of 8 frames skipped, 15 ms mean, 2× saving, worst run 3, mean run 2.5.
    @Test func ssfRowSummarisesTheSeeds() {
        let runs = [SimilarityMeasurement(processed: 2, skipped: 2, wallMsPerFrame: 5, cpuMsPerFrame: 10, skips: [false, true, true, false]),
                    SimilarityMeasurement(processed: 1, skipped: 3, wallMsPerFrame: 7, cpuMsPerFrame: 20, skips: [false, true, true, true])]
        let row = SSFBenchCommand.summarise(runs, clip: "static", threshold: 0.98, baseline: 30)
        #expect(row.frames == 8 && row.skipped == 5 && row.skipRate == 5.0 / 8)
        #expect(row.cpuMsPerFrame == 15 && row.wallMsPerFrame == 6 && row.cpuSaving == 2)
        #expect(row.stutter == 3 && row.stutterMean == 2.5)
        #expect(SSFBenchCommand.summarise(runs, clip: "static", threshold: nil, baseline: nil).cpuSaving == 1)
    }

    /// The fast pan moves size/32 px per frame: consecutive frames fall below every threshold the
    /// findings sweep (0.95), where the slow pan's stay above the official 0.98.
    @Test func fastPanIsBelowTheThresholds() {
        for size in [128, 256] {
            let fast = SimilarityClip(kind: .fastPan, size: size), slow = SimilarityClip(kind: .slowPan, size: size)
            #expect(SimilarityClipTests.cosine(fast.frame(4), fast.frame(5)) < 0.95, "\(size)")
            #expect(SimilarityClipTests.cosine(slow.frame(4), slow.frame(5)) > 0.98, "\(size)")
            #expect(fast.frame(3) == SimilarityClip(kind: .fastPan, size: size).frame(3))
        }
    }
}

/// `bench scaling`, `bench guidance` and `bench ssf` run as a user runs them, with tiny settings,
/// and print one JSON object with the fields tools/plot_findings.py reads.
@Suite(.serialized) struct FindingsBenchCLITests {
    static let demo = CLITests.root.appendingPathComponent("Models/demo").path

    func json(_ arguments: [String], in directory: URL? = nil) throws -> [String: Any] {
        let result = try CLITests().run(arguments, in: directory)
        #expect(result.status == 0, "\(result.output)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8))
        return try #require(object as? [String: Any], "not one JSON object: \(result.output)")
    }

    func rows(_ report: [String: Any]) throws -> [[String: Any]] {
        try #require(report["rows"] as? [[String: Any]])
    }

    @Test func scalingReportsEveryConfiguration() throws {
        let report = try json(["bench", "scaling", "--model", CLITests.models.appendingPathComponent("tiny-sd15").path, "--size", "64",
                               "--steps", "1,2", "--frame-buffer-sizes", "1,2", "--repeats", "1", "--json"])
        #expect(report["benchmark"] as? String == "scaling")
        #expect((report["memoryMethod"] as? String)?.hasPrefix("subprocess") == true)
        let rows = try rows(report)
        #expect(rows.map { $0["rows"] as? Int } == [1, 2, 2, 4])
        for row in rows {
            let (s, f, ms) = (try #require(row["steps"] as? Int), try #require(row["frameBufferSize"] as? Int), try #require(row["msPerCall"] as? Double))
            #expect(ms > 0)
            #expect(abs(try #require(row["framesPerSecond"] as? Double) - 1000 * Double(f) / ms) < 1e-6)
            #expect(abs(try #require(row["latencyMs"] as? Double) - Double(s) * ms) < 1e-6)
            #expect(try #require(row["peakRSSMiB"] as? Double) > 1)
        }
    }

    @Test func guidanceScoresEverySetting() throws {
        let report = try json(["bench", "guidance", "--model", Self.demo, "--prompts", "2", "--seeds", "2", "--cfg-types", "none,full",
                               "--guidance-scales", "1.5", "--img2img-t-index-list", "16,32,45", "--json"])
        #expect(report["benchmark"] as? String == "guidance")
        let rows = try rows(report)
        // none runs once per setting; full once per guidance scale: 2 settings × 2 rows.
        #expect(rows.map { "\($0["mode"] ?? "") \($0["cfg"] ?? "")" } == ["txt2img none", "txt2img full", "img2img none", "img2img full"])
        for row in rows {
            #expect(row["pictures"] as? Int == 4)
            let score = try #require(row["score"] as? Double), diversity = try #require(row["diversity"] as? Double)
            #expect((0...1).contains(score) && (0...1).contains(diversity))
            #expect(row["guidanceActive"] as? Bool == (row["cfg"] as? String == "full"))
        }
    }

    /// Without --model the bundled demo model is used, found from the working directory.
    @Test func ssfReportsEveryClipAndThreshold() throws {
        let report = try json(["bench", "ssf", "--clips", "static,fast-pan", "--thresholds", "0.98", "--frames", "8", "--seeds", "1", "--repeats", "1",
                               "--json"], in: CLITests.root)
        #expect(report["model"] as? String == "demo")
        let rows = try rows(report)
        #expect(rows.map { $0["clip"] as? String } == ["static", "static", "fast-pan", "fast-pan"])
        #expect(rows.map { $0["threshold"] as? Double } == [nil, 0.98, nil, 0.98])
        #expect(rows.map { $0["filterOn"] as? Bool } == [false, true, false, true])
        for row in rows {
            #expect(row["frames"] as? Int == 8)
            #expect(try #require(row["cpuMsPerFrame"] as? Double) > 0)
            #expect(try #require(row["stutter"] as? Int) <= 8)
        }
        #expect(rows[0]["skipRate"] as? Double == 0)   // filter off never skips
    }

    @Test func badArgumentsAreClearErrors() throws {
        let cli = CLITests()
        for (arguments, message) in [(["bench", "scaling", "--memory", "x"], "--memory must be subprocess or in-process"),
                                     (["bench", "scaling", "--steps", "0"], "--steps: bad value '0'"),
                                     (["bench", "guidance", "--model", Self.demo, "--cfg-types", "self,bogus"], "--cfg-types: bad value 'bogus'"),
                                     (["bench", "guidance", "--model", Self.demo, "--prompts", "22"], "--prompts must be 1...21"),
                                     (["bench", "ssf", "--model", Self.demo, "--thresholds", "0.9,1.5"], "--thresholds: bad value '1.5'"),
                                     (["bench", "ssf", "--model", Self.demo, "--clips", "pan"], "--clips: bad value 'pan'")] {
            let result = try cli.run(arguments)
            #expect(result.status != 0 && result.output.contains(message), "\(arguments): \(result.output)")
        }
    }
}
