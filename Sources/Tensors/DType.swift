/// Element types a tensor can hold. fp32 is the reference; bf16 is the fast compute type on CPUs
/// with AVX-512 BF16. fp16 exists only on disk and is converted when loaded (`StorageFormat`).
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32
    case bfloat16

    public var byteSize: Int { self == .float32 ? 4 : 2 }
    public var description: String { self == .float32 ? "fp32" : "bf16" }
}

/// Element encodings of raw data handed to a backend (weights read from files, test fixtures).
public enum StorageFormat: String, Sendable, CaseIterable {
    case float32
    case float16
    case bfloat16

    public var byteSize: Int { self == .float32 ? 4 : 2 }
}

/// Scalar conversions used by the reference backend and by tests; the CPU backend has vectorised
/// equivalents with identical rounding (round to nearest, ties to even).
public enum BFloat16 {
    public static func round(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return 0x7FC0 }
        let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
        return UInt16(truncatingIfNeeded: rounded)
    }

    public static func float(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// The nearest bf16 value, as a Float.
    public static func quantize(_ value: Float) -> Float { float(round(value)) }
}
