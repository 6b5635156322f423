import CVulkan
import Foundation

/// Resolves an entry point to its typed function pointer, or throws naming the missing function.
private func resolve<T>(_ name: String, _ lookup: (String) -> PFN_vkVoidFunction?) throws -> T {
    guard let pointer = lookup(name) else { throw VulkanError.missingFunction(name) }
    return unsafeBitCast(pointer, to: T.self)
}

/// The Vulkan loader, opened with dlopen at run time (never linked: see Sources/CVulkan/shim.h).
/// Opened once per process and never closed: instances and devices may outlive any one backend.
struct VulkanLoader: @unchecked Sendable {
    let getInstanceProcAddr: PFN_vkGetInstanceProcAddr
    let createInstance: PFN_vkCreateInstance
    let enumerateInstanceLayerProperties: PFN_vkEnumerateInstanceLayerProperties
    let enumerateInstanceExtensionProperties: PFN_vkEnumerateInstanceExtensionProperties
    let enumerateInstanceVersion: PFN_vkEnumerateInstanceVersion?

    static let shared: Result<VulkanLoader, VulkanError> = {
        do { return .success(try VulkanLoader()) } catch let error as VulkanError { return .failure(error) } catch {
            return .failure(.loaderMissing("\(error)"))
        }
    }()

    static func get() throws -> VulkanLoader { try shared.get() }

    private init() throws {
        var handle: UnsafeMutableRawPointer?
        for name in ["libvulkan.so.1", "libvulkan.so", "libvulkan.1.dylib", "libMoltenVK.dylib"] {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
        }
        guard let handle else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            throw VulkanError.loaderMissing(reason)
        }
        guard let symbol = dlsym(handle, "vkGetInstanceProcAddr") else {
            throw VulkanError.missingFunction("vkGetInstanceProcAddr")
        }
        let gipa = unsafeBitCast(symbol, to: PFN_vkGetInstanceProcAddr.self)
        getInstanceProcAddr = gipa
        let lookup: (String) -> PFN_vkVoidFunction? = { gipa(nil, $0) }
        createInstance = try resolve("vkCreateInstance", lookup)
        enumerateInstanceLayerProperties = try resolve("vkEnumerateInstanceLayerProperties", lookup)
        enumerateInstanceExtensionProperties = try resolve("vkEnumerateInstanceExtensionProperties", lookup)
        enumerateInstanceVersion = lookup("vkEnumerateInstanceVersion").map { unsafeBitCast($0, to: PFN_vkEnumerateInstanceVersion.self) }
    }
}

/// Entry points that take an instance or a physical device.
struct InstanceFunctions: @unchecked Sendable {
    let destroyInstance: PFN_vkDestroyInstance
    let enumeratePhysicalDevices: PFN_vkEnumeratePhysicalDevices
    let getPhysicalDeviceProperties: PFN_vkGetPhysicalDeviceProperties
    let getPhysicalDeviceProperties2: PFN_vkGetPhysicalDeviceProperties2
    let getPhysicalDeviceFeatures2: PFN_vkGetPhysicalDeviceFeatures2
    let getPhysicalDeviceQueueFamilyProperties: PFN_vkGetPhysicalDeviceQueueFamilyProperties
    let getPhysicalDeviceMemoryProperties: PFN_vkGetPhysicalDeviceMemoryProperties
    let enumerateDeviceExtensionProperties: PFN_vkEnumerateDeviceExtensionProperties
    let createDevice: PFN_vkCreateDevice
    let getDeviceProcAddr: PFN_vkGetDeviceProcAddr
    let createDebugUtilsMessenger: PFN_vkCreateDebugUtilsMessengerEXT?
    let destroyDebugUtilsMessenger: PFN_vkDestroyDebugUtilsMessengerEXT?

