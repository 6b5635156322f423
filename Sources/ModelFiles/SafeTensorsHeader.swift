import Tensors

/// Every element type the safetensors format defines (as of safetensors 0.8). Only F32, F16 and
/// BF16 load; the others are recognised so that a file carrying them (an I64
/// `text_model.embeddings.position_ids` beside the weights is common) still opens and validates.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6e2m3 = "F6_E2M3", f6e3m2 = "F6_E3M2"
    case u8 = "U8", i8 = "I8"
    case f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3", f8e8m0 = "F8_E8M0"
    case f8e4m3fnuz = "F8_E4M3FNUZ", f8e5m2fnuz = "F8_E5M2FNUZ"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case c64 = "C64", f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bits per element (F4 and F6 are packed below a byte).
    public var bitSize: Int {
        switch self {
        case .f4: return 4
        case .f6e2m3, .f6e3m2: return 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .c64, .f64, .i64, .u64: return 64
        }
    }

    /// The engine's encoding for this dtype, or nil when the engine does not load it.
    public var storageFormat: StorageFormat? {
        switch self {
        case .f32: return .float32
        case .f16: return .float16
        case .bf16: return .bfloat16
        default: return nil
        }
    }

    /// Bytes taken by `count` elements; nil on overflow or when packed elements do not end on a
    /// byte boundary.
    public func byteCount(elements count: Int) -> Int? {
        let (bits, overflow) = count.multipliedReportingOverflow(by: bitSize)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }
}

/// A tensor whose dtype the engine does not load: listed, validated, never handed out.
public struct UnsupportedTensor: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    public let byteRange: Range<Int>
}

/// A fully validated safetensors header. `parse` checks everything before anything is used:
///
/// - the file holds at least the 8-byte little-endian header length N, N ≤ 100 MB (the limit of
///   the reference implementation) and 8 + N ≤ file size;
/// - the header is UTF-8 JSON (leading/trailing whitespace allowed, as the Python writer pads
///   with spaces) whose top level is an object with unique keys;
/// - `__metadata__` is absent, null, or an object of string → string (other values are refused,
///   as the reference implementation does);
/// - every other key is a tensor: an object with `dtype` (a known safetensors dtype), `shape`
///   (non-negative integers, at most `maxRank` of them, with a product that fits in `Int`) and
///   `data_offsets` [begin, end] (integers, begin ≤ end ≤ data size); unknown extra fields are
///   ignored; each field appears once;
/// - end − begin equals the element count × dtype size;
/// - the tensors tile the data section exactly — no overlaps, no gaps, nothing after the last
///   one — as the reference implementation requires.
///
/// No size read from the header is ever used to allocate; parsing is linear in the header size.
public struct SafeTensorsHeader: Sendable {
    /// Header lengths above this are refused (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000
    /// Tensors of higher rank are refused (real models stay below 8; the bound keeps memory
    /// proportional to useful content).
    public static let maxRank = 64

    public let path: String
    /// Offset of the data section in the file: 8 + header length.
    public let dataOffset: Int
    /// Bytes in the data section.
    public let dataSize: Int
    /// The `__metadata__` strings (empty when absent).
    public let metadata: [String: String]
    /// Tensors with a dtype the engine loads, by name.
    public let entries: [String: TensorEntry]
    /// Tensors with a valid dtype the engine does not load, by name.
    public let unsupported: [String: UnsupportedTensor]

    /// Validates the header of a whole safetensors file held in `file`. Every failure is a
    /// `ModelFilesError` naming `path` (and the tensor, when one is at fault).
    public static func parse(file: UnsafeRawBufferPointer, path: String) throws -> SafeTensorsHeader {
        guard file.count >= 8 else {
            throw ModelFilesError.badHeader(path: path, reason: "file is \(file.count) bytes, too short to hold the 8-byte header length")
        }
        let declared = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(maxHeaderLength) else {
            throw ModelFilesError.badHeader(path: path, reason: "header length \(declared) exceeds the \(maxHeaderLength)-byte limit")
        }
        let length = Int(declared)
        guard 8 + length <= file.count else {
            throw ModelFilesError.badHeader(path: path, reason: "header length \(length) runs past the end of the \(file.count)-byte file")
        }
        let text = UnsafeRawBufferPointer(rebasing: file[8..<(8 + length)])
        if let bad = JSONReader.firstInvalidUTF8(in: text) {
            throw ModelFilesError.badHeader(path: path, reason: "header is not valid UTF-8 (header byte \(bad))")
        }
        var builder = Builder(path: path, dataSize: file.count - 8 - length)
        let reader = JSONReader(text)
        do {
            guard try reader.peekKind() == .object else {
                throw ModelFilesError.badHeader(path: path, reason: "header is not a JSON object")
            }
            try reader.readObject { key in try builder.member(key, reader) }
            try reader.expectEnd()
        } catch let failure as JSONReader.Failure {
            throw ModelFilesError.badHeader(path: path, reason: "invalid JSON at header byte \(failure.offset): \(failure.message)")
        }
        try builder.checkTiling()
        return SafeTensorsHeader(path: path, dataOffset: 8 + length, dataSize: builder.dataSize,
                                 metadata: builder.metadata, entries: builder.entries, unsupported: builder.unsupported)
    }

    /// Every tensor name with a loadable dtype, sorted.
    public var names: [String] { entries.keys.sorted() }
}

