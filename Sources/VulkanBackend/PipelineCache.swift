import CVulkan
import Foundation

/// Where a backend's pipeline cache came from and what became of it.
public struct PipelineCacheStatus: Sendable, Equatable {
    public enum Start: Sendable, Equatable {
        /// Seeded from the file with this many bytes of driver data.
        case loaded(bytes: Int)
        /// No file yet: started empty.
        case missing
        /// A file was there but not usable for this device (why); started empty, and it will be overwritten.
        case rejected(String)
        /// `PipelineCacheStorage.memoryOnly`.
        case memoryOnly
    }

    /// The cache file, or nil when memory only.
    public let file: URL?
    public let start: Start
    /// Files written so far.
    public var saves = 0
    /// Why the last write failed, if it did (the backend goes on without the file).
    public var saveError: String?
}

/// The device's VkPipelineCache, seeded from and written back to its file (`PipelineCacheFile`).
///
/// When it is written: at the first submission after new pipelines were created (pipelines are
/// made while commands are recorded, so the submission that runs them is where a set is complete;
/// the write overlaps the device's work), and when the backend is released. A stream makes all its
/// pipelines during its first frame, so a process writes the file a few times at start and then
/// never; a write is skipped when the driver's data has not changed (a warm start). Saving only at
/// release would lose the cache of every process that ends with exit() — `serve` on Ctrl-C — or
/// crashes. Not thread-safe: the backend's lock guards it.
final class PipelineCache {
    let device: VulkanDevice
    let handle: VkPipelineCache
    let file: PipelineCacheFile?
    private(set) var status: PipelineCacheStatus
    /// New pipelines since the last save.
    private var changed = false
    /// Hash of the driver data in the file (loaded or last written), to skip identical writes.
    private var fileHash: UInt64?
    private var warned = false

    init(device: VulkanDevice, storage: PipelineCacheStorage) throws {
        self.device = device
        let file = PipelineCacheFile.location(storage, device: device.info)
        self.file = file
        let loaded = file?.load(for: device.info)
        var start: PipelineCacheStatus.Start
        var seed = Data()
        switch loaded {
        case nil: start = .memoryOnly
        case .missing?: start = .missing
        case let .rejected(reason)?: start = .rejected(reason)
        case let .blob(data)?: (start, seed) = (.loaded(bytes: data.count), data)
        }
        var made = try Self.create(device, seed: seed)
        if made == nil, !seed.isEmpty {
            // The header matched but the driver refused the data: start empty.
            start = .rejected("the driver refused the cached data")
            seed = Data()
            made = try Self.create(device, seed: seed)
        }
        guard let made else { throw VulkanError.call("vkCreatePipelineCache", result: 0) }
        handle = made
        status = PipelineCacheStatus(file: file?.url, start: start)
        if !seed.isEmpty { fileHash = PipelineCacheFile.fnv1a([UInt8](seed)) }
    }

    /// nil when the driver rejects a non-empty seed (an empty one must succeed).
    private static func create(_ device: VulkanDevice, seed: Data) throws -> VkPipelineCache? {
        var made: VkPipelineCache?
        let result = seed.withUnsafeBytes { bytes -> VkResult in
            var create = VkPipelineCacheCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
            create.initialDataSize = bytes.count
            create.pInitialData = bytes.count > 0 ? bytes.baseAddress : nil
            return device.functions.createPipelineCache(device.handle, &create, nil, &made)
        }
        if result != VK_SUCCESS && !seed.isEmpty { return nil }
        try check(result, "vkCreatePipelineCache")
        return made
    }

    deinit {
        saveIfChanged()
        device.functions.destroyPipelineCache(device.handle, handle, nil)
    }

    /// A pipeline was created through the cache.
    func noteNewPipeline() { changed = true }

    /// The driver's current cache data.
    func data() throws -> [UInt8] {
        let f = device.functions, d = device.handle
        for _ in 0..<4 {
            var size = 0
            try check(f.getPipelineCacheData(d, handle, &size, nil), "vkGetPipelineCacheData")
            var bytes = [UInt8](repeating: 0, count: size)
            let result = bytes.withUnsafeMutableBytes { f.getPipelineCacheData(d, handle, &size, $0.baseAddress) }
            if result == VK_INCOMPLETE { continue }   // grew in between (another thread's pipeline)
            try check(result, "vkGetPipelineCacheData")
            return Array(bytes.prefix(size))
        }
        throw VulkanError.pipelineCache("vkGetPipelineCacheData kept returning VK_INCOMPLETE")
    }

    /// Writes the file when pipelines were created since the last write and the driver's data
    /// differs from the file's. Never throws: a failure is recorded in `status` and printed once to
    /// standard error, and the backend goes on with its in-memory cache.
    func saveIfChanged() {
        guard changed, let file else { return }
        changed = false
        do {
            let blob = try data()
            let hash = PipelineCacheFile.fnv1a(blob)
            guard hash != fileHash else { return }
            try file.save(blob)
            (fileHash, status.saves, status.saveError) = (hash, status.saves + 1, nil)
        } catch {
            let message = (error as? VulkanError)?.description ?? "\(error)"
            status.saveError = message
            if !warned {
                warned = true
                FileHandle.standardError.write(Data("warning: \(message) (pipelines will be compiled again next run)\n".utf8))
            }
        }
    }
}
