import Foundation

/// Errors raised while loading a CLIP tokenizer folder or building a tokenizer.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required file (vocab.json, merges.txt) is not in the folder.
    case missingFile(path: String)
    /// The file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// The file was read but its content is not what the tokenizer expects.
    case malformedFile(path: String, reason: String)
    /// A token the tokenizer needs (a special token or a byte symbol) is not in the vocabulary.
    /// `source` names the file (or argument) that asked for it.
    case missingToken(token: String, source: String)
    /// An argument is out of range (`maxLength` < 2, a pad id not in the vocabulary…).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .missingFile(path): return "\(path): tokenizer file not found"
        case let .unreadableFile(path, reason): return "\(path): cannot read: \(reason)"
        case let .malformedFile(path, reason): return "\(path): malformed: \(reason)"
        case let .missingToken(token, source): return "\(source): token \(token.debugDescription) is not in the vocabulary"
        case let .invalidArgument(reason): return "invalid tokenizer argument: \(reason)"
        }
    }
}

/// The byte-level BPE tokenizer of CLIP (SD 1.x / 2.x / sd-turbo / SDXL text encoders).
///
/// Behaviour follows Hugging Face's `CLIPTokenizer` as `transformers` 5 ships it (the `tokenizers`
/// backed one, identical to v4's `CLIPTokenizerFast`):
/// 1. Registered special/added tokens whose `normalized` flag is false are split out of the raw text
///    (leftmost, longest first). With SD 2.x's pad token `"!"` every literal "!" becomes id 0
///    (diffusers #4153) — reproduced on purpose.
/// 2. Each remaining piece is normalised: Unicode NFC, whitespace runs collapsed to one space,
///    per-scalar full lowercase mapping (no ftfy, no html unescaping, no final-sigma rule).
/// 3. Added tokens with `normalized == true` (`<|startoftext|>`, `<|endoftext|>` in the hub repos) are
///    split out of the normalised text.
/// 4. Pre-tokenisation with CLIP's pattern
///    `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
///    over Unicode scalars (HF applies it case-sensitively to the already lowercased text).
/// 5. Each piece's UTF-8 bytes go through `bytes_to_unicode`; BPE merges by rank with `</w>` on the
///    last symbol; symbols map to vocabulary ids.
///
/// The type is immutable apart from a bounded, lock-protected per-word cache, so one instance can be
/// shared across tasks.
public struct CLIPTokenizer: Sendable {
    public static let defaultMaxLength = 77
    public static let startOfText = "<|startoftext|>"
    public static let endOfText = "<|endoftext|>"

    public let bosTokenID: Int
    public let eosTokenID: Int
    public let padTokenID: Int
    /// The configured unknown token (`<|endoftext|>`). Byte-level BPE never needs it: loading rejects a
    /// vocabulary lacking a byte symbol or a merge result (`TokenizerError`), so encoding cannot fail.
    public let unkTokenID: Int
    /// Length of `encode`'s output (model_max_length, 77 for every SD text encoder).
    public let maxLength: Int

    let vocabulary: [String: Int]
    let bpe: BPEModel
    /// Added tokens matched in the raw text (normalized == false) and in the normalised text.
    let rawAddedTokens: AddedTokenMatcher
    let normalizedAddedTokens: AddedTokenMatcher
    let cache: WordCache

    public var vocabularySize: Int { vocabulary.count }

    /// An added (special) token: `content` is matched verbatim, before normalisation when
    /// `normalized` is false and after it when true.
    struct AddedToken: Equatable, Sendable {
        var content: String
        var normalized: Bool
    }

    // MARK: Construction

