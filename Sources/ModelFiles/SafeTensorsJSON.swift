import Foundation

/// A strict, allocation-light pull reader for the JSON that model files carry (safetensors
/// headers, `*.safetensors.index.json`, `model_index.json`).
///
/// Why not `JSONSerialization`: it silently keeps one of two duplicate keys, turns `2.0` and
/// `2` into the same number, and builds a whole object tree before anything can be checked.
/// This reader walks the bytes in place; callers pull exactly the structure they expect and
/// `skipValue()` the rest, so memory stays proportional to what is kept, never to what a
/// hostile header contains. Nesting is limited to `maxDepth` (recursion never blows the stack),
/// the grammar is RFC 8259 (no comments, trailing commas, single quotes, NaN or BOM), and input
/// must be valid UTF-8 (checked up front by `validateUTF8`).
final class JSONReader {
    enum Kind: Equatable { case object, array, string, number, bool, null }

    /// A syntax error at a byte offset of the JSON text.
    struct Failure: Error, Equatable {
        let message: String
        let offset: Int
    }

    /// Deeper structures are refused. Real headers nest three levels
    /// (object → entry → shape array); the margin is for fields we skip.
    static let maxDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private(set) var position = 0
    private var depth = 0

    /// `bytes` must stay valid for the reader's lifetime.
    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: structure

    /// The kind of the next value, after skipping whitespace.
    func peekKind() throws -> Kind {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of JSON") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: throw fail("unexpected character \(describe(bytes[position]))")
        }
    }

    /// Reads an object, calling `member` with each key; `member` must consume the value.
    /// Duplicate keys are passed on as they come: the caller decides what they mean.
    func readObject(_ member: (String) throws -> Void) throws {
        try enter(UInt8(ascii: "{"))
        defer { depth -= 1 }
        if try consumeIf(UInt8(ascii: "}")) { return }
        repeat {
            guard try peekKind() == .string else { throw fail("expected a string key") }
            let key = try readString()
            try expect(UInt8(ascii: ":"))
            try member(key)
        } while try consumeIf(UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
    }

    /// Reads an array, calling `element` once per element; `element` must consume it.
    func readArray(_ element: () throws -> Void) throws {
        try enter(UInt8(ascii: "["))
        defer { depth -= 1 }
        if try consumeIf(UInt8(ascii: "]")) { return }
        repeat { try element() } while try consumeIf(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }

    /// Consumes one value of any kind, checking its syntax.
    func skipValue() throws {
        switch try peekKind() {
        case .object: try readObject { _ in try skipValue() }
        case .array: try readArray { try skipValue() }
        case .string: _ = try readString()
        case .number: _ = try readNumber()
        case .bool: _ = try readBool()
        case .null: try readNull()
        }
    }

    /// Succeeds only if nothing but whitespace is left.
    func expectEnd() throws {
        skipWhitespace()
        if position < bytes.count { throw fail("trailing characters after the JSON value") }
    }

    // MARK: scalars

    /// A string value with escapes decoded (lone surrogates and raw control characters rejected).
    func readString() throws -> String {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        position += 1
        let start = position
        // Fast path: no escapes.
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw fail("unescaped control character in string") }
            position += 1
        }
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                position += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw fail("unescaped control character in string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                position += 1
                continue
            }
            position += 1
            guard position < bytes.count else { break }
            let e = bytes[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"): out.append(contentsOf: try readUnicodeEscape())
            default: throw fail("invalid escape \\\(describe(e))")
            }
        }
        throw fail("unterminated string")
    }

    /// The literal text of a number, checked against the JSON number grammar.
    func readNumber() throws -> Substring {
        skipWhitespace()
        let start = position
        func digits() -> Int {
            let from = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            return position - from
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) else {
            throw fail("invalid number")
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                throw fail("number with a leading zero")
            }
        } else {
            _ = digits()
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw fail("invalid number: no digits after '.'") }
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw fail("invalid number: no digits in exponent") }
        }
        return Substring(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    func readBool() throws -> Bool {
        if try consumeLiteral("true") { return true }
        if try consumeLiteral("false") { return false }
        throw fail("invalid literal")
    }

    func readNull() throws {
        guard try consumeLiteral("null") else { throw fail("invalid literal") }
    }

    /// The value of a number literal that is a plain non-negative integer fitting in `Int`;
    /// nil for fractions, exponents, negatives and overflow (a size must be exact).
    static func nonNegativeInteger(_ literal: Substring) -> Int? {
        guard !literal.isEmpty, literal.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        return Int(literal)
    }

    // MARK: helpers

    private func readUnicodeEscape() throws -> [UInt8] {
        var scalar = try readHex4()
        if (0xDC00...0xDFFF).contains(scalar) { throw fail("lone low surrogate in \\u escape") }
        if (0xD800...0xDBFF).contains(scalar) {
            guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                throw fail("lone high surrogate in \\u escape")
            }
            position += 2
            let low = try readHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw fail("high surrogate not followed by a low surrogate") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
        return Array(String(Character(unicode)).utf8)
    }

    private func readHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[position]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private func enter(_ opener: UInt8) throws {
        try expect(opener)
        depth += 1
        if depth > JSONReader.maxDepth { throw fail("nesting deeper than \(JSONReader.maxDepth) levels") }
    }

    private func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private func consumeIf(_ byte: UInt8) throws -> Bool {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of JSON") }
        if bytes[position] == byte { position += 1; return true }
        return false
    }

    private func expect(_ byte: UInt8) throws {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of JSON, expected '\(Character(Unicode.Scalar(byte)))'") }
        guard bytes[position] == byte else {
            throw fail("expected '\(Character(Unicode.Scalar(byte)))', found \(describe(bytes[position]))")
        }
        position += 1
    }

    private func consumeLiteral(_ word: StaticString) throws -> Bool {
        skipWhitespace()
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        let matches = word.withUTF8Buffer { w in (0..<count).allSatisfy { bytes[position + $0] == w[$0] } }
        if matches { position += count }
        return matches
    }

    private func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private func fail(_ message: String) -> Failure { Failure(message: message, offset: position) }
}

