import CVulkan
import Foundation
import Testing
import Tensors
@testable import VulkanBackend

/// Device discovery, selection, the validation messenger and the buffer pool.
@Suite(.serialized) struct DeviceTests {
    @Test func listsDevicesWithLimitsReadFromTheDriver() throws {
        let devices = try VulkanBackend.devices()
        #expect(!devices.isEmpty)
        for d in devices {
            #expect(d.index == devices.firstIndex(of: d))
            #expect(!d.name.isEmpty)
            // Vulkan's guaranteed minimums: the driver must report at least these.
            #expect(d.maxSharedMemory >= 16384 && d.maxWorkgroupInvocations >= 128 && d.maxPushConstantBytes >= 128, "\(d)")
            #expect(d.maxWorkgroupCount.allSatisfy { $0 >= 65535 }, "\(d)")
            #expect(d.subgroupSize >= 1 && d.subgroupSize.nonzeroBitCount == 1, "subgroup size \(d.subgroupSize) of \(d)")
        }
        let vulkan = try Backends.vulkan()
        // The preferred device is a GPU whenever there is one; lavapipe otherwise.
        if devices.contains(where: \.isGPU) { #expect(vulkan.device.isGPU) } else { #expect(vulkan.device.kind == .cpu) }
        #expect(vulkan.description.contains(vulkan.device.name))
    }

    @Test func honoursAnIndexAndRejectsABadOne() throws {
        let devices = try VulkanBackend.devices()
        let last = devices.count - 1
        let chosen = try VulkanBackend(options: .init(deviceIndex: last))
        #expect(chosen.device == devices[last])
        #expect(throws: VulkanError.deviceIndexOutOfRange(index: devices.count, count: devices.count)) {
            try VulkanBackend(options: .init(deviceIndex: devices.count))
        }
        let error = VulkanError.deviceIndexOutOfRange(index: 7, count: 1)
        #expect(!error.description.contains("\n") && error.description.contains("index 7"))
        if !devices.contains(where: \.isGPU) {
            // Only CPU implementations: refusing them leaves nothing, with a message that says so.
            #expect(throws: VulkanError.self) { try VulkanBackend(options: .init(allowCPU: false)) }
            #expect(VulkanBackend.gpuAvailable == false)
        }
    }

    /// The messenger must catch a real error: a buffer of size 0 breaks VUID-VkBufferCreateInfo-size-00912.
    @Test func validationLayerReportsErrors() throws {
        try #require(VulkanBackend.validationLayerInstalled, "VK_LAYER_KHRONOS_validation is not installed (make setup installs vulkan-validationlayers)")
        let backend = try VulkanBackend(options: .init(validation: true))
        #expect(backend.validating)
        #expect(backend.validationMessages.isEmpty)
        var info = VkBufferCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        info.size = 0
        info.usage = VkBufferUsageFlags(VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue)
        var buffer: VkBuffer?
        let d = backend.vulkan
        _ = d.functions.createBuffer(d.handle, &info, nil, &buffer)
        if let buffer { d.functions.destroyBuffer(d.handle, buffer, nil) }
        #expect(backend.validationMessages.contains { $0.contains("00912") }, "\(backend.validationMessages)")
        #expect(throws: VulkanError.self) { try backend.checkValidation() }
        #expect(backend.validationMessages.isEmpty)   // checkValidation drains
    }

    /// Synchronisation validation is on: a dispatch that reads what the previous one wrote, recorded
    /// without the stream's barrier, is reported as a read-after-write hazard.
    @Test func synchronisationValidationCatchesAMissingBarrier() throws {
        try #require(VulkanBackend.validationLayerInstalled, "VK_LAYER_KHRONOS_validation is not installed")
        let vk = try VulkanBackend(options: .init(validation: true))
        let x = try vk.tensor([1, 2, 3, 4], shape: [4])
        let y = try vk.activation(x, .silu), z = try vk.output([4], "test")
        let (yb, zb) = (try vk.bound(y, "test"), try vk.bound(z, "test"))
        var push = Push()
        try push.add(4, op: "test")
        push.add(yb.offset, zb.offset, Activation.silu.shaderCode)
        push.add(float: 1, 0, -.infinity, .infinity)
        try vk.lock.withLock {
            try vk.stream.dispatch(.unary, [yb.buffer, zb.buffer], push: push.words, groups: (1, 1, 1), ordered: false)
        }
        try vk.synchronize()
        #expect(vk.validationMessages.contains { $0.contains("READ_AFTER_WRITE") }, "\(vk.validationMessages)")
        _ = try? vk.checkValidation()
    }

    /// A steady stream of same-shaped work allocates nothing after its first pass, and the host
    /// reads results once per pass (the ops between are one batch).
    @Test func poolReusesBuffersAndWorkIsBatched() throws {
        // Its own backend: tests of other suites run concurrently on the shared one.
        let vk = try VulkanBackend(options: .init(validation: true))
        do {
            func pass() throws -> [Float] {
                let x = try vk.tensor((0..<300).map { Float($0) / 100 }, shape: [3, 100])
                let y = try vk.softmax(vk.activation(vk.scale(x, by: 2, adding: -1), .silu))
                return try vk.floats(vk.add(y, x))
            }
            let first = try pass()
            let before = vk.statistics
            let second = try pass()
            let after = vk.statistics
            #expect(first == second)
            #expect(after.freshAllocations == before.freshAllocations, "\(before) → \(after)")
            #expect(after.reuses > before.reuses)
            #expect(after.submissions == before.submissions + 1, "one submission per host read")
        }
        #expect(vk.validationMessages.isEmpty, "\(vk.validationMessages)")
    }

    @Test func rejectsForeignTensorsAndBFloat16() throws {
        try withVulkan { vk in
            let onCPU = try Backends.cpu.tensor([1, 2, 3], shape: [3])
            #expect(throws: TensorError.self) { try vk.activation(onCPU, .silu) }
            #expect(throws: TensorError.self) { try vk.floats(onCPU) }
            let x = try vk.tensor([1, 2, 3], shape: [3])
            #expect(throws: TensorError.self) { try vk.convert(x, to: .bfloat16) }
            let raw: [UInt16] = [0x3F80, 0x4000]
            try raw.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in
                #expect(throws: TensorError.self) { try vk.tensor(raw: bytes, format: .bfloat16, shape: [2], dtype: .bfloat16) }
                // bf16 and fp16 files load as fp32.
                #expect(try vk.floats(vk.tensor(raw: bytes, format: .bfloat16, shape: [2], dtype: .float32)) == [1, 2])
            }
            let half: [UInt16] = [0x3C00, 0xC000, 0x3555]   // 1, -2, 0.33325195
            try half.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in
                #expect(try vk.floats(vk.tensor(raw: bytes, format: .float16, shape: [3], dtype: .float32)) == [1, -2, Float(Float16(bitPattern: 0x3555))])
                #expect(throws: TensorError.self) { try vk.tensor(raw: bytes, format: .float16, shape: [4], dtype: .float32) }
            }
            #expect(throws: TensorError.self) { try vk.tensor([1, 2], shape: [3]) }
        }
    }
}
