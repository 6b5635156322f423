import Foundation
import Testing
@testable import ModelFiles

@Suite struct JSONReaderTests {
    /// Runs `body` over `text`, requiring the whole input to be consumed.
    private func read<R>(_ text: String, _ body: (JSONReader) throws -> R) throws -> R {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw in
            let reader = JSONReader(raw)
            let result = try body(reader)
            try reader.expectEnd()
            return result
        }
    }

    private func isSyntaxError(_ text: String) -> Bool {
        do {
            try read(text) { try $0.skipValue() }
            return false
        } catch {
            return error is JSONReader.Failure
        }
    }

    @Test func acceptsValidJSON() throws {
        for text in [#"{}"#, #"[]"#, #" {"a" : [1, -2.5e+3, 0, true, false, null, "x"], "b": {"c": {}}} "#,
                     #""\u00e9\n\"""#, "0", "-0.0E-1", #"[[[]]]"#] {
            #expect(!isSyntaxError(text), "\(text)")
        }
    }

    @Test func rejectsInvalidJSON() {
        for text in ["", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "01", "1.", ".5", "1e", "+1", "-", "NaN", "tru",
                     "{\"a\"}", "[1 2]", "\"abc", "\"\\q\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"",
                     "\"a\u{01}b\"", "{} {}", "[/*x*/]"] {
            #expect(isSyntaxError(text), "\(text.debugDescription) should be rejected")
        }
    }

    @Test func decodesStringsExactly() throws {
        #expect(try read(#""plain""#) { try $0.readString() } == "plain")
        #expect(try read(#""a\"b\\c\/d\b\f\n\r\t""#) { try $0.readString() } == "a\"b\\c/d\u{8}\u{c}\n\r\t")
        #expect(try read(#""\u00e9\ud83d\ude00\u0000""#) { try $0.readString() } == "é😀\u{0}")
        #expect(try read("\"caf\u{e9}\"") { try $0.readString() } == "café")
    }

    @Test func integersAreExact() throws {
        #expect(JSONReader.nonNegativeInteger("0") == 0)
        #expect(JSONReader.nonNegativeInteger("9223372036854775807") == Int.max)
        #expect(JSONReader.nonNegativeInteger("9223372036854775808") == nil)
        for literal: Substring in ["-1", "2.0", "1e3", "-0", ""] {
            #expect(JSONReader.nonNegativeInteger(literal) == nil, "\(literal)")
        }
    }

    /// 100 000 nested arrays stop at the depth limit instead of overflowing the stack.
    @Test func deepNestingIsRefusedNotFatal() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(isSyntaxError(deep))
        let ok = String(repeating: "[", count: JSONReader.maxDepth) + String(repeating: "]", count: JSONReader.maxDepth)
        #expect(!isSyntaxError(ok))
        let over = "[" + ok + "]"
        #expect(isSyntaxError(over))
    }

    @Test func utf8Validation() {
        func firstBad(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { JSONReader.firstInvalidUTF8(in: $0) } }
        #expect(firstBad(Array("héllo ☃ 😀".utf8)) == nil)
        #expect(firstBad([0x61, 0xFF]) == 1)
        #expect(firstBad([0xC0, 0xAF]) == 0)              // overlong '/'
        #expect(firstBad([0xE0, 0x80, 0xAF]) == 0)        // overlong
        #expect(firstBad([0xED, 0xA0, 0x80]) == 0)        // UTF-16 surrogate
        #expect(firstBad([0xF4, 0x90, 0x80, 0x80]) == 0)  // above U+10FFFF
        #expect(firstBad([0x61, 0xE2, 0x82]) == 1)        // truncated
        #expect(firstBad([0xE2, 0x28, 0xA1]) == 0)        // bad continuation
    }

    @Test func smallFilesAreReadWithALimit() throws {
        let folder = try TemporaryFolder()
        let file = try folder.write("a.json", "0123456789")
        try FileManager.default.createSymbolicLink(atPath: folder.url.appendingPathComponent("link.json").path,
                                                   withDestinationPath: "a.json")
        #expect(try JSONReader.readSmallFile(folder.url.appendingPathComponent("link.json")) == Data("0123456789".utf8))
        #expect(try JSONReader.readSmallFile(file, limit: 10).count == 10)
        guard case .badConfig? = modelFilesError({ _ = try JSONReader.readSmallFile(file, limit: 9) }) else {
            Issue.record("limit not enforced"); return
        }
        guard case .unreadable? = modelFilesError({ _ = try JSONReader.readSmallFile(folder.url) }) else {
            Issue.record("a folder read as a file"); return
        }
        guard case .unreadable? = modelFilesError({ _ = try JSONReader.readSmallFile(folder.url.appendingPathComponent("no.json")) }) else {
            Issue.record("a missing file read"); return
        }
    }
}
