import CVulkan
import Synchronization
import Tensors

/// Device memory of a tensor; returns its buffer to the pool when the last tensor using it goes away.
/// The GPU may still have recorded work on it then: the pool only hands it to later work on the same
/// queue (ordered after that work by the stream's barriers) and destroys buffers only once the
/// queue is idle (`collectRetired`, `drain`).
public final class VulkanBuffer: TensorStorage, @unchecked Sendable {
    let raw: RawBuffer
    public let byteCount: Int
    let pool: DeviceBufferPool
    /// The capture that allocated it, whose replays write it: it returns there, never to the pool.
    let arena: BufferArena?

    init(raw: RawBuffer, byteCount: Int, pool: DeviceBufferPool, arena: BufferArena?) {
        (self.raw, self.byteCount, self.pool, self.arena) = (raw, byteCount, pool, arena)
    }

    deinit {
        if let arena { arena.recycle(raw) } else { pool.recycle(raw) }
    }
}

/// The buffers of one capture. A buffer freed during the capture is reused by later ops of the same
/// capture (ordered by its barriers), and by nothing else while the replay or any of its tensors
/// lives: replays write into all of them. Returns them to the pool when the last one goes.
final class BufferArena: @unchecked Sendable {
    let pool: DeviceBufferPool
    private let idle = Mutex<[Int: [RawBuffer]]>([:])

    init(pool: DeviceBufferPool) { self.pool = pool }

    func buffer(byteCount: Int) throws -> VulkanBuffer {
        let capacity = DeviceBufferPool.capacity(for: byteCount)
        let reused = idle.withLock { $0[capacity]?.popLast() }
        return VulkanBuffer(raw: try reused ?? pool.take(byteCount: byteCount), byteCount: byteCount, pool: pool, arena: self)
    }

    func recycle(_ raw: RawBuffer) { idle.withLock { $0[raw.capacity, default: []].append(raw) } }

    deinit { idle.withLock { $0.values.flatMap { $0 } }.forEach(pool.recycle) }
}

/// Recycles device (or staging) buffers by size class, so a steady stream of same-shaped frames
/// stops allocating after its first frame. Thread-safe.
final class DeviceBufferPool: @unchecked Sendable {
    struct Statistics: Sendable, Equatable {
        var freshAllocations = 0, reuses = 0, idleBytes = 0, liveBuffers = 0
    }

    private struct State {
        var idle: [Int: [RawBuffer]] = [:]
        /// Over the idle limit: destroyed once the queue has finished all work recorded so far.
        var retired: [RawBuffer] = []
        var stats = Statistics()
    }

    let device: VulkanDevice
    let staging: Bool
    let idleLimitBytes: Int
    private let state = Mutex(State())

    init(device: VulkanDevice, staging: Bool, idleLimitBytes: Int) {
        (self.device, self.staging, self.idleLimitBytes) = (device, staging, idleLimitBytes)
    }

    var statistics: Statistics { state.withLock { $0.stats } }

    /// Size classes: 256-byte steps below 64 KiB, 4 KiB steps above (≤ 6 % slack at SD sizes).
    /// Buffers are never empty (Vulkan forbids size 0).
    static func capacity(for bytes: Int) -> Int {
        let step = bytes < 65536 ? 256 : 4096
        return max(step, (bytes + step - 1) / step * step)
    }

    func take(byteCount: Int) throws -> RawBuffer {
        guard byteCount >= 0 else { throw TensorError.invalidArgument(op: "allocate", message: "negative size \(byteCount)") }
        let capacity = DeviceBufferPool.capacity(for: byteCount)
        let reused: RawBuffer? = state.withLock { state in
            guard let raw = state.idle[capacity]?.popLast() else { return nil }
            state.stats.reuses += 1
            state.stats.idleBytes -= capacity
            state.stats.liveBuffers += 1
            return raw
        }
        if let reused { return reused }
        let raw = try device.makeBuffer(capacity: capacity, staging: staging)
        state.withLock { $0.stats.freshAllocations += 1; $0.stats.liveBuffers += 1 }
        return raw
    }

    func buffer(byteCount: Int) throws -> VulkanBuffer {
        VulkanBuffer(raw: try take(byteCount: byteCount), byteCount: byteCount, pool: self, arena: nil)
    }

    func recycle(_ raw: RawBuffer) {
        state.withLock { state in
            state.stats.liveBuffers -= 1
            if state.stats.idleBytes + raw.capacity <= idleLimitBytes {
                state.idle[raw.capacity, default: []].append(raw)
                state.stats.idleBytes += raw.capacity
            } else {
                state.retired.append(raw)
            }
        }
    }

    /// Destroys retired buffers; call only when the queue has finished all recorded work.
    func collectRetired() {
        let retired = state.withLock { state -> [RawBuffer] in
            let r = state.retired
            state.retired = []
            return r
        }
        retired.forEach(device.destroy)
    }

    /// Destroys every idle and retired buffer; call only when the queue is idle.
    func drain() {
        let all = state.withLock { state -> [RawBuffer] in
            let buffers = state.idle.values.flatMap { $0 } + state.retired
            state.idle = [:]
            state.retired = []
            state.stats.idleBytes = 0
            return buffers
        }
        all.forEach(device.destroy)
    }

    deinit {
        _ = device.functions.deviceWaitIdle(device.handle)
        drain()
    }
}
