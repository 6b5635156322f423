import Foundation

/// Runs a Python peer benchmark script and decodes its one-line JSON answer.
struct PeerRunner {
    struct Report: Decodable {
        struct Timing: Decodable {
            let ms: Double
            /// Similarity rows: process CPU time per input frame and frames skipped.
            var cpu_ms: Double?
            var skipped: Int?
        }
        let peer: String
        let torch_version: String?
        let threads: Int
        let dtype: String
        let results: [String: Timing]
    }

    enum Failure: Error, CustomStringConvertible {
        case scriptMissing(String)
        case failed(String, Int32, String)
        case unreadable(String)
        var description: String {
            switch self {
            case let .scriptMissing(path):
                return "peer script \(path) not found (run from the repository root, or pass --peer-script)"
            case let .failed(command, status, stderr):
                return "peer `\(command)` exited with status \(status): \(stderr.suffix(600))\n(install the peer with `make python-tools`)"
            case let .unreadable(output):
                return "peer output is not the expected JSON: \(output.prefix(300))"
            }
        }
    }

    let python: String
    let script: String

    func run(_ arguments: [String]) throws -> Report {
        guard FileManager.default.fileExists(atPath: script) else { throw Failure.scriptMissing(script) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Drain stderr on another thread while reading stdout, so a chatty peer cannot block.
        final class Sink: @unchecked Sendable { var data = Data() }
        let stderrSink = Sink()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            stderrSink.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let stderrData = stderrSink.data
        process.waitUntilExit()
        let command = ([python, script] + arguments).joined(separator: " ")
        guard process.terminationStatus == 0 else {
            throw Failure.failed(command, process.terminationStatus, String(decoding: stderrData, as: UTF8.self))
        }
        do {
            return try JSONDecoder().decode(Report.self, from: stdoutData)
        } catch {
            throw Failure.unreadable(String(decoding: stdoutData, as: UTF8.self))
        }
    }
}
