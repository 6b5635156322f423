import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Tensors
@testable import ModelFiles

@Suite struct SafeTensorsCorpusTests {
    /// Every malformed file is refused with a ModelFilesError of the kind its name starts with,
    /// naming the file; the pure header parser agrees with the mapped reader.
    @Test func everyMalformedFileIsRejected() throws {
        let files = try TestFiles.corpusFiles("malformed")
        #expect(files.count >= 50)
        for url in files {
            let expected = String(url.lastPathComponent.prefix { $0 != "-" })
            let error = modelFilesError { _ = try SafeTensorsFile(url: url) }
            #expect(error?.kind == expected, "\(url.lastPathComponent): \(String(describing: error))")
            #expect(error?.description.contains(url.path) == true, "\(url.lastPathComponent): error does not name the file")

            let bytes = try Data(contentsOf: url)
            let parsed = modelFilesError { _ = try bytes.withUnsafeBytes { try SafeTensorsHeader.parse(file: $0, path: "mem") } }
            #expect(parsed?.kind == expected, "\(url.lastPathComponent) (in memory): \(String(describing: parsed))")
        }
    }

    @Test func specificErrorsArePrecise() throws {
        func error(_ name: String) -> ModelFilesError? {
            modelFilesError { _ = try SafeTensorsFile(url: TestFiles.malformed(name)) }
        }
        let dup = TestFiles.malformed("badTensor-duplicate-name").path
        #expect(error("badTensor-duplicate-name") == .badTensor(path: dup, tensor: "a", reason: "name appears twice in the header"))

        let overlap = TestFiles.malformed("badTensor-overlap").path
        #expect(error("badTensor-overlap") == .badTensor(path: overlap, tensor: "b", reason: "bytes 4..<12 overlap tensor 'a'"))

        let past = TestFiles.malformed("badHeader-length-past-end").path
        #expect(error("badHeader-length-past-end") == .badHeader(path: past, reason: "header length 100 runs past the end of the 15-byte file"))

        let huge = TestFiles.malformed("badHeader-length-u64-max").path
        #expect(error("badHeader-length-u64-max") == .badHeader(path: huge, reason: "header length 18446744073709551615 exceeds the 100000000-byte limit"))

        let unknown = TestFiles.malformed("badTensor-unknown-dtype").path
        #expect(error("badTensor-unknown-dtype") == .badTensor(path: unknown, tensor: "a", reason: "unknown dtype 'F128'"))

        let mismatch = TestFiles.malformed("badTensor-size-mismatch").path
        #expect(error("badTensor-size-mismatch") == .badTensor(path: mismatch, tensor: "a",
                                                             reason: "shape [3] of F32 needs 12 bytes but data_offsets span 8"))

        guard case let .badTensor(_, tensor, reason)? = error("badTensor-shape-float") else {
            Issue.record("float shape not reported as a bad tensor"); return
        }
        #expect(tensor == "a" && reason.contains("2.0"))

        guard case let .badHeader(_, deep)? = error("badHeader-deep-arrays") else {
            Issue.record("deep nesting not reported as a bad header"); return
        }
        #expect(deep.contains("nesting deeper than 64"))

        guard case let .badHeader(_, utf8)? = error("badHeader-bad-utf8") else {
            Issue.record("bad UTF-8 not reported as a bad header"); return
        }
        #expect(utf8.contains("UTF-8"))

        guard case let .badHeader(_, metadata)? = error("badHeader-metadata-non-string-value") else {
            Issue.record("non-string metadata not reported"); return
        }
        #expect(metadata == "__metadata__ value of 'n' is not a string")
    }

    @Test func missingFileAndFolderAreUnreadable() throws {
        let folder = try TemporaryFolder()
        let missing = folder.url.appendingPathComponent("nope.safetensors")
        guard case .unreadable(let path, _)? = modelFilesError({ _ = try SafeTensorsFile(url: missing) }) else {
            Issue.record("missing file not unreadable"); return
        }
        #expect(path == missing.path)
        guard case .unreadable(_, let reason)? = modelFilesError({ _ = try SafeTensorsFile(url: folder.url) }) else {
            Issue.record("folder not unreadable"); return
        }
        #expect(reason == "is a directory")
    }
}

