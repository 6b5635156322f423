import CVulkan
import Foundation
import Tensors

/// The GPU backend: Vulkan compute shaders (GLSL in Shaders/, SPIR-V in ShaderBinaries.swift) behind
/// the same `Backend` protocol as the CPU backend. Runs on any Vulkan 1.1 device — NVIDIA, AMD,
/// Intel, Apple through MoltenVK — and on the CPU through Mesa's lavapipe, which is how the tests
/// check every shader against the CPU backend.
///
/// Work is recorded in order into one command buffer and submitted when the host reads a result
/// (`floats`); tensors live in device buffers from a pool; weights are uploaded once. Computes in
/// fp32 (bf16 needs no device support as storage, but this backend does not implement it yet).
public final class VulkanBackend: Backend, @unchecked Sendable {
    /// How prepared convolution and linear weights are stored on the device.
    public enum WeightStorage: String, Sendable, CaseIterable {
        /// As given: results match the CPU backend to fp32 rounding.
        case float32
        /// Rounded to fp16 (nearest, ties to even) and unpacked in the shaders: half the memory and
        /// bandwidth; lossless for models distributed in fp16 (sd-turbo, most checkpoints). Needs
        /// no device feature.
        case float16
    }

    /// Which attention shader runs (both use an online softmax and never store the score matrix).
    public enum AttentionKernel: String, Sendable, CaseIterable {
        /// attention.comp: each invocation walks the keys for one query row, reading them from
        /// device memory (all rows of a workgroup read the same key at once).
        case rowPerInvocation
        /// attention_tiled.comp: keys and values staged through shared memory 16 at a time (head
        /// dimensions up to 160 and devices with 14 KiB of shared memory; else rowPerInvocation).
        /// 2× slower than rowPerInvocation on lavapipe; to be measured on GPUs.
        case sharedMemoryTiles
    }

    public struct Options: Sendable {
        /// The device's index in `VulkanBackend.devices()`; nil picks the preferred one (discrete,
        /// integrated, virtual GPU, then a CPU implementation when `allowCPU`).
        public var deviceIndex: Int?
        /// Whether a CPU implementation (lavapipe) may be chosen when no index is given.
        public var allowCPU: Bool
        /// Enables VK_LAYER_KHRONOS_validation when installed, collecting its messages.
        public var validation: Bool
        /// Idle device memory above this is freed rather than kept for reuse.
        public var idleLimitBytes: Int
        public var weightStorage: WeightStorage
        public var attention: AttentionKernel
        /// Whether matmul, linear and conv2d may run on cooperative matrices (tensor cores) when the
        /// device offers them; the environment variable `CooperativeMatrix.environmentKey` overrides it.
        public var cooperativeMatrix: CooperativeMatrix.Mode
        /// Where compiled pipelines are kept between runs (default: a file per device in
        /// `PipelineCacheFile.defaultDirectory`).
        public var pipelineCache: PipelineCacheStorage

        public init(deviceIndex: Int? = nil, allowCPU: Bool = true, validation: Bool = false, idleLimitBytes: Int = 4 << 30,
                    weightStorage: WeightStorage = .float32, attention: AttentionKernel = .rowPerInvocation,
                    cooperativeMatrix: CooperativeMatrix.Mode = .automatic, pipelineCache: PipelineCacheStorage = .disk) {
            (self.deviceIndex, self.allowCPU, self.validation, self.idleLimitBytes) = (deviceIndex, allowCPU, validation, idleLimitBytes)
            (self.weightStorage, self.attention, self.cooperativeMatrix) = (weightStorage, attention, cooperativeMatrix)
            self.pipelineCache = pipelineCache
        }
    }

    public let computeDType: DType = .float32
    public let device: VulkanDeviceInfo
    public let weightStorage: WeightStorage
    public let attentionKernel: AttentionKernel
    /// The cooperative-matrix tile matmul, linear and conv2d run on (fp16 inputs, fp32
    /// accumulation), or nil when they use the portable fp32 shaders.
    public let cooperativeMatrix: CooperativeMatrix.Shape?
    let instance: VulkanInstance
    let vulkan: VulkanDevice
    let pool: DeviceBufferPool
    let stagingPool: DeviceBufferPool
    let library: PipelineLibrary
    let stream: CommandStream
    let lock = NSRecursiveLock()
    /// The capture in progress, if any (guarded by `lock`).
    var captureState: CaptureState?

