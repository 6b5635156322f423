import Foundation
import Synchronization

/// Host memory handed out by a `BufferPool`; returns itself to the pool when the last tensor
/// that uses it goes away.
public final class HostBuffer: TensorStorage, @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    let capacity: Int
    let pool: BufferPool?

    init(pointer: UnsafeMutableRawPointer, byteCount: Int, capacity: Int, pool: BufferPool?) {
        self.pointer = pointer
        self.byteCount = byteCount
        self.capacity = capacity
        self.pool = pool
    }

    deinit {
        if let pool { pool.recycle(pointer, capacity: capacity) } else { free(pointer) }
    }
}

/// Recycles host buffers by size class, so a steady stream of same-shaped frames stops calling
/// the allocator after its first frame. Thread-safe.
public final class BufferPool: Sendable {
    public struct Statistics: Sendable, Equatable {
        /// Buffers obtained from the system allocator.
        public var freshAllocations = 0
        /// Buffers served from the pool.
        public var reuses = 0
        /// Bytes currently parked in the pool, free for reuse.
        public var idleBytes = 0
    }

    private struct State {
        var idle: [Int: [UInt]] = [:]   // addresses, so the state stays Sendable
        var stats = Statistics()
    }

    private let state = Mutex(State())
    /// Idle memory above this is released to the system instead of kept.
    public let idleLimitBytes: Int

    public init(idleLimitBytes: Int = 4 << 30) {
        self.idleLimitBytes = idleLimitBytes
    }

    public var statistics: Statistics { state.withLock { $0.stats } }

    /// Size classes: 64-byte steps below 64 KiB, 4 KiB steps above (≤ 6 % slack at SD sizes).
    static func capacity(for bytes: Int) -> Int {
        let step = bytes < 65536 ? 64 : 4096
        return max(step, (bytes + step - 1) / step * step)
    }

    public func buffer(byteCount: Int) throws -> HostBuffer {
        let capacity = BufferPool.capacity(for: byteCount)
        let reusedAddress: UInt? = state.withLock { state in
            guard let pointer = state.idle[capacity]?.popLast() else { return nil }
            state.stats.reuses += 1
            state.stats.idleBytes -= capacity
            return pointer
        }
        if let reusedAddress, let reused = UnsafeMutableRawPointer(bitPattern: reusedAddress) {
            return HostBuffer(pointer: reused, byteCount: byteCount, capacity: capacity, pool: self)
        }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, capacity) == 0, let pointer = raw else {
            throw TensorError.outOfMemory(bytes: byteCount)
        }
        state.withLock { $0.stats.freshAllocations += 1 }
        return HostBuffer(pointer: pointer, byteCount: byteCount, capacity: capacity, pool: self)
    }

    public func tensor(shape: [Int], dtype: DType) throws -> Tensor {
        guard let count = Tensor.checkedCount(of: shape) else {
            throw TensorError.invalidArgument(op: "allocate", message: "shape \(shape) has a negative or overflowing size")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw TensorError.outOfMemory(bytes: Int.max) }
        return Tensor(shape: shape, dtype: dtype, storage: try buffer(byteCount: bytes))
    }

    func recycle(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
        let address = UInt(bitPattern: pointer)
        let keep = state.withLock { state -> Bool in
            guard state.stats.idleBytes + capacity <= idleLimitBytes else { return false }
            state.idle[capacity, default: []].append(address)
            state.stats.idleBytes += capacity
            return true
        }
        if !keep { free(pointer) }
    }

    /// Releases every idle buffer to the system.
    public func drain() {
        let all = state.withLock { state -> [UInt] in
            let addresses = state.idle.values.flatMap { $0 }
            state.idle = [:]
            state.stats.idleBytes = 0
            return addresses
        }
        all.forEach { free(UnsafeMutableRawPointer(bitPattern: $0)) }
    }

    deinit {
        drain()
    }
}
