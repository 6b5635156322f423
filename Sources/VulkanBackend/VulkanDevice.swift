import CVulkan
import Foundation

/// A buffer and its own memory (one allocation per buffer: simple, and far below
/// maxMemoryAllocationCount for Stable Diffusion's ~1,500 weights plus a pool of activations).
struct RawBuffer: @unchecked Sendable {
    let buffer: VkBuffer
    let memory: VkDeviceMemory
    let capacity: Int
    /// Host address of the mapped memory (staging buffers only).
    let mapped: UnsafeMutableRawPointer?
}

/// A logical device with one compute queue, chosen among the instance's physical devices.
final class VulkanDevice: @unchecked Sendable {
    let instance: VulkanInstance
    let physical: VkPhysicalDevice
    let info: VulkanDeviceInfo
    let handle: VkDevice
    let functions: DeviceFunctions
    let queue: VkQueue
    let queueFamily: UInt32
    /// Property flags of each memory type, by index.
    let memoryTypes: [UInt32]
    /// The cooperative-matrix tile the products use (VK_KHR_cooperative_matrix and its features
    /// enabled on this device), or nil for the portable shaders.
    let cooperativeMatrixShape: CooperativeMatrix.Shape?

    /// Every device the instance sees, in enumeration order (the indices `--device` takes).
    static func list(_ instance: VulkanInstance) throws -> [VulkanDeviceInfo] {
        try instance.physicalDevices().enumerated().map { try instance.info($0.element, index: $0.offset) }
    }