extension JSONReader {
    /// The offset of the first byte that makes `bytes` invalid UTF-8 (overlong forms, surrogates,
    /// code points above U+10FFFF, truncated sequences), or nil when all of it is valid.
    static func firstInvalidUTF8(in bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF   // allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F            // no UTF-16 surrogates
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F            // nothing above U+10FFFF
            default: return i
            }
            guard i + length <= n, (lower...upper).contains(bytes[i + 1]) else { return i }
            for k in 2..<max(2, length) where !(0x80...0xBF).contains(bytes[i + k]) { return i }
            i += length
        }
        return nil
    }

    /// Reads a small outside file (an index or `model_index.json`) whole, refusing anything
    /// larger than `limit` bytes so a wrong path cannot make us read gigabytes.
    static func readSmallFile(_ url: URL, limit: Int = 64 << 20) throws -> Data {
        // Read at most limit + 1 bytes through a handle: follows symlinks (hub cache snapshots),
        // and the size checked is the size read.
        let path = url.path
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw ModelFilesError.unreadable(path: path, reason: "no such file or not readable")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw ModelFilesError.unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        guard data.count <= limit else {
            throw ModelFilesError.badConfig(path: path, reason: "file is larger than the \(limit)-byte limit for JSON files")
        }
        return data
    }

    /// Parses a whole JSON document with `body`, turning syntax errors into
    /// `ModelFilesError.badConfig` naming `path`.
    static func parseDocument<R>(_ data: Data, path: String, _ body: (JSONReader) throws -> R) throws -> R {
        try data.withUnsafeBytes { raw in
            if let bad = firstInvalidUTF8(in: raw) {
                throw ModelFilesError.badConfig(path: path, reason: "not valid UTF-8 (byte \(bad))")
            }
            let reader = JSONReader(raw)
            do {
                let result = try body(reader)
                try reader.expectEnd()
                return result
            } catch let failure as Failure {
                throw ModelFilesError.badConfig(path: path, reason: "invalid JSON at byte \(failure.offset): \(failure.message)")
            }
        }
    }
}
