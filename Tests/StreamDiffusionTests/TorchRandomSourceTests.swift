import Foundation
import ModelFiles
import Testing
@testable import StreamDiffusion

/// Fixtures from tools/make_rng_fixtures.py: torch 2.13.0+cpu on x86-64 Linux (AVX512 capability,
/// which runs torch's AVX2 normal kernel), `torch.Generator("cpu").manual_seed(seed)` +
/// `torch.randn`/`torch.rand` in fp32; the `scalar` cases were made under
/// `ATEN_CPU_CAPABILITY=default` (torch's portable kernel, what ARM builds run).
///
/// Agreement: bit-exact (`bitPattern`) for every case. The `.avx2` kernel is pure IEEE float
/// arithmetic, so it must be bit-exact everywhere. The `count < 16` double path (libm
/// `log1p`/`sin`/`cos`) and the `.scalar` kernel (libm `logf`/`cosf`/`sinf`) are bit-exact against
/// glibc; with another libm they are held to 1e-6 absolute instead (a last-bit libm difference).
enum TorchRNGFixtures {
    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rng/randn.safetensors")

    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let op: String
        let seed: UInt64
        let size: Int
        let kernel: String
        let tensor: String?
        let head: String?
        let tail: String?
        let edge: Int?
        let fnv1a64: String?
        let sum: Double?
        let sumsq: Double?
        var testDescription: String { name }
    }

    struct Step: Decodable, Sendable {
        let op: String
        let size: Int
        let tensor: String
    }

    struct Sequence: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let seed: UInt64
        let steps: [Step]
        var testDescription: String { "seq.\(name)" }
    }

    struct Index: Decodable {
        let cases: [Case]
        let sequences: [Sequence]
    }

    static let file = Result { try SafeTensorsFile(url: url) }

    static let index: Index? = {
        guard let json = try? file.get().metadata["cases"] else { return nil }
        return try? JSONDecoder().decode(Index.self, from: Data(json.utf8))
    }()

    static var cases: [Case] { index?.cases ?? [] }
    static var sequences: [Sequence] { index?.sequences ?? [] }

    static func floats(_ name: String) throws -> [Float] {
        try file.get().withBytes(of: name) { bytes, entry in
            #expect(entry.byteRange.count % 4 == 0)
            return (0..<(bytes.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
    }

    /// True where this process uses glibc's libm, the one torch used for the fixtures.
    static var sameLibm: Bool {
        #if canImport(Glibc)
        true
        #else
        false
        #endif
    }

    static func kernel(_ name: String) -> TorchRandomSource.Kernel {
        name == "scalar" ? .scalar : .avx2
    }

    /// Draws one step the way the fixture did.
    static func draw(_ op: String, _ size: Int, from source: inout TorchRandomSource) -> [Float] {
        op == "rand" ? source.uniform(count: size) : source.normal(count: size)
    }

    /// Whether libm takes part in producing `size` values of `op` with `kernel`.
    static func usesLibm(op: String, size: Int, kernel: TorchRandomSource.Kernel) -> Bool {
        op == "randn" && (size < 16 || kernel == .scalar)
    }

    /// Bit-exact comparison (or 1e-6 where libm may differ); reports the first mismatches.
    static func expectMatch(_ got: [Float], _ want: [Float], exact: Bool, _ label: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.count == want.count, "\(label): count", sourceLocation: sourceLocation)
        var reported = 0
        for (i, (g, w)) in zip(got, want).enumerated() {
            let ok = exact ? g.bitPattern == w.bitPattern : abs(g - w) <= 1e-6
            if !ok && reported < 5 {
                reported += 1
                Issue.record("\(label)[\(i)]: got \(g) (0x\(String(g.bitPattern, radix: 16))), torch \(w) (0x\(String(w.bitPattern, radix: 16)))",
                             sourceLocation: sourceLocation)
            }
        }
    }

    /// FNV-1a 64 over the little-endian fp32 bytes (as tools/make_rng_fixtures.py computes it).
    static func fnv1a64(_ values: [Float]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for value in values {
            var bits = value.bitPattern
            for _ in 0..<4 {
                hash ^= UInt64(bits & 0xFF)
                hash = hash &* 0x0000_0100_0000_01B3
                bits >>= 8
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

@Suite struct TorchRandomSourceTests {
    typealias F = TorchRNGFixtures

    @Test func fixtureDescribesTorch213OnX86() throws {
        let metadata = try F.file.get().metadata
        #expect(metadata["torch_version"]?.hasPrefix("2.13.0") == true)
        #expect(["AVX2", "AVX512"].contains(metadata["cpu_capability"] ?? ""))
        #expect(metadata["scalar_cpu_capability"] == "DEFAULT")
        // 5 seeds x (9 randn + 3 rand sizes) + 2 seeds x 6 scalar sizes; 4 sequences.
        #expect(F.cases.count == 72)
        #expect(F.sequences.count == 4)
    }

    @Test(arguments: TorchRNGFixtures.cases)
    func matchesTorch(_ c: TorchRNGFixtures.Case) throws {
        let kernel = F.kernel(c.kernel)
        var source = TorchRandomSource(seed: c.seed, kernel: kernel)
        let got = F.draw(c.op, c.size, from: &source)
        #expect(got.count == c.size)
        let exact = F.sameLibm || !F.usesLibm(op: c.op, size: c.size, kernel: kernel)
        if let tensor = c.tensor {
            F.expectMatch(got, try F.floats(tensor), exact: exact, c.name)
        } else {
            let head = try F.floats(try #require(c.head))
            let tail = try F.floats(try #require(c.tail))
            let edge = try #require(c.edge)
            F.expectMatch(Array(got.prefix(edge)), head, exact: exact, c.name + ".head")
            F.expectMatch(Array(got.suffix(edge)), tail, exact: exact, c.name + ".tail")
            if exact { #expect(F.fnv1a64(got) == c.fnv1a64, "\(c.name): checksum of all \(c.size) values") }
            let sum = got.reduce(0.0) { $0 + Double($1) }
            let sumsq = got.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(sum - (c.sum ?? .nan)) <= 1e-9 * Double(c.size))
            #expect(abs(sumsq - (c.sumsq ?? .nan)) <= 1e-9 * Double(c.size))
        }
    }

    /// Successive calls on one generator: engine state and the cached second normal persist.
    @Test(arguments: TorchRNGFixtures.sequences)
    func sequenceOnOneGenerator(_ s: TorchRNGFixtures.Sequence) throws {
        var source = TorchRandomSource(seed: s.seed)
        for (i, step) in s.steps.enumerated() {
            let got = F.draw(step.op, step.size, from: &source)
            let exact = F.sameLibm || !F.usesLibm(op: step.op, size: step.size, kernel: .avx2)
            F.expectMatch(got, try F.floats(step.tensor), exact: exact, "seq.\(s.name) step \(i): \(step.op)(\(step.size))")
        }
    }

    /// The C++ standard's check value for mt19937 (10000th output for the default seed 5489).
    @Test func engineIsStandardMT19937() {
        var source = TorchRandomSource(seed: 5489)
        #expect(source.nextUInt32() == 3_499_211_612)
        for _ in 0..<9998 { _ = source.nextUInt32() }
        #expect(source.nextUInt32() == 4_123_659_995)
    }

    @Test func seedKeepsLow32Bits() {
        var a = TorchRandomSource(seed: (1 << 32) + 7)
        var b = TorchRandomSource(seed: 7)
        #expect(a.normal(count: 40) == b.normal(count: 40))
        #expect(a.normal(count: 3) == b.normal(count: 3))
    }

    @Test func emptyDrawConsumesNothing() {
        var a = TorchRandomSource(seed: 3)
        var b = TorchRandomSource(seed: 3)
        #expect(a.normal(count: 0).isEmpty)
        #expect(a.uniform(count: 0).isEmpty)
        #expect(a.normal(count: 5) == b.normal(count: 5))
    }

    /// Copies fork the stream, including the cached normal.
    @Test func valueSemantics() {
        var a = TorchRandomSource(seed: 11)
        _ = a.normal(count: 1)  // leaves a cached sample
        var b = a
        #expect(a.normal(count: 3) == b.normal(count: 3))
        #expect(a.normal(count: 20) == b.normal(count: 20))
    }

    /// For count % 16 != 0 the last 16 values are redrawn: randn(17)[0] is randn(16)[0], the rest differ.
    @Test func tailBlockIsRedrawn() {
        var a = TorchRandomSource(seed: 0)
        var b = TorchRandomSource(seed: 0)
        let sixteen = a.normal(count: 16)
        let seventeen = b.normal(count: 17)
        #expect(seventeen[0].bitPattern == sixteen[0].bitPattern)
        #expect(zip(seventeen[1...], sixteen[1...]).allSatisfy { $0 != $1 })
    }

    @Test func uniformIsInUnitInterval() {
        var source = TorchRandomSource(seed: 9)
        let u = source.uniform(count: 10_000)
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(u.allSatisfy { ($0 * 0x1p24).rounded() == $0 * 0x1p24 })  // multiples of 2^-24
    }

    /// The ported Cephes polynomials stay close to libm (guards the port independently of torch).
    @Test func avx2PolynomialsTrackLibm() {
        var worstLog: Double = 0, worstTrig: Double = 0
        for k in 1...20_000 {
            let x = Float(k) / 20_000  // (0, 1]
            worstLog = max(worstLog, abs(Double(AVX2Kernel.log(x)) - log(Double(x))))
            let theta = AVX2Kernel.twoPi * Float(k - 1) / 20_000  // [0, 2 pi)
            let (s, c) = AVX2Kernel.sincos(theta)
            worstTrig = max(worstTrig, abs(Double(s) - sin(Double(theta))),
                            abs(Double(c) - cos(Double(theta))))
        }
        #expect(worstLog < 1e-6)
        #expect(worstTrig < 1e-6)
        #expect(AVX2Kernel.log(1) == 0)
        #expect(AVX2Kernel.log(0).isNaN)
    }

    /// Mean ~ 0 and standard deviation ~ 1 on 1e5 samples, for both kernels and the double path.
    @Test(arguments: [("avx2", 100_000), ("scalar", 100_000), ("avx2", 15)])
    func normalStatistics(kernel: String, chunk: Int) {
        var source = TorchRandomSource(seed: 1234, kernel: F.kernel(kernel))
        var samples: [Float] = []
        while samples.count < 100_000 { samples += source.normal(count: chunk) }
        let n = Double(samples.count)
        let mean = samples.reduce(0.0) { $0 + Double($1) } / n
        let variance = samples.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)
        #expect(abs(mean) < 0.015)  // 5 sigma = 5 / sqrt(1e5) ~ 0.016
        #expect(abs(variance.squareRoot() - 1) < 0.015)
        #expect(samples.allSatisfy { $0.isFinite })
    }
}
