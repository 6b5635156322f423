import Foundation
@testable import Tensors

/// Reads the PyTorch reference tensors in Tests/Fixtures/ops (safetensors written by
/// tools/make_op_fixtures.py). A minimal reader for trusted test data: the product's validating
/// safetensors parser lives in ModelFiles.
struct Fixture {
    struct Entry { let format: StorageFormat; let shape: [Int]; let bytes: Data }
    let name: String
    let entries: [String: Entry]
    let metadata: [String: String]

    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ops")

    enum Failure: Error, CustomStringConvertible {
        case unreadable(String), missing(String)
        var description: String {
            switch self {
            case let .unreadable(m): return "fixture unreadable: \(m)"
            case let .missing(m): return "fixture entry missing: \(m)"
            }
        }
    }

    init(_ name: String) throws {
        self.name = name
        let data = try Data(contentsOf: Fixture.directory.appendingPathComponent("\(name).safetensors"))
        guard data.count >= 8 else { throw Failure.unreadable(name) }
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        guard headerLength > 0, 8 + headerLength <= data.count,
              let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        else { throw Failure.unreadable(name) }
        let body = data.subdata(in: (8 + headerLength)..<data.count)
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in header {
            if key == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw Failure.unreadable("\(name).\(key)") }
            let format: StorageFormat
            switch dtype {
            case "F32": format = .float32
            case "F16": format = .float16
            case "BF16": format = .bfloat16
            default: throw Failure.unreadable("\(name).\(key) dtype \(dtype)")
            }
            entries[key] = Entry(format: format, shape: shape, bytes: body.subdata(in: offsets[0]..<offsets[1]))
        }
        self.entries = entries
        self.metadata = metadata
    }

    func entry(_ key: String) throws -> Entry {
        guard let e = entries[key] else { throw Failure.missing("\(name).\(key)") }
        return e
    }

    func shape(_ key: String) throws -> [Int] { try entry(key).shape }

    func floats(_ key: String) throws -> [Float] {
        let e = try entry(key)
        let backend = Backends.reference
        return try e.bytes.withUnsafeBytes {
            try backend.floats(backend.tensor(raw: $0, format: e.format, shape: e.shape, dtype: .float32))
        }
    }

    /// Loads an entry onto `backend` as an fp32 tensor.
    func tensor(_ key: String, on backend: any Backend) throws -> Tensor {
        let e = try entry(key)
        return try e.bytes.withUnsafeBytes { try backend.tensor(raw: $0, format: e.format, shape: e.shape, dtype: .float32) }
    }

    func int(_ key: String) throws -> Int {
        guard let s = metadata[key], let v = Int(s) else { throw Failure.missing("\(name) metadata \(key)") }
        return v
    }

    func float(_ key: String) throws -> Float {
        guard let s = metadata[key], let v = Float(s) else { throw Failure.missing("\(name) metadata \(key)") }
        return v
    }

    func ints(_ key: String) throws -> [Int] {
        guard let s = metadata[key] else { throw Failure.missing("\(name) metadata \(key)") }
        return try s.split(separator: ",").map {
            guard let v = Int($0.trimmingCharacters(in: .whitespaces)) else { throw Failure.missing("\(name) metadata \(key)") }
            return v
        }
    }
}
