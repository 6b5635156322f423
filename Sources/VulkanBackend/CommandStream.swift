import CVulkan
import Foundation

/// Records the backend's work into one command buffer, in order, with a full compute/transfer
/// memory barrier between commands (every op reads what the previous ones wrote), and submits it
/// when the host needs a result (`flush`). Staging buffers of uploads stay reserved until the
/// batch that reads them has finished. Not thread-safe: the backend's lock guards it.
final class CommandStream {
    let device: VulkanDevice
    let library: PipelineLibrary
    let stagingPool: DeviceBufferPool
    let devicePool: DeviceBufferPool
    let commandPool: VkCommandPool
    private let fence: VkFence
    /// The batch ops go to between host reads.
    private let main: Recording
    /// A capture in progress (`beginCapture`): ops go there instead, to be replayed later.
    private(set) var capture: Recording?
    private var active: Recording { capture ?? main }
    /// Batches submitted so far (tests read it to see that work is batched).
    private(set) var submissions = 0

    static let setsPerPool = 256
    /// Uploads flush once this much staging memory waits on one batch (bounds host memory at load).
    static let stagingFlushBytes = 256 << 20

    init(device: VulkanDevice, library: PipelineLibrary, devicePool: DeviceBufferPool, stagingPool: DeviceBufferPool) throws {
        (self.device, self.library, self.devicePool, self.stagingPool) = (device, library, devicePool, stagingPool)
        let f = device.functions, d = device.handle
        var poolInfo = VkCommandPoolCreateInfo()
        poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        poolInfo.flags = VkCommandPoolCreateFlags(VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT.rawValue)
        poolInfo.queueFamilyIndex = device.queueFamily
        var pool: VkCommandPool?
        try check(f.createCommandPool(d, &poolInfo, nil, &pool), "vkCreateCommandPool")
        guard let pool else { throw VulkanError.call("vkCreateCommandPool", result: 0) }
        var allocate = VkCommandBufferAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocate.commandPool = pool
        allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocate.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        var fenceInfo = VkFenceCreateInfo()
        fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var madeFence: VkFence?
        do {
            try check(f.allocateCommandBuffers(d, &allocate, &buffer), "vkAllocateCommandBuffers")
            try check(f.createFence(d, &fenceInfo, nil, &madeFence), "vkCreateFence")
        } catch {
            f.destroyCommandPool(d, pool, nil)
            throw error
        }
        guard let buffer, let madeFence else { throw VulkanError.call("vkAllocateCommandBuffers", result: 0) }
        (commandPool, fence) = (pool, madeFence)
        main = Recording(commandBuffer: buffer, reusable: false)
    }

    deinit {
        let f = device.functions, d = device.handle
        for r in [main] + (capture.map { [$0] } ?? []) where r.recording { _ = f.endCommandBuffer(r.commandBuffer) }
        _ = f.deviceWaitIdle(d)
        if let capture { release(capture) }
        main.reservedStaging.forEach(stagingPool.recycle)
        main.descriptorPools.forEach { f.destroyDescriptorPool(d, $0, nil) }
        f.destroyFence(d, fence, nil)
        f.destroyCommandPool(d, commandPool, nil)
    }

    private func begin() throws {
        let r = active
        guard !r.recording else { return }
        var info = VkCommandBufferBeginInfo()
        info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        info.flags = r.reusable ? 0 : VkCommandBufferUsageFlags(VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue)
        try check(device.functions.beginCommandBuffer(r.commandBuffer, &info), "vkBeginCommandBuffer")
        r.recording = true
        // A replayed buffer runs after other submissions: order its first command after them too.
        if r.reusable { barrier(r) }
    }

    /// Orders the next command after everything recorded before it (read-after-write and
    /// write-after-read on any buffer, between compute shaders and transfers).
    private func barrierBeforeNextCommand() {
        if active.commands > 0 { barrier(active) }
    }