/// Collects the members of the top-level object, checking each as it comes.
private struct Builder {
    let path: String
    let dataSize: Int
    var metadata: [String: String] = [:]
    var entries: [String: TensorEntry] = [:]
    var unsupported: [String: UnsupportedTensor] = [:]
    var seen = Set<String>()
    var ranges: [(name: String, range: Range<Int>)] = []

    init(path: String, dataSize: Int) {
        (self.path, self.dataSize) = (path, dataSize)
    }

    mutating func member(_ key: String, _ reader: JSONReader) throws {
        guard seen.insert(key).inserted else {
            if key == "__metadata__" { throw ModelFilesError.badHeader(path: path, reason: "__metadata__ appears twice") }
            throw ModelFilesError.badTensor(path: path, tensor: key, reason: "name appears twice in the header")
        }
        if key == "__metadata__" {
            try readMetadata(reader)
        } else {
            try readTensor(key, reader)
        }
    }

    private mutating func readMetadata(_ reader: JSONReader) throws {
        switch try reader.peekKind() {
        case .null: try reader.readNull()
        case .object:
            var values: [String: String] = [:]
            try reader.readObject { key in
                guard try reader.peekKind() == .string else {
                    throw ModelFilesError.badHeader(path: path, reason: "__metadata__ value of '\(key)' is not a string")
                }
                let value = try reader.readString()
                guard values.updateValue(value, forKey: key) == nil else {
                    throw ModelFilesError.badHeader(path: path, reason: "__metadata__ key '\(key)' appears twice")
                }
            }
            metadata = values
        default:
            throw ModelFilesError.badHeader(path: path, reason: "__metadata__ is not an object of strings")
        }
    }

    private mutating func readTensor(_ name: String, _ reader: JSONReader) throws {
        func bad(_ reason: String) -> ModelFilesError { .badTensor(path: path, tensor: name, reason: reason) }
        guard try reader.peekKind() == .object else { throw bad("entry is not an object") }
        var dtypeText: String?, shape: [Int]?, offsets: [Int]?
        try reader.readObject { field in
            switch field {
            case "dtype":
                guard dtypeText == nil else { throw bad("field 'dtype' appears twice") }
                guard try reader.peekKind() == .string else { throw bad("dtype is not a string") }
                dtypeText = try reader.readString()
            case "shape":
                guard shape == nil else { throw bad("field 'shape' appears twice") }
                shape = try readIntegers(reader, field: "shape", limit: SafeTensorsHeader.maxRank, bad)
            case "data_offsets":
                guard offsets == nil else { throw bad("field 'data_offsets' appears twice") }
                offsets = try readIntegers(reader, field: "data_offsets", limit: 2, bad)
            default:
                try reader.skipValue()
            }
        }
        guard let dtypeText else { throw bad("missing 'dtype'") }
        guard let shape else { throw bad("missing 'shape'") }
        guard let offsets else { throw bad("missing 'data_offsets'") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeText) else { throw bad("unknown dtype '\(dtypeText)'") }
        guard offsets.count == 2 else { throw bad("data_offsets has \(offsets.count) values, expected [begin, end]") }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else { throw bad("data_offsets [\(begin), \(end)] end before they begin") }
        guard end <= dataSize else {
            throw bad("data_offsets [\(begin), \(end)] run past the \(dataSize)-byte data section")
        }
        guard let count = Tensor.checkedCount(of: shape) else {
            throw bad("shape \(shape) has more elements than can be addressed")
        }
        guard let bytes = dtype.byteCount(elements: count) else {
            throw bad("shape \(shape) of \(dtypeText) does not fill a whole number of bytes")
        }
        guard bytes == end - begin else {
            throw bad("shape \(shape) of \(dtypeText) needs \(bytes) bytes but data_offsets span \(end - begin)")
        }
        ranges.append((name, begin..<end))
        if let format = dtype.storageFormat {
            entries[name] = TensorEntry(name: name, format: format, shape: shape, byteRange: begin..<end)
        } else {
            unsupported[name] = UnsupportedTensor(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
        }
    }

    /// An array of non-negative integers (at most `limit` of them).
    private func readIntegers(_ reader: JSONReader, field: String, limit: Int,
                              _ bad: (String) -> ModelFilesError) throws -> [Int] {
        guard try reader.peekKind() == .array else { throw bad("\(field) is not an array") }
        var values: [Int] = []
        try reader.readArray {
            guard values.count < limit else { throw bad("\(field) has more than \(limit) values") }
            guard try reader.peekKind() == .number else { throw bad("\(field) holds a value that is not a number") }
            let literal = try reader.readNumber()
            guard let value = JSONReader.nonNegativeInteger(literal) else {
                throw bad("\(field) value \(literal.prefix(40)) is not a non-negative integer that fits in 64 bits")
            }
            values.append(value)
        }
        return values
    }

    /// The tensors must cover the data section exactly once, in some order.
    func checkTiling() throws {
        let sorted = ranges.sorted { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var cursor = 0
        var previous: String?
        for (name, range) in sorted {
            if range.lowerBound < cursor, let previous {
                throw ModelFilesError.badTensor(path: path, tensor: name,
                                                reason: "bytes \(range) overlap tensor '\(previous)'")
            }
            if range.lowerBound > cursor {
                throw ModelFilesError.badTensor(path: path, tensor: name,
                                                reason: "bytes \(cursor)..<\(range.lowerBound) before it belong to no tensor")
            }
            cursor = range.upperBound
            previous = name
        }
        if cursor != dataSize {
            throw ModelFilesError.badHeader(path: path, reason: "data section has \(dataSize - cursor) bytes after the last tensor")
        }
    }
}