    public init(options: Options = Options()) throws {
        instance = try VulkanInstance(validation: options.validation)
        let mode = try CooperativeMatrix.mode(requested: options.cooperativeMatrix, environment: ProcessInfo.processInfo.environment)
        vulkan = try VulkanDevice(instance: instance, index: options.deviceIndex, allowCPU: options.allowCPU, cooperativeMatrix: mode)
        cooperativeMatrix = vulkan.cooperativeMatrixShape
        device = vulkan.info
        weightStorage = options.weightStorage
        attentionKernel = options.attention
        pool = DeviceBufferPool(device: vulkan, staging: false, idleLimitBytes: options.idleLimitBytes)
        stagingPool = DeviceBufferPool(device: vulkan, staging: true, idleLimitBytes: 256 << 20)
        library = try PipelineLibrary(device: vulkan, cacheStorage: options.pipelineCache)
        stream = try CommandStream(device: vulkan, library: library, devicePool: pool, stagingPool: stagingPool)
    }

    deinit {
        lock.withLock { try? stream.flush() }
    }

    /// Every Vulkan device on this machine, in the order `deviceIndex` counts them.
    public static func devices() throws -> [VulkanDeviceInfo] {
        try VulkanDevice.list(VulkanInstance(validation: false))
    }

    /// True when a Vulkan GPU (not a CPU implementation such as lavapipe) is present; false when
    /// Vulkan is missing altogether.
    public static var gpuAvailable: Bool { ((try? devices()) ?? []).contains(where: \.isGPU) }

    /// Whether the Khronos validation layer is installed.
    public static var validationLayerInstalled: Bool { (try? VulkanInstance.validationLayerAvailable()) ?? false }

    /// True when this backend runs under the validation layer.
    public var validating: Bool { instance.validating }

    /// Validation-layer errors and warnings reported so far.
    public var validationMessages: [String] { instance.validationLog.all }

    /// Throws `VulkanError.validation` with every message reported since the last call.
    public func checkValidation() throws {
        let messages = instance.validationLog.drain()
        if !messages.isEmpty { throw VulkanError.validation(messages) }
    }

    public var description: String {
        "Vulkan (\(device.name), \(device.kind.rawValue), Vulkan \(device.apiVersion), subgroup \(device.subgroupSize), \(computeDType) compute"
            + (weightStorage == .float16 ? ", fp16 weights" : "") + ", cooperative matrix: \(cooperativeMatrix.map(\.description) ?? "none"))"
    }

    /// Submits recorded work and waits for it (the host reads results through `floats`, which does
    /// this itself; benchmarks call it to time whole frames).
    public func synchronize() throws { try lock.withLock { try stream.flush() } }

    /// Runs the recorded work and frees every idle device buffer (before a memory measurement).
    public func releaseIdleMemory() throws {
        try lock.withLock {
            try stream.flush()
            pool.drain()
            stagingPool.drain()
        }
    }

    /// Where the pipeline cache came from, its file and how often it was written.
    public var pipelineCacheStatus: PipelineCacheStatus { lock.withLock { library.cache.status } }

    /// Pool and pipeline counters, for tests and reports.
    public struct Statistics: Sendable {
        public var freshAllocations: Int, reuses: Int, liveBuffers: Int, pipelines: Int, submissions: Int
    }

    public var statistics: Statistics {
        lock.withLock {
            let s = pool.statistics
            return Statistics(freshAllocations: s.freshAllocations, reuses: s.reuses, liveBuffers: s.liveBuffers,
                              pipelines: library.count, submissions: stream.submissions)
        }
    }

    // MARK: buffers

