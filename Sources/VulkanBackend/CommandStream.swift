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
    private let commandPool: VkCommandPool
    private let commandBuffer: VkCommandBuffer
    private let fence: VkFence
    private var descriptorPools: [VkDescriptorPool] = []
    private var currentPool = 0, setsInCurrentPool = 0
    private var recording = false
    private var commands = 0
    private var reservedStaging: [RawBuffer] = []
    private var reservedStagingBytes = 0
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
        (commandPool, commandBuffer, fence) = (pool, buffer, madeFence)
    }

    deinit {
        let f = device.functions, d = device.handle
        if recording { _ = f.endCommandBuffer(commandBuffer) }
        _ = f.deviceWaitIdle(d)
        reservedStaging.forEach(stagingPool.recycle)
        descriptorPools.forEach { f.destroyDescriptorPool(d, $0, nil) }
        f.destroyFence(d, fence, nil)
        f.destroyCommandPool(d, commandPool, nil)
    }

    private func begin() throws {
        guard !recording else { return }
        var info = VkCommandBufferBeginInfo()
        info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        info.flags = VkCommandBufferUsageFlags(VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue)
        try check(device.functions.beginCommandBuffer(commandBuffer, &info), "vkBeginCommandBuffer")
        recording = true
    }

    /// Orders the next command after everything recorded before it (read-after-write and
    /// write-after-read on any buffer, between compute shaders and transfers).
    private func barrierBeforeNextCommand() {
        guard commands > 0 else { return }
        let stages = VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue)
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
            | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        device.functions.cmdPipelineBarrier(commandBuffer, stages, stages, 0, 1, &barrier, 0, nil, 0, nil)
    }

    private func descriptorSet(_ layout: VkDescriptorSetLayout, bindings: Int) throws -> VkDescriptorSet {
        let f = device.functions, d = device.handle
        if currentPool < descriptorPools.count, setsInCurrentPool == CommandStream.setsPerPool {
            currentPool += 1
            setsInCurrentPool = 0
        }
        if currentPool == descriptorPools.count {
            var size = VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: UInt32(CommandStream.setsPerPool * 5))
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
            descriptorPools.append(pool)
            setsInCurrentPool = 0
        }
        var layoutRef: VkDescriptorSetLayout? = layout
        var set: VkDescriptorSet?
        try withUnsafePointer(to: &layoutRef) { layoutPointer in
            var info = VkDescriptorSetAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
            info.descriptorPool = descriptorPools[currentPool]
            info.descriptorSetCount = 1
            info.pSetLayouts = layoutPointer
            try check(f.allocateDescriptorSets(d, &info, &set), "vkAllocateDescriptorSets")
        }
        guard let set else { throw VulkanError.call("vkAllocateDescriptorSets", result: 0) }
        setsInCurrentPool += 1
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
        f.cmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline)
        var setRef: VkDescriptorSet? = set
        f.cmdBindDescriptorSets(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &setRef, 0, nil)
        if !push.isEmpty {
            push.withUnsafeBytes { f.cmdPushConstants(commandBuffer, p.layout, VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue), 0, UInt32($0.count), $0.baseAddress) }
        }
        f.cmdDispatch(commandBuffer, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
        commands += 1
    }

    /// Records a buffer-to-buffer copy.
    func copy(from source: VkBuffer, at sourceOffset: Int, to destination: VkBuffer, at destinationOffset: Int, bytes: Int) throws {
        guard bytes > 0 else { return }
        try begin()
        barrierBeforeNextCommand()
        var region = VkBufferCopy(srcOffset: VkDeviceSize(sourceOffset), dstOffset: VkDeviceSize(destinationOffset), size: VkDeviceSize(bytes))
        device.functions.cmdCopyBuffer(commandBuffer, source, destination, 1, &region)
        commands += 1
    }

    /// Copies host bytes into a device buffer through a staging buffer reserved until the batch ends.
    func upload(_ bytes: UnsafeRawBufferPointer, to destination: VkBuffer, at offset: Int) throws {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        if reservedStagingBytes + bytes.count > CommandStream.stagingFlushBytes, reservedStagingBytes > 0 { try flush() }
        let staging = try stagingPool.take(byteCount: bytes.count)
        reservedStaging.append(staging)
        reservedStagingBytes += staging.capacity
        guard let mapped = staging.mapped else { throw VulkanError.unsupported("a mapped staging buffer") }
        mapped.copyMemory(from: base, byteCount: bytes.count)
        try copy(from: staging.buffer, at: 0, to: destination, at: offset, bytes: bytes.count)
    }

    /// Copies device bytes to the host: records the copy into staging, runs the batch, reads.
    func download(from source: VkBuffer, at offset: Int, bytes: Int, into target: UnsafeMutableRawBufferPointer) throws {
        guard bytes > 0, let base = target.baseAddress else { return }
        let staging = try stagingPool.take(byteCount: bytes)
        defer { stagingPool.recycle(staging) }
        try copy(from: source, at: offset, to: staging.buffer, at: 0, bytes: bytes)
        // Make the transfer's writes visible to the host's reads after the fence.
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_HOST_READ_BIT.rawValue)
        device.functions.cmdPipelineBarrier(commandBuffer, VkPipelineStageFlags(VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue),
                                            VkPipelineStageFlags(VK_PIPELINE_STAGE_HOST_BIT.rawValue), 0, 1, &barrier, 0, nil, 0, nil)
        try flush()
        guard let mapped = staging.mapped else { throw VulkanError.unsupported("a mapped staging buffer") }
        base.copyMemory(from: mapped, byteCount: bytes)
    }

    /// Submits what was recorded and waits for it; then recycles the batch's descriptor sets and
    /// staging buffers and destroys retired device buffers.
    func flush() throws {
        guard recording else { return }
        let f = device.functions, d = device.handle
        recording = false
        try check(f.endCommandBuffer(commandBuffer), "vkEndCommandBuffer")
        var bufferRef: VkCommandBuffer? = commandBuffer
        let submitted = withUnsafePointer(to: &bufferRef) { pointer -> VkResult in
            var submit = VkSubmitInfo()
            submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            submit.commandBufferCount = 1
            submit.pCommandBuffers = pointer
            return f.queueSubmit(device.queue, 1, &submit, fence)
        }
        defer {
            commands = 0
            _ = f.resetCommandBuffer(commandBuffer, 0)
            descriptorPools.forEach { _ = f.resetDescriptorPool(d, $0, 0) }
            (currentPool, setsInCurrentPool) = (0, 0)
        }
        guard submitted == VK_SUCCESS else {
            _ = f.deviceWaitIdle(d)
            releaseBatchResources()
            throw VulkanError.call("vkQueueSubmit", result: submitted.rawValue)
        }
        submissions += 1
        var fenceRef: VkFence? = fence
        let waited = f.waitForFences(d, 1, &fenceRef, VkBool32(VK_TRUE), UInt64.max)
        _ = f.resetFences(d, 1, &fenceRef)
        releaseBatchResources()
        try check(waited, "vkWaitForFences")
    }

    private func releaseBatchResources() {
        reservedStaging.forEach(stagingPool.recycle)
        reservedStaging = []
        reservedStagingBytes = 0
        devicePool.collectRetired()
        stagingPool.collectRetired()
    }
}
