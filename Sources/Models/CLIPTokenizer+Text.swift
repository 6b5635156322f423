import Foundation

extension CLIPTokenizer {
    /// Splits text on added (special) tokens, leftmost match first and the longest token on ties — the
    /// `LeftmostLongest` matching of `tokenizers`' added vocabulary. Comparison is scalar by scalar
    /// (never Swift's canonical-equivalence `==` on `String`/`Character`).
    struct AddedTokenMatcher: Sendable {
        enum Piece: Equatable {
            case text(ArraySlice<Unicode.Scalar>)
            case token(Int)
        }

        /// Tokens sorted longest first, so the first hit at a position is the longest.
        let tokens: [(scalars: [Unicode.Scalar], id: Int)]
        let firstScalars: Set<Unicode.Scalar>

        init(tokens: [([Unicode.Scalar], Int)]) {
            self.tokens = tokens.filter { !$0.0.isEmpty }
                .sorted { $0.0.count > $1.0.count }
                .map { (scalars: $0.0, id: $0.1) }
            firstScalars = Set(self.tokens.compactMap { $0.scalars.first })
        }

        func split(_ text: ArraySlice<Unicode.Scalar>) -> [Piece] {
            guard !tokens.isEmpty else { return text.isEmpty ? [] : [.text(text)] }
            var pieces: [Piece] = []
            var start = text.startIndex
            var i = text.startIndex
            while i < text.endIndex {
                guard firstScalars.contains(text[i]), let (length, id) = match(text, at: i) else {
                    i += 1
                    continue
                }
                if start < i { pieces.append(.text(text[start..<i])) }
                pieces.append(.token(id))
                i += length
                start = i
            }
            if start < text.endIndex { pieces.append(.text(text[start..<text.endIndex])) }
            return pieces
        }

        private func match(_ text: ArraySlice<Unicode.Scalar>, at i: Int) -> (Int, Int)? {
            for token in tokens where text.endIndex - i >= token.scalars.count {
                var k = 0
                while k < token.scalars.count, text[i + k] == token.scalars[k] { k += 1 }
                if k == token.scalars.count { return (k, token.id) }
            }
            return nil
        }
    }

    /// The HF CLIP normaliser: NFC, `\s+` -> " ", lowercase (per scalar, full mappings, as `tokenizers`
    /// does with Rust's `char::to_lowercase`; no context-dependent final sigma).
    enum TextNormalizer {
        static func normalize(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
            let composed: [Unicode.Scalar]
            if text.allSatisfy(\.isASCII) {
                composed = Array(text)  // ASCII is already NFC
            } else {
                var view = String.UnicodeScalarView()
                view.append(contentsOf: text)
                composed = Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
            }
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(composed.count)
            var inWhitespace = false
            for scalar in composed {
                if PreTokenizer.isWhitespace(scalar) {
                    if !inWhitespace { out.append(" ") }
                    inWhitespace = true
                    continue
                }
                inWhitespace = false
                if scalar.isASCII {
                    let v = scalar.value
                    out.append((0x41...0x5A).contains(v) ? Unicode.Scalar(UInt8(v + 0x20)) : scalar)
                } else if scalar.properties.changesWhenLowercased {
                    out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
                } else {
                    out.append(scalar)
                }
            }
            return out
        }
    }

    /// CLIP's pre-tokenisation pattern as a scanner over Unicode scalars:
    /// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
    /// (first alternative that matches at the leftmost position; whitespace between matches dropped).
    /// Text reaching it is lowercased already, so the pattern's case-insensitivity does not matter
    /// (`tokenizers` applies it case-sensitively, which this follows: "'ſ" is not a contraction).
    enum PreTokenizer {
        static let specialWords: [[Unicode.Scalar]] = [
            Array("<|startoftext|>".unicodeScalars), Array("<|endoftext|>".unicodeScalars),
        ]

        @inline(__always) static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
            if s.isASCII { return s == " " || (0x09...0x0D).contains(s.value) }
            return s.properties.isWhitespace
        }

        @inline(__always) static func isLetter(_ s: Unicode.Scalar) -> Bool {
            if s.isASCII { return (0x61...0x7A).contains(s.value) || (0x41...0x5A).contains(s.value) }
            switch s.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
            default: return false
            }
        }

        @inline(__always) static func isNumber(_ s: Unicode.Scalar) -> Bool {
            if s.isASCII { return (0x30...0x39).contains(s.value) }
            switch s.properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: return true
            default: return false
            }
        }

        /// Calls `body` with each word in order; stops early when `body` returns false.
        static func forEachWord(in text: ArraySlice<Unicode.Scalar>, _ body: (ArraySlice<Unicode.Scalar>) -> Bool) {
            var i = text.startIndex
            let end = text.endIndex
            while i < end {
                let c = text[i]
                if isWhitespace(c) {
                    i += 1
                    continue
                }
                if c == "<", let length = specialLength(text, at: i) {
                    // `tokenizers`' ByteLevel pre-tokenizer re-splits this piece with the GPT-2 pattern
                    // into "<|", the letters, and "|>", each a word of its own. (Only reachable when the
                    // special tokens are registered as non-normalised and the text had another case.)
                    let wordEnd = i + length
                    guard body(text[i..<(i + 2)]), body(text[(i + 2)..<(wordEnd - 2)]),
                          body(text[(wordEnd - 2)..<wordEnd]) else { return }
                    i = wordEnd
                    continue
                }
                if c == "'", let length = contractionLength(text, at: i) {
                    guard body(text[i..<(i + length)]) else { return }
                    i += length
                    continue
                }
                var j = i + 1
                if isLetter(c) {
                    while j < end, isLetter(text[j]) { j += 1 }
                } else if !isNumber(c) {
                    while j < end, !isWhitespace(text[j]), !isLetter(text[j]), !isNumber(text[j]) { j += 1 }
                }
                guard body(text[i..<j]) else { return }
                i = j
            }
        }

        private static func specialLength(_ text: ArraySlice<Unicode.Scalar>, at i: Int) -> Int? {
            for word in specialWords where text.endIndex - i >= word.count {
                if text[i..<(i + word.count)].elementsEqual(word) { return word.count }
            }
            return nil
        }

        /// 's 't 're 've 'm 'll 'd
        private static func contractionLength(_ text: ArraySlice<Unicode.Scalar>, at i: Int) -> Int? {
            guard i + 1 < text.endIndex else { return nil }
            switch text[i + 1] {
            case "s", "t", "m", "d": return 2
            case "r", "v":
                return i + 2 < text.endIndex && text[i + 2] == "e" ? 3 : nil
            case "l":
                return i + 2 < text.endIndex && text[i + 2] == "l" ? 3 : nil
            default: return nil
            }
        }
    }
}
