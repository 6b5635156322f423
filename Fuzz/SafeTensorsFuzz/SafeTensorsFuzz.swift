import Foundation
import ModelFiles

/// Fuzz target for the parsers of outside input in ModelFiles.
///
/// Built normally (`swift build`), it is a replay tool: `safetensors-fuzz FILE…` runs each file
/// through the same checks and prints the verdict, so a crash found by the fuzzer can be
/// reproduced in a plain debug build. Built with `-DFUZZING -sanitize=fuzzer,address`
/// (`make fuzz`), it exports `LLVMFuzzerTestOneInput` and libFuzzer supplies `main`.
enum FuzzTarget {
    /// Parses `data` as a whole safetensors file, then as a shard index and as a
    /// `model_index.json`, checking the invariants a successful parse promises. Returns a
    /// one-line verdict. Anything other than a `ModelFilesError` is a bug and traps.
    static func run(_ data: Data) -> String {
        let verdict = parse(data)
        // Most mutations inside the JSON break the length prefix, so the checks behind it would
        // rarely run; parse again with the prefix repaired to end the header at the last '}'.
        if let repaired = repairingLength(data) { _ = parse(repaired) }
        for parse in [{ _ = try ShardIndex.parse(data, path: "<fuzz>") },
                      { _ = try DiffusersModel.parseModelIndex(data, path: "<fuzz>") }] {
            do { try parse() } catch is ModelFilesError {} catch {
                fatalError("JSON parser threw a non-ModelFilesError: \(error)")
            }
        }
        return verdict
    }

    static func parse(_ data: Data) -> String {
        do {
            let header = try data.withUnsafeBytes { try SafeTensorsHeader.parse(file: $0, path: "<fuzz>") }
            check(header, fileSize: data.count)
            return "ok: \(header.entries.count) tensors, \(header.unsupported.count) unsupported"
        } catch let error as ModelFilesError {
            return "rejected: \(error)"
        } catch {
            fatalError("safetensors parser threw a non-ModelFilesError: \(error)")
        }
    }

    /// `data` with its first 8 bytes replaced by the length up to the last '}' after them; nil
    /// when that changes nothing.
    static func repairingLength(_ data: Data) -> Data? {
        guard data.count >= 8, let close = data.dropFirst(8).lastIndex(of: UInt8(ascii: "}")) else { return nil }
        let length = UInt64(close - data.startIndex - 8 + 1)
        var repaired = Data()
        withUnsafeBytes(of: length.littleEndian) { repaired.append(contentsOf: $0) }
        repaired.append(data.dropFirst(8))
        return repaired == data ? nil : repaired
    }

    /// What a validated header guarantees: every range inside the data section, sizes that match
    /// shapes, and ranges that tile the data section without overlap.
    static func check(_ header: SafeTensorsHeader, fileSize: Int) {
        precondition(header.dataOffset >= 8 && header.dataOffset + header.dataSize == fileSize)
        var ranges: [Range<Int>] = []
        for (name, entry) in header.entries {
            precondition(entry.name == name && entry.byteRange.upperBound <= header.dataSize)
            let count = entry.shape.reduce(1, *)
            precondition(count * entry.format.byteSize == entry.byteRange.count)
            ranges.append(entry.byteRange)
        }
        for (name, tensor) in header.unsupported {
            precondition(tensor.name == name && tensor.byteRange.upperBound <= header.dataSize)
            precondition(header.entries[name] == nil)
            ranges.append(tensor.byteRange)
        }
        var cursor = 0
        for range in ranges.sorted(by: { ($0.lowerBound, $0.upperBound) < ($1.lowerBound, $1.upperBound) }) {
            precondition(range.lowerBound == cursor)
            cursor = range.upperBound
        }
        precondition(cursor == header.dataSize)
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    _ = FuzzTarget.run(data)
    return 0
}

/// libFuzzer's driver (from `-sanitize=fuzzer`'s runtime). Declared by symbol name: its
/// arguments (int pointer, argv pointer, C function pointer; int result) pass identically under
/// the Swift and C conventions on the platforms we fuzz on.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links executables with `main` renamed to `<module>_main` (so tests can import them),
/// which hides libFuzzer's own `main`; this is that entry point, handing over to libFuzzer.
@_cdecl("safetensors_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { start, size in fuzzTestOneInput(start, size) }
}
#else
@main
struct Replay {
    static func main() {
        let paths = CommandLine.arguments.dropFirst()
        if paths.isEmpty {
            print("usage: safetensors-fuzz FILE... (replays files through the ModelFiles parsers; `make fuzz` fuzzes them)")
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read")
                continue
            }
            print("\(path): \(FuzzTarget.run(data))")
        }
    }
}
#endif