    /// Builds a tokenizer from an in-memory vocabulary and merge list (rank = position in `merges`).
    /// `<|startoftext|>` and `<|endoftext|>` must be in the vocabulary; they are registered as
    /// normalised special tokens, as in the hub repos. When `padTokenID` is not the EOS id, the token
    /// with that id is registered as a non-normalised special token, which is what
    /// `tokenizer.add_special_tokens({"pad_token": "!"})` does in `transformers` (SD 2.x).
    public init(vocabulary: [String: Int], merges: [(String, String)], padTokenID: Int,
                maxLength: Int = CLIPTokenizer.defaultMaxLength) throws {
        guard let padToken = vocabulary.first(where: { $0.value == padTokenID })?.key else {
            throw TokenizerError.invalidArgument("pad token id \(padTokenID) is not in the vocabulary")
        }
        let eos = AddedToken(content: Self.endOfText, normalized: true)
        let pad = padToken == Self.endOfText ? eos : AddedToken(content: padToken, normalized: false)
        try self.init(vocabulary: vocabulary, merges: merges, mergesSource: "merges",
                      bos: AddedToken(content: Self.startOfText, normalized: true), eos: eos,
                      unk: eos, pad: pad, extra: [], maxLength: maxLength, source: "vocabulary")
    }

    /// Loads a Hugging Face tokenizer folder (`tokenizer/` of a diffusers repo): `vocab.json`,
    /// `merges.txt` and, when present, `special_tokens_map.json` and `tokenizer_config.json` (special
    /// tokens, `added_tokens_decoder`, `model_max_length`). Symbolic links are followed.
    ///
    /// Special tokens come from special_tokens_map.json first, then tokenizer_config.json, then the
    /// CLIP defaults (`<|startoftext|>`, `<|endoftext|>` for eos/unk/pad). A token given as a plain
    /// string is non-normalised unless an `added_tokens_decoder` entry says otherwise (as in
    /// `transformers`). `model_max_length` is used when it is an integer in 2...1_000_000, else 77.
    public init(folder: URL) throws {
        let vocabURL = folder.appendingPathComponent("vocab.json")
        let mergesURL = folder.appendingPathComponent("merges.txt")
        let vocabulary = try Self.readVocabulary(vocabURL)
        let merges = try Self.readMerges(mergesURL)

        let mapURL = folder.appendingPathComponent("special_tokens_map.json")
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        let map = try Self.readOptionalJSONObject(mapURL)
        let config = try Self.readOptionalJSONObject(configURL)

        // added_tokens_decoder: {"49406": {"content": "...", "normalized": true, ...}, ...}
        var declared: [AddedToken] = []
        if let decoder = config?["added_tokens_decoder"] {
            guard case let .object(entries) = decoder else {
                throw TokenizerError.malformedFile(path: configURL.path, reason: "added_tokens_decoder is not an object")
            }
            for (key, value) in entries.sorted(by: { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }) {
                guard let token = Self.addedToken(value, defaultNormalized: false) else {
                    throw TokenizerError.malformedFile(path: configURL.path, reason: "added_tokens_decoder[\(key)] has no string content")
                }
                declared.append(token)
            }
        }

        func special(_ name: String, default content: String) throws -> (AddedToken, String) {
            for (object, url) in [(map, mapURL), (config, configURL)] {
                guard let value = object?[name], value != .null else { continue }
                let fallback = declared.first(where: { $0.content == value.tokenContent })?.normalized ?? false
                guard let token = Self.addedToken(value, defaultNormalized: fallback) else {
                    throw TokenizerError.malformedFile(path: url.path, reason: "\(name) is neither a string nor an object with a string \"content\"")
                }
                return (token, url.path)
            }
            let normalized = declared.first(where: { $0.content == content })?.normalized ?? false
            return (AddedToken(content: content, normalized: normalized), folder.path)
        }
        let (bos, bosSource) = try special("bos_token", default: Self.startOfText)
        let (eos, eosSource) = try special("eos_token", default: Self.endOfText)
        let (unk, unkSource) = try special("unk_token", default: Self.endOfText)
        let (pad, padSource) = try special("pad_token", default: Self.endOfText)
        for (token, source) in [(bos, bosSource), (eos, eosSource), (unk, unkSource), (pad, padSource)]
        where vocabulary[token.content] == nil {
            throw TokenizerError.missingToken(token: token.content, source: source)
        }
        for token in declared where vocabulary[token.content] == nil {
            throw TokenizerError.missingToken(token: token.content, source: configURL.path)
        }

        var maxLength = Self.defaultMaxLength
        if case let .number(value)? = config?["model_max_length"], value >= 2, value <= 1_000_000,
           value == value.rounded() {
            maxLength = Int(value)
        }
        try self.init(vocabulary: vocabulary, merges: merges, mergesSource: mergesURL.path,
                      bos: bos, eos: eos, unk: unk, pad: pad, extra: declared, maxLength: maxLength,
                      source: vocabURL.path)
    }

