import Foundation
import Tensors

/// Writes safetensors files: the 8-byte header length, the JSON header (padded with spaces so the
/// data section starts 8-byte aligned, as the Python writer does), then each tensor's bytes in
/// order. Data is produced one tensor at a time, so files larger than memory can be written.
public enum WeightFileWriter {
    public struct Item: Sendable {
        public let name: String
        public let format: StorageFormat
        public let shape: [Int]
        public init(name: String, format: StorageFormat, shape: [Int]) {
            (self.name, self.format, self.shape) = (name, format, shape)
        }
        public var byteCount: Int { Tensor.count(of: shape) * format.byteSize }
    }

    /// `fill` writes each item's little-endian bytes into the buffer it is given.
    public static func write(to url: URL, items: [Item], metadata: [String: String] = [:],
                             fill: (Item, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for item in items {
            header[item.name] = ["dtype": item.format.safetensorsName, "shape": item.shape,
                                 "data_offsets": [offset, offset + item.byteCount]] as [String: Any]
            offset += item.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: url) else {
            throw ModelFilesError.unreadable(path: url.path, reason: "cannot create the file")
        }
        defer { try? handle.close() }
        var length = UInt64(json.count).littleEndian
        try handle.write(contentsOf: Data(bytes: &length, count: 8))
        try handle.write(contentsOf: json)
        let largest = items.map(\.byteCount).max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(largest, 1), alignment: 64)
        defer { buffer.deallocate() }
        for item in items {
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<item.byteCount])
            try fill(item, slice)
            try handle.write(contentsOf: Data(bytesNoCopy: slice.baseAddress ?? buffer.baseAddress!, count: item.byteCount,
                                               deallocator: .none))
        }
    }
}

extension StorageFormat {
    /// The dtype name safetensors headers use.
    public var safetensorsName: String {
        switch self {
        case .float32: return "F32"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        }
    }
}