    private func barrier(_ r: Recording) {
        let stages = VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue)
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
            | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        device.functions.cmdPipelineBarrier(r.commandBuffer, stages, stages, 0, 1, &barrier, 0, nil, 0, nil)
    }

    private func descriptorSet(_ layout: VkDescriptorSetLayout, bindings: Int) throws -> VkDescriptorSet {
        let f = device.functions, d = device.handle, r = active
        if r.currentPool < r.descriptorPools.count, r.setsInCurrentPool == CommandStream.setsPerPool {
            r.currentPool += 1
            r.setsInCurrentPool = 0
        }
        if r.currentPool == r.descriptorPools.count {
            var size = VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: UInt32(CommandStream.setsPerPool * Shader.maxBindings))
            var info = VkDescriptorPoolCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
            info.maxSets = UInt32(CommandStream.setsPerPool)
            info.poolSizeCount = 1
            var pool: VkDescriptorPool?
            try withUnsafePointer(to: &size) { sizePointer in
                info.pPoolSizes = sizePointer
                try check(f.createDescriptorPool(d, &info, nil, &pool), "vkCreateDescriptorPool")
            }
            guard let pool else { throw VulkanError.call("vkCreateDescriptorPool", result: 0) }
            r.descriptorPools.append(pool)
            r.setsInCurrentPool = 0
        }
        var layoutRef: VkDescriptorSetLayout? = layout
        var set: VkDescriptorSet?
        try withUnsafePointer(to: &layoutRef) { layoutPointer in
            var info = VkDescriptorSetAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
            info.descriptorPool = r.descriptorPools[r.currentPool]
            info.descriptorSetCount = 1
            info.pSetLayouts = layoutPointer
            try check(f.allocateDescriptorSets(d, &info, &set), "vkAllocateDescriptorSets")
        }
        guard let set else { throw VulkanError.call("vkAllocateDescriptorSets", result: 0) }
        r.setsInCurrentPool += 1
        return set
    }

    /// Records one compute dispatch. `buffers` bind in order (whole buffers: offsets travel in the
    /// push constants); `push` is at most 32 words. `ordered: false` omits the barrier before it,
    /// which only a test does (to show that the validation layer catches the hazard).
    func dispatch(_ shader: Shader, _ buffers: [VkBuffer], push: [UInt32], groups: (Int, Int, Int), ordered: Bool = true) throws {
        precondition(buffers.count == shader.bindings && push.count * 4 <= Shader.pushConstantBytes, "\(shader) bindings or push constants")
        guard groups.0 > 0, groups.1 > 0, groups.2 > 0 else { return }
        let limits = device.info.maxWorkgroupCount
        guard groups.0 <= limits[0], groups.1 <= limits[1], groups.2 <= limits[2] else {
            throw VulkanError.unsupported("a \(groups) workgroup grid for \(shader.rawValue) (limit \(limits))")
        }
        let p = try library.pipeline(shader)
        try begin()
        let set = try descriptorSet(p.setLayout, bindings: p.bindings)
        let infos = buffers.map { VkDescriptorBufferInfo(buffer: $0, offset: 0, range: sd_vk_whole_size) }
        let f = device.functions
        infos.withUnsafeBufferPointer { list in
            let writes = (0..<list.count).map { i -> VkWriteDescriptorSet in
                var w = VkWriteDescriptorSet()
                w.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                w.dstSet = set
                w.dstBinding = UInt32(i)
                w.descriptorCount = 1
                w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                w.pBufferInfo = list.baseAddress! + i
                return w
            }
            f.updateDescriptorSets(device.handle, UInt32(writes.count), writes, 0, nil)
        }
        if ordered { barrierBeforeNextCommand() }
        let commandBuffer = active.commandBuffer
        f.cmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline)
        var setRef: VkDescriptorSet? = set
        f.cmdBindDescriptorSets(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &setRef, 0, nil)
        if !push.isEmpty {
            push.withUnsafeBytes { f.cmdPushConstants(commandBuffer, p.layout, VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue), 0, UInt32($0.count), $0.baseAddress) }
        }
        f.cmdDispatch(commandBuffer, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
        active.commands += 1
    }

    /// Records a buffer-to-buffer copy.
    func copy(from source: VkBuffer, at sourceOffset: Int, to destination: VkBuffer, at destinationOffset: Int, bytes: Int) throws {
        guard bytes > 0 else { return }
        try begin()
        barrierBeforeNextCommand()
        var region = VkBufferCopy(srcOffset: VkDeviceSize(sourceOffset), dstOffset: VkDeviceSize(destinationOffset), size: VkDeviceSize(bytes))
        device.functions.cmdCopyBuffer(active.commandBuffer, source, destination, 1, &region)
        active.commands += 1
    }

    /// Copies host bytes into a device buffer through a staging buffer reserved until the batch ends.
    func upload(_ bytes: UnsafeRawBufferPointer, to destination: VkBuffer, at offset: Int) throws {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        if capture == nil, main.reservedStagingBytes + bytes.count > CommandStream.stagingFlushBytes, main.reservedStagingBytes > 0 {
            try flush()
        }
        let staging = try stagingPool.take(byteCount: bytes.count)
        active.reservedStaging.append(staging)   // a capture keeps its uploads' data for every replay
        active.reservedStagingBytes += staging.capacity
        guard let mapped = staging.mapped else { throw VulkanError.unsupported("a mapped staging buffer") }
        mapped.copyMemory(from: base, byteCount: bytes.count)
        try copy(from: staging.buffer, at: 0, to: destination, at: offset, bytes: bytes.count)
    }

    /// Copies device bytes to the host: records the copy into staging, runs the batch, reads.
    func download(from source: VkBuffer, at offset: Int, bytes: Int, into target: UnsafeMutableRawBufferPointer) throws {
        guard bytes > 0, let base = target.baseAddress else { return }
        guard capture == nil else { throw VulkanError.captureMisuse("reading a result back to the host inside a capture") }
        let staging = try stagingPool.take(byteCount: bytes)
        defer { stagingPool.recycle(staging) }
        try copy(from: source, at: offset, to: staging.buffer, at: 0, bytes: bytes)
        // Make the transfer's writes visible to the host's reads after the fence.
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_HOST_READ_BIT.rawValue)
        device.functions.cmdPipelineBarrier(main.commandBuffer, VkPipelineStageFlags(VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue),
                                            VkPipelineStageFlags(VK_PIPELINE_STAGE_HOST_BIT.rawValue), 0, 1, &barrier, 0, nil, 0, nil)
        try flush()
        guard let mapped = staging.mapped else { throw VulkanError.unsupported("a mapped staging buffer") }
        base.copyMemory(from: mapped, byteCount: bytes)
    }

    /// Submits what was recorded and waits for it; then recycles the batch's descriptor sets and
    /// staging buffers and destroys retired device buffers. Inside a capture, an error: the host
    /// cannot wait for work that has not run.
    func flush() throws {
        guard capture == nil else { throw VulkanError.captureMisuse("waiting for results inside a capture") }
        guard main.recording else { return }
        let f = device.functions, d = device.handle
        main.recording = false
        try check(f.endCommandBuffer(main.commandBuffer), "vkEndCommandBuffer")
        defer {
            main.commands = 0
            _ = f.resetCommandBuffer(main.commandBuffer, 0)
            main.descriptorPools.forEach { _ = f.resetDescriptorPool(d, $0, 0) }
            (main.currentPool, main.setsInCurrentPool) = (0, 0)
            releaseBatchResources()
        }
        try submitAndWait(main.commandBuffer)
    }

    private func submitAndWait(_ commandBuffer: VkCommandBuffer) throws {
        let f = device.functions, d = device.handle
        var bufferRef: VkCommandBuffer? = commandBuffer
        let submitted = withUnsafePointer(to: &bufferRef) { pointer -> VkResult in
            var submit = VkSubmitInfo()
            submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            submit.commandBufferCount = 1
            submit.pCommandBuffers = pointer
            return f.queueSubmit(device.queue, 1, &submit, fence)
        }
        guard submitted == VK_SUCCESS else {
            _ = f.deviceWaitIdle(d)
            throw VulkanError.call("vkQueueSubmit", result: submitted.rawValue)
        }
        submissions += 1
        library.cache.saveIfChanged()   // new pipelines reach the disk while the device works
        var fenceRef: VkFence? = fence
        let waited = f.waitForFences(d, 1, &fenceRef, VkBool32(VK_TRUE), UInt64.max)
        _ = f.resetFences(d, 1, &fenceRef)
        try check(waited, "vkWaitForFences")
    }

    // MARK: capture and replay

    /// Sends later ops to a new reusable command buffer instead of the batch (which is run first).
    func beginCapture() throws {
        guard capture == nil else { throw VulkanError.captureMisuse("a capture inside a capture") }
        try flush()
        var allocate = VkCommandBufferAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocate.commandPool = commandPool
        allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocate.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        try check(device.functions.allocateCommandBuffers(device.handle, &allocate, &buffer), "vkAllocateCommandBuffers")
        guard let buffer else { throw VulkanError.call("vkAllocateCommandBuffers", result: 0) }
        capture = Recording(commandBuffer: buffer, reusable: true)
    }

    /// Ends the capture; the recording is the caller's until `release`. Nil when nothing was recorded.
    func endCapture() throws -> Recording {
        guard let r = capture else { throw VulkanError.captureMisuse("ending a capture that was not begun") }
        capture = nil
        if r.recording {
            r.recording = false
            let result = device.functions.endCommandBuffer(r.commandBuffer)
            guard result == VK_SUCCESS else { release(r); throw VulkanError.call("vkEndCommandBuffer", result: result.rawValue) }
        }
        return r
    }

    /// Runs a captured recording after everything recorded before it, and waits.
    func replay(_ r: Recording) throws {
        guard capture == nil else { throw VulkanError.captureMisuse("replaying inside a capture") }
        try flush()
        guard r.commands > 0 else { return }
        try submitAndWait(r.commandBuffer)
    }

    /// Frees a recording (the queue has finished with it: replays wait).
    func release(_ r: Recording) {
        let f = device.functions, d = device.handle
        if r.recording { _ = f.endCommandBuffer(r.commandBuffer) }
        var bufferRef: VkCommandBuffer? = r.commandBuffer
        f.freeCommandBuffers(d, commandPool, 1, &bufferRef)
        r.descriptorPools.forEach { f.destroyDescriptorPool(d, $0, nil) }
        r.reservedStaging.forEach(stagingPool.recycle)
        r.reservedStaging = []
    }

    private func releaseBatchResources() {
        main.reservedStaging.forEach(stagingPool.recycle)
        main.reservedStaging = []
        main.reservedStagingBytes = 0
        devicePool.collectRetired()
        stagingPool.collectRetired()
    }
}

/// A command buffer being recorded, with the descriptor sets and staging data its commands use.
final class Recording {
    let commandBuffer: VkCommandBuffer
    /// Submitted many times (a capture) rather than once per batch.
    let reusable: Bool
    var descriptorPools: [VkDescriptorPool] = []
    var currentPool = 0, setsInCurrentPool = 0
    var recording = false
    var commands = 0
    var reservedStaging: [RawBuffer] = []
    var reservedStagingBytes = 0

    init(commandBuffer: VkCommandBuffer, reusable: Bool) { (self.commandBuffer, self.reusable) = (commandBuffer, reusable) }
}