    init(vocabulary: [String: Int], merges: [(String, String)], mergesSource: String,
         bos: AddedToken, eos: AddedToken, unk: AddedToken, pad: AddedToken, extra: [AddedToken],
         maxLength: Int, source: String) throws {
        guard maxLength >= 2 else {
            throw TokenizerError.invalidArgument("maxLength \(maxLength) leaves no room for BOS and EOS")
        }
        func id(_ token: AddedToken) throws -> Int {
            guard let id = vocabulary[token.content] else {
                throw TokenizerError.missingToken(token: token.content, source: source)
            }
            return id
        }
        bosTokenID = try id(bos)
        eosTokenID = try id(eos)
        unkTokenID = try id(unk)
        padTokenID = try id(pad)
        self.maxLength = maxLength
        self.vocabulary = vocabulary
        bpe = try BPEModel(vocabulary: vocabulary, merges: merges, mergesSource: mergesSource,
                           vocabularySource: source)

        // Register every added token once (first declaration wins, like transformers' added vocab).
        var seen = Set<String>()
        var raw: [([Unicode.Scalar], Int)] = []
        var normalized: [([Unicode.Scalar], Int)] = []
        for token in [bos, eos, unk, pad] + extra where !token.content.isEmpty && seen.insert(token.content).inserted {
            let entry = (Array(token.content.unicodeScalars), try id(token))
            if token.normalized { normalized.append(entry) } else { raw.append(entry) }
        }
        rawAddedTokens = AddedTokenMatcher(tokens: raw)
        normalizedAddedTokens = AddedTokenMatcher(tokens: normalized)
        cache = WordCache(capacity: 10_000)
    }

    // MARK: Encoding

    /// The BPE ids of `text`, without BOS, EOS or padding (added tokens in the text included).
    public func tokenize(_ text: String) -> [Int] {
        tokenize(text, limit: Int.max)
    }

    /// `[BOS] + ids + [EOS]`, with ids truncated so that EOS is at index `maxLength - 1` at most,
    /// then padded with `padTokenID` to exactly `maxLength` ids.
    public func encode(_ text: String) -> [Int] {
        let body = tokenize(text, limit: maxLength - 2).prefix(maxLength - 2)
        var ids = [Int]()
        ids.reserveCapacity(maxLength)
        ids.append(bosTokenID)
        ids.append(contentsOf: body)
        ids.append(eosTokenID)
        ids.append(contentsOf: repeatElement(padTokenID, count: maxLength - ids.count))
        return ids
    }

    /// The vocabulary id of a token string (`"cat</w>"`), if any.
    public func id(of token: String) -> Int? { vocabulary[token] }