    /// The device at `index`, or else the preferred one: discrete, integrated, virtual, then CPU.
    /// A CPU implementation (lavapipe) is taken only when `allowCPU` or when named by index.
    /// `cooperativeMatrix`: enable VK_KHR_cooperative_matrix when the device has a usable configuration.
    init(instance: VulkanInstance, index: Int?, allowCPU: Bool, cooperativeMatrix: CooperativeMatrix.Mode = .automatic) throws {
        self.instance = instance
        let devices = try instance.physicalDevices()
        let infos = try devices.enumerated().map { try instance.info($0.element, index: $0.offset) }
        guard !infos.isEmpty else { throw VulkanError.noDevice("the Vulkan loader found no device") }
        let chosen: VulkanDeviceInfo
        if let index {
            guard infos.indices.contains(index) else { throw VulkanError.deviceIndexOutOfRange(index: index, count: infos.count) }
            chosen = infos[index]
        } else {
            let candidates = infos.filter { allowCPU || $0.isGPU }.sorted { ($0.kind.rank, $0.index) < ($1.kind.rank, $1.index) }
            guard let best = candidates.first else {
                throw VulkanError.noDevice("only CPU implementations found: \(infos.map(\.name).joined(separator: ", "))")
            }
            chosen = best
        }
        guard chosen.apiVersionCode >= sd_vk_api_version_1_1 else {
            throw VulkanError.unsupported("Vulkan 1.1 on \(chosen.name) (it offers \(chosen.apiVersion))")
        }
        info = chosen
        let physical = devices[chosen.index]
        self.physical = physical
        let f = instance.functions

        var familyCount: UInt32 = 0
        f.getPhysicalDeviceQueueFamilyProperties(physical, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        f.getPhysicalDeviceQueueFamilyProperties(physical, &familyCount, &families)
        let compute = VkQueueFlags(VK_QUEUE_COMPUTE_BIT.rawValue)
        guard let family = families.prefix(Int(familyCount)).firstIndex(where: { $0.queueFlags & compute != 0 && $0.queueCount > 0 }) else {
            throw VulkanError.noDevice("\(chosen.name) has no compute queue")
        }
        queueFamily = UInt32(family)

        var memory = VkPhysicalDeviceMemoryProperties()
        f.getPhysicalDeviceMemoryProperties(physical, &memory)
        memoryTypes = withUnsafeBytes(of: memory.memoryTypes) {
            $0.bindMemory(to: VkMemoryType.self).prefix(Int(memory.memoryTypeCount)).map(\.propertyFlags)
        }

        let coop = cooperativeMatrix == .automatic && instance.apiVersion >= sd_vk_api_version_1_3 ? chosen.cooperativeMatrixShape : nil
        cooperativeMatrixShape = coop
        let made = try Self.createDevice(f, physical, family: UInt32(family), cooperativeMatrix: coop != nil, name: chosen.name)
        handle = made
        do { functions = try DeviceFunctions(f, made) } catch {
            if let destroy = f.getDeviceProcAddr(made, "vkDestroyDevice") { unsafeBitCast(destroy, to: PFN_vkDestroyDevice.self)(made, nil) }
            throw error
        }
        var q: VkQueue?
        functions.getDeviceQueue(made, UInt32(family), 0, &q)
        guard let q else { throw VulkanError.call("vkGetDeviceQueue", result: 0) }
        queue = q
    }

    /// vkCreateDevice with one compute queue; with `cooperativeMatrix`, also VK_KHR_cooperative_matrix
    /// and the features its shaders declare (Float16, VulkanMemoryModel, CooperativeMatrixKHR),
    /// enabled only then (nothing else needs them).
    private static func createDevice(_ f: InstanceFunctions, _ physical: VkPhysicalDevice, family: UInt32, cooperativeMatrix: Bool,
                                     name: String) throws -> VkDevice {
        var float16 = VkPhysicalDeviceShaderFloat16Int8Features()
        float16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES
        float16.shaderFloat16 = VkBool32(VK_TRUE)
        var memoryModel = VkPhysicalDeviceVulkanMemoryModelFeatures()
        memoryModel.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES
        memoryModel.vulkanMemoryModel = VkBool32(VK_TRUE)
        var coopFeature = sd_VkPhysicalDeviceCooperativeMatrixFeaturesKHR()
        coopFeature.sType = sd_vk_structure_type_cooperative_matrix_features
        coopFeature.cooperativeMatrix = VkBool32(VK_TRUE)
        let extensions = cooperativeMatrix ? [VulkanInstance.cooperativeMatrixExtension] : []
        var priority: Float = 1
        var made: VkDevice?
        try withUnsafeMutablePointer(to: &coopFeature) { coopPointer in
            try withUnsafeMutablePointer(to: &memoryModel) { model in
                try withUnsafeMutablePointer(to: &float16) { f16 in
                    model.pointee.pNext = UnsafeMutableRawPointer(coopPointer)
                    f16.pointee.pNext = UnsafeMutableRawPointer(model)
                    try withCStrings(extensions) { extensionNames in
                        try withUnsafePointer(to: &priority) { priorityPointer in
                            var queueInfo = VkDeviceQueueCreateInfo()
                            queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
                            queueInfo.queueFamilyIndex = family
                            queueInfo.queueCount = 1
                            queueInfo.pQueuePriorities = priorityPointer
                            try withUnsafePointer(to: &queueInfo) { queuePointer in
                                var deviceInfo = VkDeviceCreateInfo()
                                deviceInfo.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                                deviceInfo.pNext = cooperativeMatrix ? UnsafeRawPointer(f16) : nil
                                deviceInfo.queueCreateInfoCount = 1
                                deviceInfo.pQueueCreateInfos = queuePointer
                                deviceInfo.enabledExtensionCount = UInt32(extensions.count)
                                deviceInfo.ppEnabledExtensionNames = extensionNames
                                try check(f.createDevice(physical, &deviceInfo, nil, &made), "vkCreateDevice on \(name)")
                            }
                        }
                    }
                }
            }
        }
        guard let made else { throw VulkanError.call("vkCreateDevice", result: 0) }
        return made
    }

    deinit {
        _ = functions.deviceWaitIdle(handle)
        functions.destroyDevice(handle, nil)
    }

    /// A storage buffer in device-local memory, or a host-visible staging buffer (mapped).
    func makeBuffer(capacity: Int, staging: Bool) throws -> RawBuffer {
        guard capacity <= info.maxStorageBufferRange || staging else {
            throw VulkanError.unsupported("a \(capacity)-byte storage buffer (maxStorageBufferRange \(info.maxStorageBufferRange))")
        }
        var create = VkBufferCreateInfo()
        create.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        create.size = VkDeviceSize(capacity)
        create.usage = staging
            ? VkBufferUsageFlags(VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue)
            : VkBufferUsageFlags(VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
                | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue)
        create.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try check(functions.createBuffer(handle, &create, nil, &buffer), "vkCreateBuffer (\(capacity) bytes)")
        guard let buffer else { throw VulkanError.call("vkCreateBuffer", result: 0) }
        var requirements = VkMemoryRequirements()
        functions.getBufferMemoryRequirements(handle, buffer, &requirements)
        guard let type = memoryType(allowed: requirements.memoryTypeBits, staging: staging) else {
            functions.destroyBuffer(handle, buffer, nil)
            throw VulkanError.unsupported(staging ? "host-visible coherent memory for staging buffers" : "device memory for storage buffers")
        }
        var allocate = VkMemoryAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        allocate.allocationSize = requirements.size
        allocate.memoryTypeIndex = type
        var memory: VkDeviceMemory?
        let result = functions.allocateMemory(handle, &allocate, nil, &memory)
        guard result == VK_SUCCESS, let memory else {
            functions.destroyBuffer(handle, buffer, nil)
            throw VulkanError.call("vkAllocateMemory (\(capacity) bytes)", result: result.rawValue)
        }
        do {
            try check(functions.bindBufferMemory(handle, buffer, memory, 0), "vkBindBufferMemory")
            var mapped: UnsafeMutableRawPointer?
            if staging { try check(functions.mapMemory(handle, memory, 0, sd_vk_whole_size, 0, &mapped), "vkMapMemory") }
            return RawBuffer(buffer: buffer, memory: memory, capacity: capacity, mapped: mapped)
        } catch {
            functions.destroyBuffer(handle, buffer, nil)
            functions.freeMemory(handle, memory, nil)
            throw error
        }
    }

    /// Staging: host-visible and coherent, cached when offered (downloads read it). Storage: device
    /// local when offered (a discrete GPU's VRAM), else any type the buffer allows.
    func memoryType(allowed: UInt32, staging: Bool) -> UInt32? {
        let hostVisible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let preferences = staging ? [hostVisible | VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue, hostVisible]
                                  : [VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue, 0]
        for wanted in preferences {
            if let index = memoryTypes.indices.first(where: { allowed & (1 << $0) != 0 && memoryTypes[$0] & wanted == wanted }) {
                return UInt32(index)
            }
        }
        return nil
    }

    /// Frees a buffer the GPU no longer uses (the caller has waited for it).
    func destroy(_ raw: RawBuffer) {
        functions.destroyBuffer(handle, raw.buffer, nil)
        if raw.mapped != nil { functions.unmapMemory(handle, raw.memory) }
        functions.freeMemory(handle, raw.memory, nil)
    }
}
