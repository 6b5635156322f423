import Foundation
import Testing
@testable import Models

/// Fixtures from tools/make_tokenizer_fixtures.py (transformers 5.23.0 `CLIPTokenizer`).
enum CLIPTokenizerFixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer")

    static func folder(_ name: String) -> URL { root.appendingPathComponent(name) }

    // Loading parses ~1.5 MB of JSON/text; share one instance per folder across tests.
    static let sd15 = Result { try CLIPTokenizer(folder: folder("sd15")) }
    static let sd21 = Result { try CLIPTokenizer(folder: folder("sd21")) }

    struct Case: Decodable {
        let folder: String
        let text: String
        let ids: [Int]
    }

    struct File: Decodable {
        let cases: [Case]
    }

    static let cases: [Case] = {
        guard let data = try? Data(contentsOf: root.appendingPathComponent("expected.json")),
              let file = try? JSONDecoder().decode(File.self, from: data) else { return [] }
        return file.cases
    }()

    static func tokenizer(_ folder: String) throws -> CLIPTokenizer {
        try (folder == "sd21" ? sd21 : sd15).get()
    }

    static func tempDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("clip-tokenizer-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

@Suite struct CLIPTokenizerTests {
    typealias F = CLIPTokenizerFixtures

    @Test func loadsBothFolders() throws {
        let sd15 = try F.tokenizer("sd15")
        let sd21 = try F.tokenizer("sd21")
        for t in [sd15, sd21] {
            #expect(t.vocabularySize == 49408)
            #expect(t.bosTokenID == 49406)
            #expect(t.eosTokenID == 49407)
            #expect(t.maxLength == 77)
            #expect(t.id(of: "!") == 0)
            #expect(t.id(of: "!</w>") == 256)
            #expect(t.bpe.merges.count == 48894)
        }
        #expect(sd15.padTokenID == 49407)
        #expect(sd21.padTokenID == 0)
        // sd21's vocab.json / merges.txt are symlinks into sd15/.
        let attributes = try FileManager.default.attributesOfItem(atPath: F.folder("sd21").appendingPathComponent("vocab.json").path)
        #expect(attributes[.type] as? FileAttributeType == .typeSymbolicLink)
    }

    @Test func knownSequences() throws {
        let t = try F.tokenizer("sd15")
        #expect(t.tokenize("a photo of a cat") == [320, 1125, 539, 320, 2368])
        #expect(Array(t.encode("a photo of a cat").prefix(7)) == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(Array(t.encode("a photo of an astronaut riding a horse on mars").prefix(12))
                == [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407])
        #expect(t.tokenize("an astronaut riding a horse on mars") == [550, 18376, 6765, 320, 4558, 525, 7496])
    }

    @Test func expectedFixtureCount() {
        #expect(F.cases.count >= 80)
        #expect(Set(F.cases.map(\.folder)) == ["sd15", "sd21"])
    }

    @Test(arguments: F.cases.indices)
    func matchesTransformers(_ index: Int) throws {
        let c = F.cases[index]
        let t = try F.tokenizer(c.folder)
        let ids = t.encode(c.text)
        #expect(ids == c.ids, "\(c.folder) \(c.text.debugDescription)")
        // tokenize == encode minus BOS / EOS / padding whenever nothing was truncated.
        let body = t.tokenize(c.text)
        if body.count <= 75 {
            #expect([t.bosTokenID] + body + [t.eosTokenID] == Array(c.ids.prefix(body.count + 2)))
        }
    }

    @Test func bosEosPadPlacement() throws {
        for (name, pad) in [("sd15", 49407), ("sd21", 0)] {
            let t = try F.tokenizer(name)
            let ids = t.encode("a photo of a cat")
            #expect(ids.count == 77)
            #expect(ids[0] == 49406)
            #expect(ids[6] == 49407)
            #expect(ids[7...].allSatisfy { $0 == pad })
            let empty = t.encode("")
            #expect(empty.count == 77)
            #expect(Array(empty.prefix(2)) == [49406, 49407])
            #expect(empty[2...].allSatisfy { $0 == pad })
            #expect(t.tokenize("").isEmpty)
            #expect(t.tokenize(" \t\n ").isEmpty)
        }
    }

    @Test func truncationKeepsBOSAndEOS() throws {
        let t = try F.tokenizer("sd15")
        let text = String(repeating: "a photo of a cat ", count: 30)
        let body = t.tokenize(text)
        #expect(body.count == 150)
        let ids = t.encode(text)
        #expect(ids.count == 77)
        #expect(ids[0] == 49406)
        #expect(ids[76] == 49407)
        #expect(Array(ids[1..<76]) == Array(body.prefix(75)))
        // Exactly 75 tokens fit without truncation; 76 lose the last one.
        let fits = t.encode(Array(repeating: "cat", count: 75).joined(separator: " "))
        #expect(fits[75] == 2368 && fits[76] == 49407)
        let over = t.encode(Array(repeating: "cat", count: 76).joined(separator: " "))
        #expect(over == fits)
    }

    @Test func sd21BangQuirk() throws {
        // diffusers #4153: "!" is the registered pad token in SD 2.x, so HF maps each literal "!" to 0.
        let sd21 = try F.tokenizer("sd21")
        let sd15 = try F.tokenizer("sd15")
        #expect(Array(sd21.encode("! !! !!!").prefix(8)) == [49406, 0, 0, 0, 0, 0, 0, 49407])
        #expect(sd15.tokenize("hello!") == [3306, 256])
        #expect(sd21.tokenize("hello!") == [3306, 0])
    }

    @Test func specialTokensInText() throws {
        let t = try F.tokenizer("sd15")
        #expect(t.tokenize("a cat<|endoftext|>a dog") == [320, 2368, 49407, 320, 1929])
        // special_tokens_map.json marks bos/eos "normalized": true, so they also match after lowercasing.
        #expect(t.tokenize("a <|EndOfText|> b") == [320, 49407, 321])
    }

    @Test func folderWithoutSpecialTokensMap() throws {
        // Only tokenizer_config.json (plain-string tokens => not normalised, as in transformers):
        // "<|EndOfText|>" is then BPE'd as "<|", "endoftext", "|>". Reference ids from transformers 5.23.0.
        let dir = try F.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["vocab.json", "merges.txt", "tokenizer_config.json"] {
            // copyItem would copy sd21's relative symlinks as (now dangling) links: copy the targets.
            try FileManager.default.copyItem(at: F.folder("sd21").appendingPathComponent(name).resolvingSymlinksInPath(),
                                             to: dir.appendingPathComponent(name))
        }
        let t = try CLIPTokenizer(folder: dir)
        #expect(t.padTokenID == 0)
        #expect(Array(t.encode("a <|EndOfText|>!").prefix(10)) == [49406, 320, 27, 347, 40786, 4160, 91, 285, 0, 49407])
    }

    @Test func legacySD2LayoutPrefersSpecialTokensMap() throws {
        // The stabilityai SD 2.x repos: special_tokens_map.json says pad "!" (plain string) while
        // tokenizer_config.json still says "<|endoftext|>"; transformers (4.57.1 and 5.23.0) pick "!".
        let dir = try F.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name),
                                                       withDestinationURL: F.folder("sd15").appendingPathComponent(name))
        }
        let token = #"{"content": "TOKEN", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}"#
        let configToken = #"{"__type": "AddedToken", "content": "TOKEN", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}"#
        func spec(_ template: String, _ content: String) -> String { template.replacingOccurrences(of: "TOKEN", with: content) }
        try Data("""
            {"bos_token": \(spec(token, "<|startoftext|>")), "eos_token": \(spec(token, "<|endoftext|>")),
             "pad_token": "!", "unk_token": \(spec(token, "<|endoftext|>"))}
            """.utf8).write(to: dir.appendingPathComponent("special_tokens_map.json"))
        try Data("""
            {"add_prefix_space": false, "bos_token": \(spec(configToken, "<|startoftext|>")), "do_lower_case": true,
             "eos_token": \(spec(configToken, "<|endoftext|>")), "errors": "replace", "model_max_length": 77,
             "name_or_path": "openai/clip-vit-large-patch14", "pad_token": "<|endoftext|>",
             "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
             "unk_token": \(spec(configToken, "<|endoftext|>"))}
            """.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let t = try CLIPTokenizer(folder: dir)
        #expect(t.padTokenID == 0 && t.maxLength == 77)
        #expect(Array(t.encode("a <|EndOfText|> hi!").prefix(10)) == [49406, 320, 49407, 1883, 0, 49407, 0, 0, 0, 0])
    }

    @Test func configDefaultsAndMaxLength() throws {
        let dir = try F.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name),
                                                       withDestinationURL: F.folder("sd15").appendingPathComponent(name))
        }
        // No config files: CLIP defaults, pad = <|endoftext|>, max length 77.
        let plain = try CLIPTokenizer(folder: dir)
        #expect(plain.padTokenID == 49407 && plain.maxLength == 77)
        // HF's "no limit" sentinel falls back to 77; a real small value is honoured.
        try Data(#"{"model_max_length": 1000000000000000019884624838656}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        #expect(try CLIPTokenizer(folder: dir).maxLength == 77)
        try Data(#"{"model_max_length": 8, "pad_token": {"__type": "AddedToken", "content": "!", "normalized": false}}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let short = try CLIPTokenizer(folder: dir)
        #expect(short.maxLength == 8)
        #expect(short.encode("a photo of a cat, a photo") == [49406, 320, 1125, 539, 320, 2368, 267, 49407])
        #expect(short.encode("cat!") == [49406, 2368, 0, 49407, 0, 0, 0, 0])
    }

    @Test func programmaticInit() throws {
        let vocabulary = try CLIPTokenizer.readVocabulary(F.folder("sd15").appendingPathComponent("vocab.json"))
        let merges = try CLIPTokenizer.readMerges(F.folder("sd15").appendingPathComponent("merges.txt"))
        let sd15 = try CLIPTokenizer(vocabulary: vocabulary, merges: merges, padTokenID: 49407)
        let sd21 = try CLIPTokenizer(vocabulary: vocabulary, merges: merges, padTokenID: 0)
        for c in F.cases {
            #expect((c.folder == "sd21" ? sd21 : sd15).encode(c.text) == c.ids, "\(c.folder) \(c.text.debugDescription)")
        }
        #expect(throws: TokenizerError.invalidArgument("maxLength 1 leaves no room for BOS and EOS")) {
            try CLIPTokenizer(vocabulary: vocabulary, merges: merges, padTokenID: 0, maxLength: 1)
        }
        #expect(throws: TokenizerError.invalidArgument("pad token id 99999 is not in the vocabulary")) {
            try CLIPTokenizer(vocabulary: vocabulary, merges: merges, padTokenID: 99999)
        }
    }

    @Test func bytesToUnicode() {
        let table = CLIPTokenizer.ByteEncoder.table
        #expect(table[Int(UInt8(ascii: "!"))] == "!")
        #expect(table[0].value == 256)
        #expect(table[32].value == 256 + 32)  // space -> "Ġ"
        #expect(table[173].value == 323)       // soft hyphen is the last remapped byte
        #expect(Set(table).count == 256)
    }

    @Test func concurrentUseIsConsistent() async throws {
        let t = try F.tokenizer("sd15")
        let prompts = F.cases.filter { $0.folder == "sd15" }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var bad = 0
                    for (i, c) in prompts.enumerated() where (i + worker) % 2 == 0 {
                        if t.encode(c.text) != c.ids { bad += 1 }
                    }
                    return bad
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        #expect(t.cache.count <= t.cache.capacity)
    }

    @Test func cacheIsBounded() {
        let cache = CLIPTokenizer.WordCache(capacity: 3)
        for i in 0..<10 { cache.store("w\(i)", [i]) }
        #expect(cache.count <= 3)
        #expect(cache.lookup("w9") == [9])
        cache.store(String(repeating: "x", count: 200), [1])
        #expect(cache.lookup(String(repeating: "x", count: 200)) == nil)
    }

    // MARK: Errors

    @Test func missingFiles() throws {
        let dir = try F.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocabPath = dir.appendingPathComponent("vocab.json").path
        #expect(throws: TokenizerError.missingFile(path: vocabPath)) { try CLIPTokenizer(folder: dir) }
        try FileManager.default.createSymbolicLink(atPath: vocabPath,
                                                   withDestinationPath: F.folder("sd15").appendingPathComponent("vocab.json").path)
        let mergesPath = dir.appendingPathComponent("merges.txt").path
        #expect(throws: TokenizerError.missingFile(path: mergesPath)) { try CLIPTokenizer(folder: dir) }
        // A dangling symlink is reported as missing too.
        try FileManager.default.createSymbolicLink(atPath: mergesPath, withDestinationPath: "../nowhere/merges.txt")
        #expect(throws: TokenizerError.missingFile(path: mergesPath)) { try CLIPTokenizer(folder: dir) }
    }

    @Test func malformedFiles() throws {
        let dir = try F.tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocab = dir.appendingPathComponent("vocab.json")
        let merges = dir.appendingPathComponent("merges.txt")
        try FileManager.default.createSymbolicLink(at: merges,
                                                   withDestinationURL: F.folder("sd15").appendingPathComponent("merges.txt"))

        func error(_ body: () throws -> Void) -> TokenizerError? {
            do { try body() } catch let e as TokenizerError { return e } catch { return nil }
            return nil
        }
        func isMalformed(_ e: TokenizerError?, _ path: String) -> Bool {
            if case let .malformedFile(p, _)? = e { return p == path }
            return false
        }

        for bad in [#"{"a": 1, "b": "#, #"["a", "b"]"#, #"{"a": "one"}"#, "", #"{}"#, #"{"a": -1}"#] {
            try Data(bad.utf8).write(to: vocab)
            let e = error { _ = try CLIPTokenizer(folder: dir) }
            #expect(isMalformed(e, vocab.path), "\(bad): \(String(describing: e))")
            #expect(e?.description.contains("vocab.json") == true)
        }

        // A valid JSON vocabulary that lacks byte symbols: a clear missingToken error, no crash.
        try Data(#"{"a": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}"#.utf8).write(to: vocab)
        let missing = error { _ = try CLIPTokenizer(folder: dir) }
        if case let .missingToken(_, source)? = missing {
            #expect(source == vocab.path)
        } else {
            Issue.record("expected missingToken, got \(String(describing: missing))")
        }

        // Real vocabulary, broken merges.txt.
        try FileManager.default.removeItem(at: vocab)
        try FileManager.default.createSymbolicLink(at: vocab,
                                                   withDestinationURL: F.folder("sd15").appendingPathComponent("vocab.json"))
        try FileManager.default.removeItem(at: merges)
        for bad in ["#version: 0.2\ni n\nthree parts here\n", "#version: 0.2\nzzzq xxxw\n",
                    "#version: 0.2\ni\n"] {
            try Data(bad.utf8).write(to: merges)
            let e = error { _ = try CLIPTokenizer(folder: dir) }
            #expect(isMalformed(e, merges.path), "\(bad.debugDescription): \(String(describing: e))")
        }
        try Data([0x23, 0xFF, 0xFE, 0x0A]).write(to: merges)
        #expect(isMalformed(error { _ = try CLIPTokenizer(folder: dir) }, merges.path))
        // A header-only merges.txt is valid (a byte-level vocabulary with no merges, as transformers reads it).
        try Data("#version: 0.2\n".utf8).write(to: merges)
        #expect(error { _ = try CLIPTokenizer(folder: dir) } == nil)

        // Malformed optional config files are reported with their name.
        try FileManager.default.removeItem(at: merges)
        try FileManager.default.createSymbolicLink(at: merges,
                                                   withDestinationURL: F.folder("sd15").appendingPathComponent("merges.txt"))
        let map = dir.appendingPathComponent("special_tokens_map.json")
        try Data("{not json".utf8).write(to: map)
        #expect(isMalformed(error { _ = try CLIPTokenizer(folder: dir) }, map.path))
        try Data(#"{"pad_token": 5}"#.utf8).write(to: map)
        #expect(isMalformed(error { _ = try CLIPTokenizer(folder: dir) }, map.path))
        try Data(#"{"pad_token": "<|notatoken|>"}"#.utf8).write(to: map)
        #expect(throws: TokenizerError.missingToken(token: "<|notatoken|>", source: map.path)) {
            try CLIPTokenizer(folder: dir)
        }
    }

    /// Throughput sanity check (prints, asserts nothing about speed).
    @Test func throughputSanity() throws {
        let t = try F.tokenizer("sd15")
        let prompts = F.cases.map(\.text)
        let clock = ContinuousClock()
        var total = 0
        let elapsed = clock.measure {
            for _ in 0..<20 {
                for p in prompts { total += t.encode(p).count }
            }
        }
        #expect(total == 20 * prompts.count * 77)
        print("CLIPTokenizer: \(20 * prompts.count) encodes in \(elapsed)")
    }
}