    /// Tokenises until at least `limit` ids are produced (the result may be longer; the prefix of
    /// length `limit` equals that of the full tokenisation).
    func tokenize(_ text: String, limit: Int) -> [Int] {
        var ids: [Int] = []
        let scalars = Array(text.unicodeScalars)
        for piece in rawAddedTokens.split(scalars[...]) {
            if ids.count >= limit { break }
            switch piece {
            case let .token(id):
                ids.append(id)
            case let .text(raw):
                let normalizedText = TextNormalizer.normalize(raw)
                for inner in normalizedAddedTokens.split(normalizedText[...]) {
                    if ids.count >= limit { break }
                    switch inner {
                    case let .token(id):
                        ids.append(id)
                    case let .text(part):
                        PreTokenizer.forEachWord(in: part) { word in
                            guard ids.count < limit else { return false }
                            ids.append(contentsOf: encodeWord(word))
                            return true
                        }
                    }
                }
            }
        }
        return ids
    }

    /// BPE ids of one pre-tokenised word, through the bounded cache.
    func encodeWord(_ word: ArraySlice<Unicode.Scalar>) -> [Int] {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: word)
        let key = String(view)
        if let hit = cache.lookup(key) { return hit }
        let ids = bpe.encode(utf8: Array(key.utf8))
        cache.store(key, ids)
        return ids
    }

    // MARK: File reading

    static func readData(_ url: URL) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TokenizerError.missingFile(path: url.path)
        }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: "\(error)")
        }
    }

    static func readVocabulary(_ url: URL) throws -> [String: Int] {
        let data = try readData(url)
        let vocabulary: [String: Int]
        do {
            vocabulary = try JSONDecoder().decode([String: Int].self, from: data)
        } catch {
            throw TokenizerError.malformedFile(path: url.path, reason: "expected a JSON object of token -> integer id (\(error))")
        }
        guard !vocabulary.isEmpty else {
            throw TokenizerError.malformedFile(path: url.path, reason: "the vocabulary is empty")
        }
        if let negative = vocabulary.first(where: { $0.value < 0 }) {
            throw TokenizerError.malformedFile(path: url.path, reason: "token \(negative.key.debugDescription) has negative id \(negative.value)")
        }
        return vocabulary
    }

    /// merges.txt: an optional `#version` header line, then one "left right" pair per line.
    static func readMerges(_ url: URL) throws -> [(String, String)] {
        let data = try readData(url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.malformedFile(path: url.path, reason: "not valid UTF-8")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(49_000)
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || (lineNumber == 1 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.malformedFile(path: url.path, reason: "line \(lineNumber) is not a \"left right\" merge pair")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        // A header-only file is valid: a byte-level vocabulary needs no merges (transformers agrees).
        return merges
    }

    static func readOptionalJSONObject(_ url: URL) throws -> [String: JSONValue]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data = try readData(url)
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw TokenizerError.malformedFile(path: url.path, reason: "not valid JSON (\(error))")
        }
        guard case let .object(object) = value else {
            throw TokenizerError.malformedFile(path: url.path, reason: "expected a JSON object")
        }
        return object
    }

    /// A token spec is `"text"` or `{"content": "text", "normalized": Bool, ...}`.
    static func addedToken(_ value: JSONValue, defaultNormalized: Bool) -> AddedToken? {
        switch value {
        case let .string(content):
            return AddedToken(content: content, normalized: defaultNormalized)
        case let .object(object):
            guard case let .string(content)? = object["content"] else { return nil }
            var normalized = defaultNormalized
            if case let .bool(flag)? = object["normalized"] { normalized = flag }
            return AddedToken(content: content, normalized: normalized)
        default:
            return nil
        }
    }
}

extension CLIPTokenizer {
    /// Minimal JSON tree for the tokenizer's config files.
    enum JSONValue: Decodable, Equatable, Sendable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([JSONValue])
        case object([String: JSONValue])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([JSONValue].self) {
                self = .array(value)
            } else {
                self = .object(try container.decode([String: JSONValue].self))
            }
        }

        /// The token text of a special-token spec (a string, or an object's "content").
        var tokenContent: String? {
            switch self {
            case let .string(content): return content
            case let .object(object):
                if case let .string(content)? = object["content"] { return content }
                return nil
            default: return nil
            }
        }
    }
}