@Suite struct SafeTensorsValidFileTests {
    @Test func readsF32F16BF16AndMetadata() throws {
        let file = try SafeTensorsFile(url: TestFiles.valid("mixed_formats"))
        #expect(file.names == ["w16", "w32", "wbf"])
        #expect(file.metadata == ["format": "pt", "note": "café"])
        #expect(file.location == file.url.path)
        #expect(file.entry("w32") == TensorEntry(name: "w32", format: .float32, shape: [2, 2], byteRange: 0..<16))
        #expect(file.entry("w16")?.format == .float16)
        #expect(file.entry("wbf")?.format == .bfloat16)
        #expect(try file.withBytes(of: "w32") { bytes, _ in decodeF32(bytes) } == [1, -2, 0.5, 3.25])

        let backend = ReferenceBackend()
        #expect(try backend.floats(file.tensor("w16", on: backend)) == [1, -2, 0.5])
        #expect(try backend.floats(file.tensor("wbf", on: backend)) == [1.5, -3])
        #expect(throws: ModelFilesError.missingTensor(path: file.location, tensor: "nope")) {
            try file.withBytes(of: "nope") { _, _ in }
        }
    }

    /// The data section starts at an odd offset: bytes come out unaligned and still decode.
    @Test func unalignedDataSection() throws {
        let file = try SafeTensorsFile(url: TestFiles.valid("unaligned"))
        #expect(file.header.dataOffset % 4 != 0)
        let address = try file.withBytes(of: "a") { bytes, _ in UInt(bitPattern: bytes.baseAddress) }
        #expect(address % 4 != 0)
        #expect(try file.withBytes(of: "a") { bytes, _ in decodeF32(bytes) } == [1, 2, 3])
        let reference = ReferenceBackend()
        #expect(try reference.floats(file.tensor("b", on: reference)) == [-1])
        let cpu = try CPUBackend(threads: 1)
        #expect(try cpu.floats(file.tensor("a", on: cpu)) == [1, 2, 3])
        #expect(try cpu.floats(file.tensor("b", on: cpu)) == [-1])
    }

    @Test func scalarHasEmptyShape() throws {
        let file = try SafeTensorsFile(url: TestFiles.valid("scalar"))
        #expect(file.entry("s")?.shape == [])
        #expect(try file.withBytes(of: "s") { bytes, _ in decodeF32(bytes) } == [3.5])
    }

    /// Real text encoder exports carry I64 position ids: the file opens, the tensor is listed
    /// apart, and reading it says why it cannot be used.
    @Test func int64TensorIsListedButNotServed() throws {
        let file = try SafeTensorsFile(url: TestFiles.valid("with_int64"))
        let ids = "text_model.embeddings.position_ids"
        #expect(file.names == ["text_model.embeddings.token_embedding.weight", "text_model.final_layer_norm.bias"])
        #expect(file.unsupportedTensors == [ids: "I64"])
        #expect(file.entry(ids) == nil)
        #expect(file.header.unsupported[ids]?.shape == [1, 4])
        #expect(throws: ModelFilesError.unsupportedDType(path: file.location, tensor: ids, dtype: "I64")) {
            try file.withBytes(of: ids) { _, _ in }
        }
        #expect(try file.withBytes(of: "text_model.embeddings.token_embedding.weight") { b, _ in decodeF32(b) } == [0.25, 0.5, 0.75, 1])
    }

    @Test func emptyAndZeroSizedTensors() throws {
        let empty = try SafeTensorsFile(url: TestFiles.valid("empty"))
        #expect(empty.names.isEmpty && empty.metadata.isEmpty && empty.header.dataSize == 0)

        let file = try SafeTensorsFile(url: TestFiles.valid("zero_size"))
        #expect(file.names == ["a", "b", "c"])
        #expect(file.entry("a")?.shape == [0, 3])
        #expect(try file.withBytes(of: "a") { bytes, _ in bytes.count } == 0)
        #expect(try file.withBytes(of: "b") { bytes, _ in decodeF32(bytes) } == [7, 8])
        #expect(file.metadata.isEmpty)
    }

    @Test func namesWithEscapesAndUTF8() throws {
        let file = try SafeTensorsFile(url: TestFiles.valid("unicode_names"))
        #expect(file.names.sorted() == ["café.w", "tab\tslash/quote\"snow\u{2603}clef\u{1D11E}"].sorted())
    }

    @Test func everyDTypeOpensAndOnlyFloatsLoad() throws {
        let file = try SafeTensorsFile(url: TestFiles.valid("all_dtypes"))
        #expect(file.names == ["f32"])
        let listed = Set(file.unsupportedTensors.values)
        let expected = Set(SafeTensorsDType.allCases.filter { $0.storageFormat == nil }.map(\.rawValue))
        #expect(listed == expected)
        #expect(try file.withBytes(of: "f32") { bytes, _ in decodeF32(bytes) } == [9])
    }

    /// Files written by the real `safetensors` package (the op fixtures) all open.
    @Test func opFixturesWrittenByPyTorchOpen() throws {
        let folder = TestFiles.fixtures.appendingPathComponent("ops")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".safetensors") }
        #expect(!names.isEmpty)
        for name in names {
            let file = try SafeTensorsFile(url: folder.appendingPathComponent(name))
            #expect(!file.names.isEmpty, "\(name)")
            #expect(file.header.dataOffset % 8 == 0, "\(name): the Python writer pads the header")
        }
    }

    /// The file is mapped, not read: the mapping shows in /proc/self/maps while the object lives.
    @Test func fileIsMemoryMapped() throws {
        #if os(Linux)
        let folder = try TemporaryFolder()
        var writer = SafeTensorsWriter()
        writer.add("big", shape: [1 << 18], floats: [Float](repeating: 1, count: 1 << 18))
        let url = try folder.write("mapped.safetensors", writer.data())
        func mapped() throws -> Bool { try processMaps().contains(url.path) }
        #expect(try !mapped())
        do {
            let file = try SafeTensorsFile(url: url)
            #expect(try mapped())
            #expect(try file.withBytes(of: "big") { bytes, _ in bytes.count } == 1 << 20)
        }
        #expect(try !mapped(), "unmapped when released")
        #endif
    }
}

#if os(Linux)
/// /proc/self/maps read to its end with plain read(2) calls (Foundation's file reading trusts the
/// reported size, which is 0 for /proc files, and can stop early on a long map).
func processMaps() throws -> String {
    let fd = open("/proc/self/maps", O_RDONLY)
    guard fd >= 0 else { throw CocoaError(.fileReadNoPermission) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
#endif
