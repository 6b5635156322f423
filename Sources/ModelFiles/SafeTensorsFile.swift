import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One `.safetensors` file, memory-mapped read-only.
///
/// `init` maps the file (`mmap`, `MAP_PRIVATE`, `PROT_READ`: nothing is read until touched, so a
/// multi-gigabyte checkpoint costs only address space) and validates the whole header before
/// anything is used (see `SafeTensorsHeader`). Tensor bytes are handed out lazily, in place, by
/// `withBytes(of:)` — possibly unaligned (MLX-written files do not pad the header).
///
/// Tensors whose dtype is valid safetensors but not loadable (I64 `position_ids`, F64, …) are kept
/// out of `names` and `entry(_:)` so a model binding weights never sees them; they are listed in
/// `unsupportedTensors`, and asking for their bytes throws `unsupportedDType`.
///
/// Caveat of every mmap reader: if another process truncates the file while it is mapped,
/// touching the lost pages raises SIGBUS. Model files are not rewritten in place in practice.
public final class SafeTensorsFile: WeightSource, @unchecked Sendable {
    // @unchecked: the mapping is read-only and every stored property is immutable after init.

    public let url: URL
    /// The file's path, used in every error.
    public let location: String
    /// The validated header.
    public let header: SafeTensorsHeader
    /// Size of the whole file in bytes.
    public let fileSize: Int
    /// Loadable tensor names, sorted.
    public let names: [String]

    private let base: UnsafeRawPointer

    /// Maps and validates `url`. Throws `ModelFilesError.unreadable` when the file cannot be
    /// opened or mapped, `badHeader`/`badTensor` when its header is invalid.
    public init(url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelFilesError.unreadable(path: path, reason: SafeTensorsFile.errnoText()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ModelFilesError.unreadable(path: path, reason: SafeTensorsFile.errnoText()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            let what = (info.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "is not a regular file"
            throw ModelFilesError.unreadable(path: path, reason: what)
        }
        let size = Int(info.st_size)
        guard size >= 8 else {
            throw ModelFilesError.badHeader(path: path, reason: "file is \(size) bytes, too short to hold the 8-byte header length")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw ModelFilesError.unreadable(path: path, reason: "mmap failed: \(SafeTensorsFile.errnoText())")
        }
        let base = UnsafeRawPointer(mapped)
        do {
            header = try SafeTensorsHeader.parse(file: UnsafeRawBufferPointer(start: base, count: size), path: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
        self.url = url
        self.location = path
        self.fileSize = size
        self.base = base
        self.names = header.names
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
    }

    /// The `__metadata__` strings (e.g. `["format": "pt"]`); empty when absent.
    public var metadata: [String: String] { header.metadata }

    /// Tensors present in the file with a dtype the engine does not load: name → dtype string.
    public var unsupportedTensors: [String: String] { header.unsupported.mapValues { $0.dtype.rawValue } }

    public func entry(_ name: String) -> TensorEntry? { header.entries[name] }

    public func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer, TensorEntry) throws -> R) throws -> R {
        guard let entry = header.entries[name] else {
            if let other = header.unsupported[name] {
                throw ModelFilesError.unsupportedDType(path: location, tensor: name, dtype: other.dtype.rawValue)
            }
            throw ModelFilesError.missingTensor(path: location, tensor: name)
        }
        // The header check guarantees dataOffset + upperBound ≤ fileSize.
        let start = base + header.dataOffset + entry.byteRange.lowerBound
        return try body(UnsafeRawBufferPointer(start: start, count: entry.byteRange.count), entry)
    }

    /// The value of a one-element integer tensor (I64, I32, I16, I8, U8) — such as a kohya LoRA's
    /// `alpha`, which some writers store as I64. Nil when `name` is not such a tensor.
    public func integerScalar(_ name: String) -> Int64? {
        guard let t = header.unsupported[name], t.shape.reduce(1, *) == 1 else { return nil }
        let start = base + header.dataOffset + t.byteRange.lowerBound
        switch (t.dtype.rawValue, t.byteRange.count) {
        case ("I64", 8): return start.loadUnaligned(as: Int64.self)
        case ("I32", 4): return Int64(start.loadUnaligned(as: Int32.self))
        case ("I16", 2): return Int64(start.loadUnaligned(as: Int16.self))
        case ("I8", 1): return Int64(start.load(as: Int8.self))
        case ("U8", 1): return Int64(start.load(as: UInt8.self))
        default: return nil
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
