import CDNNL
import CKernels
import Foundation

/// The fast CPU backend: oneDNN for convolutions and matrix products (weights packed once at load,
/// primitives cached per shape), vectorised C kernels for the rest, one OpenMP thread pool for all.
public final class CPUBackend: Backend, @unchecked Sendable {
    public enum Precision: String, Sendable, CaseIterable {
        /// bf16 where the CPU has AVX-512 BF16, fp32 otherwise.
        case automatic
        case float32
        case bfloat16
    }

    public let threads: Int
    public let computeDType: DType
    public let pool: BufferPool
    let context: OpaquePointer

    /// True when the CPU executes bf16 dot products natively (AVX-512 BF16).
    public static var hardwareSupportsBFloat16: Bool { sd_cpu_has_avx512_bf16() != 0 }
    /// oneDNN's version, e.g. "2.6.3" (read from the linked library, not the header).
    public static var oneDNNVersion: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    /// The instruction set oneDNN dispatches to here, e.g. "avx512_core_bf16".
    public static var isaName: String { String(cString: sd_dnnl_isa_name()) }

    public init(threads: Int? = nil, precision: Precision = .automatic, pool: BufferPool = BufferPool()) throws {
        let count = threads ?? ProcessInfo.processInfo.activeProcessorCount
        guard count >= 1, count <= 1024 else {
            throw TensorError.invalidArgument(op: "CPUBackend", message: "thread count \(count) out of range")
        }
        switch precision {
        case .automatic: computeDType = CPUBackend.hardwareSupportsBFloat16 ? .bfloat16 : .float32
        case .float32: computeDType = .float32
        case .bfloat16:
            guard CPUBackend.hardwareSupportsBFloat16 else {
                throw TensorError.invalidArgument(op: "CPUBackend", message: "bf16 compute needs AVX-512 BF16, which this CPU lacks")
            }
            computeDType = .bfloat16
        }
        self.threads = count
        self.pool = pool
        var made: OpaquePointer?
        try CPUBackend.check("CPUBackend") { err, len in
            made = sd_ctx_create(Int32(count), err, len)
            return made == nil ? -1 : 0
        }
        guard let made else { throw TensorError.backendFailure(op: "CPUBackend", message: "no context") }
        context = made
    }

    deinit { sd_ctx_destroy(context) }

    public var description: String {
        "CPU (oneDNN \(CPUBackend.oneDNNVersion) \(CPUBackend.isaName), \(threads) thread\(threads == 1 ? "" : "s"), \(computeDType) compute)"
    }

    var nthreads: Int32 { Int32(threads) }

    /// Runs a C call that reports failure as a negative return and a message in `err`.
    static func check(_ op: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var buffer = [CChar](repeating: 0, count: 512)
        let status = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        if status != 0 {
            let message = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw TensorError.backendFailure(op: op, message: message.isEmpty ? "failed" : message)
        }
    }

    func output(_ shape: [Int], _ dtype: DType = .float32) throws -> Tensor {
        try pool.tensor(shape: shape, dtype: dtype)
    }

    /// `x` in the compute dtype (a conversion pass only when it is not already).
    func inComputeDType(_ x: Tensor) throws -> Tensor {
        x.dtype == computeDType ? x : try convert(x, to: computeDType)
    }

    // MARK: data movement

    public func tensor(_ values: [Float], shape: [Int]) throws -> Tensor {
        guard Tensor.checkedCount(of: shape) == values.count else {
            throw TensorError.invalidArgument(op: "tensor", message: "\(values.count) values do not fill shape \(shape)")
        }
        let t = try output(shape)
        values.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { t.host.copyMemory(from: base, byteCount: bytes.count) }
        }
        return t
    }

    public func tensor(raw: UnsafeRawBufferPointer, format: StorageFormat, shape: [Int], dtype: DType) throws -> Tensor {
        try OpShapes.raw(raw, format, shape)
        let count = Tensor.count(of: shape)
        let t = try output(shape, dtype)
        guard count > 0, let base = raw.baseAddress else { return t }
        switch (format, dtype) {
        case (.float32, .float32), (.bfloat16, .bfloat16):
            t.host.copyMemory(from: base, byteCount: raw.count)
        case (.float32, .bfloat16):
            sd_convert_f32_to_bf16(nthreads, base.assumingMemoryBound(to: Float.self), t.host.assumingMemoryBound(to: UInt16.self), count)
        case (.bfloat16, .float32):
            sd_convert_bf16_to_f32(nthreads, base.assumingMemoryBound(to: UInt16.self), t.host.assumingMemoryBound(to: Float.self), count)
        case (.float16, .float32):
            sd_convert_f16_to_f32(nthreads, base.assumingMemoryBound(to: UInt16.self), t.host.assumingMemoryBound(to: Float.self), count)
        case (.float16, .bfloat16):
            let wide = try tensor(raw: raw, format: .float16, shape: shape, dtype: .float32)
            return try convert(wide, to: .bfloat16)
        }
        return t
    }

    public func floats(_ tensor: Tensor) throws -> [Float] {
        let source = try tensor.dtype == .float32 ? tensor : convert(tensor, to: .float32)
        return withExtendedLifetime(source) {
            Array(UnsafeBufferPointer(start: source.host.assumingMemoryBound(to: Float.self), count: source.count))
        }
    }

    public func convert(_ x: Tensor, to dtype: DType) throws -> Tensor {
        let y = try output(x.shape, dtype)
        switch (x.dtype, dtype) {
        case (.float32, .bfloat16):
            sd_convert_f32_to_bf16(nthreads, x.host.assumingMemoryBound(to: Float.self), y.host.assumingMemoryBound(to: UInt16.self), x.count)
        case (.bfloat16, .float32):
            sd_convert_bf16_to_f32(nthreads, x.host.assumingMemoryBound(to: UInt16.self), y.host.assumingMemoryBound(to: Float.self), x.count)
        default:
            y.host.copyMemory(from: x.host, byteCount: x.byteCount)
        }
        return y
    }
}

extension Tensor {
    /// Address of the first element, for tensors in host memory (CPU and reference backends).
    /// Calling it on another backend's tensor is a programming error.
    var host: UnsafeMutableRawPointer {
        guard let buffer = storage as? HostBuffer else {
            preconditionFailure("tensor \(shape) does not live in host memory")
        }
        return buffer.pointer + byteOffset
    }

    var floatPointer: UnsafeMutablePointer<Float> { host.assumingMemoryBound(to: Float.self) }
}

extension DType {
    var cCode: Int32 { self == .float32 ? Int32(SD_F32) : Int32(SD_BF16) }
}