    func output(_ shape: [Int], _ op: String) throws -> Tensor {
        guard let count = Tensor.checkedCount(of: shape), count <= Int(UInt32.max) else {
            throw TensorError.invalidArgument(op: op, message: "shape \(shape) is too large for 32-bit shader indices")
        }
        let allocate = { [pool, captureState] in
            try captureState.map { try $0.arena.buffer(byteCount: count * 4) } ?? pool.buffer(byteCount: count * 4)
        }
        do {
            return Tensor(shape: shape, dtype: .float32, storage: try allocate())
        } catch let error as VulkanError where error.isOutOfMemory && captureState == nil {
            // Device memory full: run what is recorded, free every idle buffer and try once more.
            try stream.flush()
            pool.drain()
            return Tensor(shape: shape, dtype: .float32, storage: try allocate())
        }
    }

    /// The device buffer of a tensor made by this backend, and its first element's index.
    func bound(_ t: Tensor, _ op: String) throws -> (buffer: VkBuffer, offset: UInt32) {
        guard let storage = t.storage as? VulkanBuffer, storage.pool === pool else {
            throw TensorError.invalidArgument(op: op, message: "tensor \(t.shape) was not made by this Vulkan backend")
        }
        guard t.dtype == .float32 else { throw TensorError.dtypeMismatch(op: op, expected: .float32, actual: t.dtype) }
        guard t.byteOffset % 4 == 0, t.byteOffset + t.byteCount <= storage.byteCount else {
            throw TensorError.invalidArgument(op: op, message: "tensor \(t.shape) at byte \(t.byteOffset) is misaligned or outside its buffer")
        }
        return (bound(storage), UInt32(t.byteOffset / 4))
    }

    /// A buffer about to be bound. A capture's replays read buffers made before it: they are kept
    /// alive as long as the replay.
    func bound(_ storage: VulkanBuffer) -> VkBuffer {
        if let captureState, storage.arena !== captureState.arena { captureState.retain(storage) }
        return storage.raw.buffer
    }

    static func requireFloat32(_ dtype: DType, _ op: String) throws {
        guard dtype == .float32 else {
            throw TensorError.invalidArgument(op: op, message: "the Vulkan backend computes in fp32 only; \(dtype) is not supported")
        }
    }

    // MARK: data movement

    public func tensor(_ values: [Float], shape: [Int]) throws -> Tensor {
        guard Tensor.checkedCount(of: shape) == values.count else {
            throw TensorError.invalidArgument(op: "tensor", message: "\(values.count) values do not fill shape \(shape)")
        }
        return try lock.withLock {
            let t = try output(shape, "tensor")
            let target = try bound(t, "tensor")
            try values.withUnsafeBytes { try stream.upload($0, to: target.buffer, at: 0) }
            return t
        }
    }

    public func tensor(raw: UnsafeRawBufferPointer, format: StorageFormat, shape: [Int], dtype: DType) throws -> Tensor {
        try VulkanBackend.requireFloat32(dtype, "tensor")
        guard let count = Tensor.checkedCount(of: shape),
              case (let bytes, false) = count.multipliedReportingOverflow(by: format.byteSize), bytes == raw.count else {
            throw TensorError.invalidArgument(op: "tensor", message: "\(raw.count) bytes of \(format) do not fill shape \(shape)")
        }
        switch format {
        case .float32:
            return try lock.withLock {
                let t = try output(shape, "tensor")
                try stream.upload(raw, to: try bound(t, "tensor").buffer, at: 0)
                return t
            }
        case .float16:
            let values = (0..<count).map { Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            return try tensor(values, shape: shape)
        case .bfloat16:
            let values = (0..<count).map { BFloat16.float(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
            return try tensor(values, shape: shape)
        }
    }

    public func floats(_ tensor: Tensor) throws -> [Float] {
        try lock.withLock {
            let source = try bound(tensor, "floats")
            var values = [Float](repeating: 0, count: tensor.count)
            try values.withUnsafeMutableBytes {
                try stream.download(from: source.buffer, at: tensor.byteOffset, bytes: tensor.byteCount, into: $0)
            }
            return values
        }
    }

    public func convert(_ x: Tensor, to dtype: DType) throws -> Tensor {
        try VulkanBackend.requireFloat32(dtype, "convert")
        return try lock.withLock {
            let source = try bound(x, "convert")
            let y = try output(x.shape, "convert")
            try stream.copy(from: source.buffer, at: x.byteOffset, to: try bound(y, "convert").buffer, at: 0, bytes: x.byteCount)
            return y
        }
    }
}