    init(_ loader: VulkanLoader, _ instance: VkInstance) throws {
        let lookup: (String) -> PFN_vkVoidFunction? = { loader.getInstanceProcAddr(instance, $0) }
        destroyInstance = try resolve("vkDestroyInstance", lookup)
        enumeratePhysicalDevices = try resolve("vkEnumeratePhysicalDevices", lookup)
        getPhysicalDeviceProperties = try resolve("vkGetPhysicalDeviceProperties", lookup)
        getPhysicalDeviceProperties2 = try resolve("vkGetPhysicalDeviceProperties2", lookup)
        getPhysicalDeviceFeatures2 = try resolve("vkGetPhysicalDeviceFeatures2", lookup)
        getPhysicalDeviceQueueFamilyProperties = try resolve("vkGetPhysicalDeviceQueueFamilyProperties", lookup)
        getPhysicalDeviceMemoryProperties = try resolve("vkGetPhysicalDeviceMemoryProperties", lookup)
        enumerateDeviceExtensionProperties = try resolve("vkEnumerateDeviceExtensionProperties", lookup)
        createDevice = try resolve("vkCreateDevice", lookup)
        getDeviceProcAddr = try resolve("vkGetDeviceProcAddr", lookup)
        createDebugUtilsMessenger = lookup("vkCreateDebugUtilsMessengerEXT").map { unsafeBitCast($0, to: PFN_vkCreateDebugUtilsMessengerEXT.self) }
        destroyDebugUtilsMessenger = lookup("vkDestroyDebugUtilsMessengerEXT").map { unsafeBitCast($0, to: PFN_vkDestroyDebugUtilsMessengerEXT.self) }
    }
}

/// Entry points that take a device, a queue or a command buffer, resolved through the device
/// (no loader dispatch on the hot path).
struct DeviceFunctions: @unchecked Sendable {
    let destroyDevice: PFN_vkDestroyDevice
    let deviceWaitIdle: PFN_vkDeviceWaitIdle
    let getDeviceQueue: PFN_vkGetDeviceQueue
    let createBuffer: PFN_vkCreateBuffer
    let destroyBuffer: PFN_vkDestroyBuffer
    let getBufferMemoryRequirements: PFN_vkGetBufferMemoryRequirements
    let allocateMemory: PFN_vkAllocateMemory
    let freeMemory: PFN_vkFreeMemory
    let bindBufferMemory: PFN_vkBindBufferMemory
    let mapMemory: PFN_vkMapMemory
    let unmapMemory: PFN_vkUnmapMemory
    let flushMappedMemoryRanges: PFN_vkFlushMappedMemoryRanges
    let invalidateMappedMemoryRanges: PFN_vkInvalidateMappedMemoryRanges
    let createCommandPool: PFN_vkCreateCommandPool
    let destroyCommandPool: PFN_vkDestroyCommandPool
    let allocateCommandBuffers: PFN_vkAllocateCommandBuffers
    let freeCommandBuffers: PFN_vkFreeCommandBuffers
    let resetCommandBuffer: PFN_vkResetCommandBuffer
    let beginCommandBuffer: PFN_vkBeginCommandBuffer
    let endCommandBuffer: PFN_vkEndCommandBuffer
    let cmdCopyBuffer: PFN_vkCmdCopyBuffer
    let cmdFillBuffer: PFN_vkCmdFillBuffer
    let cmdPipelineBarrier: PFN_vkCmdPipelineBarrier
    let cmdBindPipeline: PFN_vkCmdBindPipeline
    let cmdBindDescriptorSets: PFN_vkCmdBindDescriptorSets
    let cmdPushConstants: PFN_vkCmdPushConstants
    let cmdDispatch: PFN_vkCmdDispatch
    let queueSubmit: PFN_vkQueueSubmit
    let createFence: PFN_vkCreateFence
    let destroyFence: PFN_vkDestroyFence
    let waitForFences: PFN_vkWaitForFences
    let resetFences: PFN_vkResetFences
    let createShaderModule: PFN_vkCreateShaderModule
    let destroyShaderModule: PFN_vkDestroyShaderModule
    let createComputePipelines: PFN_vkCreateComputePipelines
    let destroyPipeline: PFN_vkDestroyPipeline
    let createPipelineLayout: PFN_vkCreatePipelineLayout
    let destroyPipelineLayout: PFN_vkDestroyPipelineLayout
    let createDescriptorSetLayout: PFN_vkCreateDescriptorSetLayout
    let destroyDescriptorSetLayout: PFN_vkDestroyDescriptorSetLayout
    let createDescriptorPool: PFN_vkCreateDescriptorPool
    let destroyDescriptorPool: PFN_vkDestroyDescriptorPool
    let resetDescriptorPool: PFN_vkResetDescriptorPool
    let allocateDescriptorSets: PFN_vkAllocateDescriptorSets
    let updateDescriptorSets: PFN_vkUpdateDescriptorSets
    let createPipelineCache: PFN_vkCreatePipelineCache
    let destroyPipelineCache: PFN_vkDestroyPipelineCache
    let getPipelineCacheData: PFN_vkGetPipelineCacheData

