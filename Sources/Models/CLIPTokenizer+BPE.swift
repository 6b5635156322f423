import Synchronization

extension CLIPTokenizer {
    /// GPT-2 / CLIP `bytes_to_unicode`: printable bytes (33-126, 161-172, 174-255) map to the same code
    /// point, the other 68 bytes to 256, 257, … in increasing byte order.
    enum ByteEncoder {
        static let table: [Unicode.Scalar] = {
            var table = [Unicode.Scalar](repeating: " ", count: 256)
            var next: UInt32 = 256
            for byte in 0..<256 {
                let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
                let code = printable ? UInt32(byte) : next
                if !printable { next += 1 }
                // Every value here is below 0x200, so the scalar always exists.
                table[byte] = Unicode.Scalar(code) ?? " "
            }
            return table
        }()
    }

    /// Byte-level BPE over vocabulary ids. Merges are keyed by the ids of the pair and give the rank and
    /// the id of the merged symbol, so encoding a word never builds intermediate strings. Construction
    /// checks that all 512 byte symbols and every merge's parts and result are in the vocabulary, so
    /// every symbol BPE can produce has an id: there is no unknown-token path at encode time.
    struct BPEModel: Sendable {
        struct Merge: Sendable {
            var rank: Int32
            var result: Int32
        }

        static let endOfWord = "</w>"

        /// Id of each byte's symbol inside a word, and at the end of a word (with `</w>`).
        let byteIDs: [Int32]
        let finalByteIDs: [Int32]
        let merges: [UInt64: Merge]

        init(vocabulary: [String: Int], merges list: [(String, String)], mergesSource: String,
             vocabularySource: String) throws {
            guard vocabulary.count < Int(Int32.max) else {
                throw TokenizerError.malformedFile(path: vocabularySource, reason: "too many tokens")
            }
            func id(_ token: String) -> Int32? {
                guard let id = vocabulary[token], id <= Int(Int32.max) else { return nil }
                return Int32(id)
            }
            var byteIDs = [Int32](), finalByteIDs = [Int32]()
            byteIDs.reserveCapacity(256)
            finalByteIDs.reserveCapacity(256)
            for scalar in ByteEncoder.table {
                let symbol = String(scalar)
                guard let plain = id(symbol) else {
                    throw TokenizerError.missingToken(token: symbol, source: vocabularySource)
                }
                guard let final = id(symbol + Self.endOfWord) else {
                    throw TokenizerError.missingToken(token: symbol + Self.endOfWord, source: vocabularySource)
                }
                byteIDs.append(plain)
                finalByteIDs.append(final)
            }
            var table = [UInt64: Merge](minimumCapacity: list.count)
            for (rank, (left, right)) in list.enumerated() {
                // Like `tokenizers`, a merge whose parts or result are not in the vocabulary is an error
                // (line = rank + 2 with the "#version" header of merges.txt).
                guard let a = id(left), let b = id(right), let merged = id(left + right) else {
                    throw TokenizerError.malformedFile(
                        path: mergesSource,
                        reason: "merge #\(rank + 1) \"\(left) \(right)\" uses a token missing from the vocabulary")
                }
                table[Self.key(a, b)] = Merge(rank: Int32(clamping: rank), result: merged)
            }
            self.byteIDs = byteIDs
            self.finalByteIDs = finalByteIDs
            self.merges = table
        }

        @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 {
            UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        }

        /// BPE of one word given as UTF-8 bytes. Same algorithm as `tokenizers`' `Word::merge_all`:
        /// repeatedly apply the lowest-rank adjacent merge, leftmost first on equal ranks.
        func encode(utf8 bytes: [UInt8]) -> [Int] {
            let count = bytes.count
            if count == 0 { return [] }
            var symbols = [Int32](repeating: 0, count: count)
            for (i, byte) in bytes.enumerated() {
                symbols[i] = i == count - 1 ? finalByteIDs[Int(byte)] : byteIDs[Int(byte)]
            }
            if count == 1 { return [Int(symbols[0])] }

            var previous = [Int](0..<count).map { $0 - 1 }
            var next = [Int](0..<count).map { $0 + 1 == count ? -1 : $0 + 1 }
            var alive = [Bool](repeating: true, count: count)
            var queue = MergeQueue()
            for i in 0..<(count - 1) {
                if let merge = merges[Self.key(symbols[i], symbols[i + 1])] {
                    queue.push(.init(rank: merge.rank, position: Int32(i), result: merge.result))
                }
            }
            while let top = queue.pop() {
                let position = Int(top.position)
                guard alive[position] else { continue }
                let right = next[position]
                guard right >= 0 else { continue }
                // Skip stale entries: the pair at `position` must still produce the same symbol.
                guard let merge = merges[Self.key(symbols[position], symbols[right])], merge.result == top.result else {
                    continue
                }
                symbols[position] = merge.result
                alive[right] = false
                let after = next[right]
                next[position] = after
                if after >= 0 { previous[after] = position }
                let before = previous[position]
                if before >= 0, let m = merges[Self.key(symbols[before], symbols[position])] {
                    queue.push(.init(rank: m.rank, position: Int32(before), result: m.result))
                }
                if after >= 0, let m = merges[Self.key(symbols[position], symbols[after])] {
                    queue.push(.init(rank: m.rank, position: Int32(position), result: m.result))
                }
            }
            var ids: [Int] = []
            var i = 0
            while i >= 0 {
                ids.append(Int(symbols[i]))
                i = next[i]
            }
            return ids
        }
    }

    /// Binary min-heap of pending merges ordered by (rank, position).
    struct MergeQueue {
        struct Entry {
            var rank: Int32
            var position: Int32
            var result: Int32

            @inline(__always) var order: UInt64 {
                UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: position))
            }
        }

        private var heap: [Entry] = []

        mutating func push(_ entry: Entry) {
            heap.append(entry)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].order < heap[parent].order else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() -> Entry? {
            guard let last = heap.popLast() else { return nil }
            guard !heap.isEmpty else { return last }
            let top = heap[0]
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count, heap[left].order < heap[smallest].order { smallest = left }
                if right < heap.count, heap[right].order < heap[smallest].order { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
            return top
        }
    }

    /// Bounded word -> ids cache shared by copies of a tokenizer. When full it is emptied (prompts repeat
    /// a small working set; this keeps memory bounded without bookkeeping). Long words are not cached.
    final class WordCache: Sendable {
        let capacity: Int
        static let maxWordUTF8Length = 64
        private let storage = Mutex<[String: [Int]]>([:])

        init(capacity: Int) { self.capacity = capacity }

        func lookup(_ word: String) -> [Int]? {
            storage.withLock { $0[word] }
        }

        func store(_ word: String, _ ids: [Int]) {
            guard capacity > 0, word.utf8.count <= Self.maxWordUTF8Length else { return }
            storage.withLock { cache in
                if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
                cache[word] = ids
            }
        }

        var count: Int { storage.withLock { $0.count } }
    }
}
