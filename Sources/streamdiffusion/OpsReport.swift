import Foundation
import Tensors

/// Results of `bench ops`, printable as tables or JSON.
struct OpsReport: Encodable {
    struct Row: Encodable {
        let key: String, summary: String
        let ms: Double
        /// GFLOP/s for compute-bound ops, GB/s for memory-bound ones.
        let rate: Double
        let unit: String
        /// Fraction of the measured FMA peak (compute) or of memcpy bandwidth (memory).
        let fractionOfPeak: Double
        let peerMs: Double?
        /// Peer time / our time: above 1 means we are faster.
        let speedup: Double?

        init(item: OpBenchmark.Case, ms: Double, peakGFLOPS: Double, copyGBps: Double, peerMs: Double?) {
            key = item.key
            summary = item.summary
            self.ms = ms
            switch item.work {
            case let .flops(f):
                rate = f / (ms / 1e3) / 1e9
                unit = "GFLOP/s"
                fractionOfPeak = peakGFLOPS > 0 ? rate / peakGFLOPS : .nan
            case let .bytes(b):
                rate = b / (ms / 1e3) / 1e9
                unit = "GB/s"
                fractionOfPeak = copyGBps > 0 ? rate / copyGBps : .nan
            }
            self.peerMs = peerMs
            speedup = peerMs.map { $0 / ms }
        }
    }

    struct Section: Encodable {
        let dtype: String
        let threads: Int
        let peakGFLOPS: Double
        let copyGBps: Double
        let rows: [Row]

        func table(peer: String?) -> String {
            var lines = ["", "\(dtype), \(threads) thread\(threads == 1 ? "" : "s") — measured peak \(format(peakGFLOPS, 1)) GFLOP/s, memcpy \(format(copyGBps, 1)) GB/s"]
            var header = pad("op", 44) + pad("ms", 10, right: true) + pad("rate", 20, right: true) + pad("of peak", 10, right: true)
            if peer != nil { header += pad("PyTorch ms", 12, right: true) + pad("speed-up", 10, right: true) }
            lines.append(header)
            for r in rows {
                var line = pad(r.summary, 44) + pad(format(r.ms, 3), 10, right: true)
                    + pad("\(format(r.rate, 1)) \(r.unit)", 20, right: true)
                    + pad(r.fractionOfPeak.isNaN ? "–" : "\(format(100 * r.fractionOfPeak, 0)) %", 10, right: true)
                if peer != nil {
                    line += pad(r.peerMs.map { format($0, 3) } ?? "–", 12, right: true)
                        + pad(r.speedup.map { "\(format($0, 2))×" } ?? "–", 10, right: true)
                }
                lines.append(line)
            }
            return lines.joined(separator: "\n")
        }
    }

    let isa: String
    let oneDNN: String
    let cores: Int
    var peer: String?
    var sections: [Section] = []

    init(isa: String, oneDNN: String, cores: Int) {
        (self.isa, self.oneDNN, self.cores) = (isa, oneDNN, cores)
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let gap = max(0, width - text.count)
    return right ? String(repeating: " ", count: gap) + text : text + String(repeating: " ", count: gap)
}
