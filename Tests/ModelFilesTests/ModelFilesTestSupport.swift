import Foundation
@testable import ModelFiles

/// Helpers shared by the ModelFiles tests: fixture paths, temporary folders, a tiny trusted
/// safetensors writer and error-kind matching.
enum TestFiles {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures", isDirectory: true)
    static let corpus = fixtures.appendingPathComponent("safetensors", isDirectory: true)

    /// The files of a corpus folder, sorted.
    static func corpusFiles(_ sub: String) throws -> [URL] {
        let folder = corpus.appendingPathComponent(sub, isDirectory: true)
        return try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".safetensors") }.sorted()
            .map { folder.appendingPathComponent($0) }
    }

    static func valid(_ name: String) -> URL {
        corpus.appendingPathComponent("valid/\(name).safetensors")
    }

    static func malformed(_ name: String) -> URL {
        corpus.appendingPathComponent("malformed/\(name).safetensors")
    }
}

/// A temporary folder removed when the value is released.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ModelFilesTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Creates `relative` (with intermediate folders) holding `data`, returning its URL.
    @discardableResult
    func write(_ relative: String, _ data: Data) throws -> URL {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
        return file
    }

    @discardableResult
    func write(_ relative: String, _ text: String) throws -> URL { try write(relative, Data(text.utf8)) }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(at: url.appendingPathComponent(relative), withIntermediateDirectories: true)
    }
}

/// Builds safetensors bytes for tests (trusted input; the reader under test does the checking).
struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
    var metadata: [String: String] = [:]

    mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        entries.append((name, "F32", shape, floats.withUnsafeBytes { Array($0) }))
    }

    mutating func add(_ name: String, dtype: String, shape: [Int], bytes: [UInt8]) {
        entries.append((name, dtype, shape, bytes))
    }

    func data() -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var body: [UInt8] = []
        for e in entries {
            header[e.name] = ["dtype": e.dtype, "shape": e.shape, "data_offsets": [body.count, body.count + e.bytes.count]]
            body += e.bytes
        }
        // Trusted, tiny dictionaries: serialisation cannot fail.
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(contentsOf: body)
        return out
    }
}

extension ModelFilesError {
    /// The case name (`"badHeader"`, `"badTensor"`, …), for corpus files named after it.
    var kind: String {
        switch self {
        case .unreadable: return "unreadable"
        case .badHeader: return "badHeader"
        case .badTensor: return "badTensor"
        case .unsupportedDType: return "unsupportedDType"
        case .missingTensor: return "missingTensor"
        case .shapeMismatch: return "shapeMismatch"
        case .unusedTensors: return "unusedTensors"
        case .badConfig: return "badConfig"
        case .modelNotFound: return "modelNotFound"
        }
    }
}

/// Runs `body` and returns the `ModelFilesError` it throws (nil if it succeeds or throws
/// something else — both test failures for the callers).
func modelFilesError(_ body: () throws -> Void) -> ModelFilesError? {
    do {
        try body()
        return nil
    } catch let error as ModelFilesError {
        return error
    } catch {
        return nil
    }
}

/// Decodes little-endian F32 values from possibly unaligned bytes.
func decodeF32(_ bytes: UnsafeRawBufferPointer) -> [Float] {
    (0..<(bytes.count / 4)).map { bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self) }
        .map { Float(bitPattern: UInt32(littleEndian: $0)) }
}