    init(_ instance: InstanceFunctions, _ device: VkDevice) throws {
        let lookup: (String) -> PFN_vkVoidFunction? = { instance.getDeviceProcAddr(device, $0) }
        destroyDevice = try resolve("vkDestroyDevice", lookup)
        deviceWaitIdle = try resolve("vkDeviceWaitIdle", lookup)
        getDeviceQueue = try resolve("vkGetDeviceQueue", lookup)
        createBuffer = try resolve("vkCreateBuffer", lookup)
        destroyBuffer = try resolve("vkDestroyBuffer", lookup)
        getBufferMemoryRequirements = try resolve("vkGetBufferMemoryRequirements", lookup)
        allocateMemory = try resolve("vkAllocateMemory", lookup)
        freeMemory = try resolve("vkFreeMemory", lookup)
        bindBufferMemory = try resolve("vkBindBufferMemory", lookup)
        mapMemory = try resolve("vkMapMemory", lookup)
        unmapMemory = try resolve("vkUnmapMemory", lookup)
        flushMappedMemoryRanges = try resolve("vkFlushMappedMemoryRanges", lookup)
        invalidateMappedMemoryRanges = try resolve("vkInvalidateMappedMemoryRanges", lookup)
        createCommandPool = try resolve("vkCreateCommandPool", lookup)
        destroyCommandPool = try resolve("vkDestroyCommandPool", lookup)
        allocateCommandBuffers = try resolve("vkAllocateCommandBuffers", lookup)
        freeCommandBuffers = try resolve("vkFreeCommandBuffers", lookup)
        resetCommandBuffer = try resolve("vkResetCommandBuffer", lookup)
        beginCommandBuffer = try resolve("vkBeginCommandBuffer", lookup)
        endCommandBuffer = try resolve("vkEndCommandBuffer", lookup)
        cmdCopyBuffer = try resolve("vkCmdCopyBuffer", lookup)
        cmdFillBuffer = try resolve("vkCmdFillBuffer", lookup)
        cmdPipelineBarrier = try resolve("vkCmdPipelineBarrier", lookup)
        cmdBindPipeline = try resolve("vkCmdBindPipeline", lookup)
        cmdBindDescriptorSets = try resolve("vkCmdBindDescriptorSets", lookup)
        cmdPushConstants = try resolve("vkCmdPushConstants", lookup)
        cmdDispatch = try resolve("vkCmdDispatch", lookup)
        queueSubmit = try resolve("vkQueueSubmit", lookup)
        createFence = try resolve("vkCreateFence", lookup)
        destroyFence = try resolve("vkDestroyFence", lookup)
        waitForFences = try resolve("vkWaitForFences", lookup)
        resetFences = try resolve("vkResetFences", lookup)
        createShaderModule = try resolve("vkCreateShaderModule", lookup)
        destroyShaderModule = try resolve("vkDestroyShaderModule", lookup)
        createComputePipelines = try resolve("vkCreateComputePipelines", lookup)
        destroyPipeline = try resolve("vkDestroyPipeline", lookup)
        createPipelineLayout = try resolve("vkCreatePipelineLayout", lookup)
        destroyPipelineLayout = try resolve("vkDestroyPipelineLayout", lookup)
        createDescriptorSetLayout = try resolve("vkCreateDescriptorSetLayout", lookup)
        destroyDescriptorSetLayout = try resolve("vkDestroyDescriptorSetLayout", lookup)
        createDescriptorPool = try resolve("vkCreateDescriptorPool", lookup)
        destroyDescriptorPool = try resolve("vkDestroyDescriptorPool", lookup)
        resetDescriptorPool = try resolve("vkResetDescriptorPool", lookup)
        allocateDescriptorSets = try resolve("vkAllocateDescriptorSets", lookup)
        updateDescriptorSets = try resolve("vkUpdateDescriptorSets", lookup)
        createPipelineCache = try resolve("vkCreatePipelineCache", lookup)
        destroyPipelineCache = try resolve("vkDestroyPipelineCache", lookup)
        getPipelineCacheData = try resolve("vkGetPipelineCacheData", lookup)
    }
}
