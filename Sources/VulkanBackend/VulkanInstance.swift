import CVulkan
import Foundation
import Synchronization

/// What one Vulkan device offers, read from the driver (never assumed).
public struct VulkanDeviceInfo: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case discrete = "discrete GPU", integrated = "integrated GPU", virtual = "virtual GPU", cpu = "CPU", other

        /// Order of preference when no index is given: a real GPU first, a CPU rasteriser last.
        var rank: Int {
            switch self {
            case .discrete: return 0
            case .integrated: return 1
            case .virtual: return 2
            case .other: return 3
            case .cpu: return 4
            }
        }
    }

    public let index: Int
    public let name: String
    public let kind: Kind
    public let apiVersion: String
    public let apiVersionCode: UInt32
    /// PCI vendor and device IDs (or the driver's own for a CPU implementation).
    public let vendorID: UInt32
    public let deviceID: UInt32
    /// The driver's version, encoded as its vendor chooses.
    public let driverVersion: UInt32
    /// 16 bytes naming the driver build whose pipeline caches this device accepts.
    public let pipelineCacheUUID: [UInt8]
    /// Threads per subgroup (warp/wavefront); 0 when the device does not report it.
    public let subgroupSize: Int
    /// Bytes of workgroup-shared memory a compute shader may use.
    public let maxSharedMemory: Int
    public let maxWorkgroupInvocations: Int
    public let maxWorkgroupCount: [Int]
    public let maxPushConstantBytes: Int
    public let maxStorageBufferRange: Int
    public let maxMemoryAllocationCount: Int
    public let shaderFloat16: Bool
    public let storageBuffer16BitAccess: Bool
    /// VK_KHR_cooperative_matrix or VK_NV_cooperative_matrix (tensor cores), when exposed.
    public let cooperativeMatrix: Bool
    /// The Vulkan memory model (needed by the cooperative-matrix shaders, SPIR-V 1.6).
    public let vulkanMemoryModel: Bool
    /// VK_KHR_cooperative_matrix is exposed with its `cooperativeMatrix` feature, for compute shaders.
    public let cooperativeMatrixFeature: Bool
    /// What vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR lists (empty without the extension).
    public let cooperativeMatrixProperties: [CooperativeMatrix.Property]

    /// The tile the products run on cooperative matrices with, or nil when they use the portable
    /// shaders: needs Vulkan 1.3, the extension and feature, fp16 arithmetic, the Vulkan memory
    /// model and an fp16 × fp16 → fp32 subgroup configuration (`CooperativeMatrix.select`).
    public var cooperativeMatrixShape: CooperativeMatrix.Shape? {
        guard apiVersionCode >= sd_vk_api_version_1_3, cooperativeMatrixFeature, shaderFloat16, vulkanMemoryModel else { return nil }
        return CooperativeMatrix.select(cooperativeMatrixProperties, maxSharedMemory: maxSharedMemory)
    }

    /// A real GPU (not lavapipe or another CPU implementation).
    public var isGPU: Bool { kind != .cpu && kind != .other }

    public var description: String {
        "[\(index)] \(name) (\(kind.rawValue), Vulkan \(apiVersion), subgroup \(subgroupSize), shared \(maxSharedMemory / 1024) KiB"
            + (shaderFloat16 ? ", fp16" : "") + ", cooperative matrix: \(cooperativeMatrixShape.map(\.description) ?? "none"))"
    }
}

/// Validation-layer messages collected by the debug-utils messenger.
final class ValidationLog: Sendable {
    private let messages = Mutex<[String]>([])

    func record(_ message: String) { messages.withLock { $0.append(message) } }
    var all: [String] { messages.withLock { $0 } }
    func drain() -> [String] { messages.withLock { let m = $0; $0 = []; return m } }
}

private let debugCallback: PFN_vkDebugUtilsMessengerCallbackEXT = { severity, _, data, user in
    guard let user, let data else { return VkBool32(VK_FALSE) }
    let log = Unmanaged<ValidationLog>.fromOpaque(user).takeUnretainedValue()
    let text = data.pointee.pMessage.map { String(cString: $0) } ?? "(no message)"
    if severity.rawValue & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue != 0
        || severity.rawValue & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue != 0 {
        log.record(text)
    }
    return VkBool32(VK_FALSE)
}

/// A Vulkan instance, with the Khronos validation layer and a messenger when asked for.
final class VulkanInstance: @unchecked Sendable {
    let loader: VulkanLoader
    let handle: VkInstance
    let functions: InstanceFunctions
    let validationLog = ValidationLog()
    /// True when VK_LAYER_KHRONOS_validation is active.
    let validating: Bool
    /// The API version the instance was created for (what devices may be used at: SPIR-V 1.6, which
    /// the cooperative-matrix shaders are, needs 1.3).
    let apiVersion: UInt32
    private var messenger: VkDebugUtilsMessengerEXT?

    static let validationLayer = "VK_LAYER_KHRONOS_validation"
    static let debugUtils = "VK_EXT_debug_utils"
    /// Provided by the validation layer itself: turns on its synchronisation checks.
    static let validationFeatures = "VK_EXT_validation_features"

    /// Whether the Khronos validation layer is installed (Debian: vulkan-validationlayers).
    static func validationLayerAvailable() throws -> Bool {
        let loader = try VulkanLoader.get()
        var count: UInt32 = 0
        try check(loader.enumerateInstanceLayerProperties(&count, nil), "vkEnumerateInstanceLayerProperties")
        var layers = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(count))
        try check(loader.enumerateInstanceLayerProperties(&count, &layers), "vkEnumerateInstanceLayerProperties")
        return layers.prefix(Int(count)).contains { withUnsafeBytes(of: $0.layerName) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } == validationLayer }
    }

    init(validation: Bool) throws {
        let loader = try VulkanLoader.get()
        self.loader = loader
        var loaderVersion = sd_vk_api_version_1_0
        if let enumerate = loader.enumerateInstanceVersion { _ = enumerate(&loaderVersion) }
        guard loaderVersion >= sd_vk_api_version_1_1 else {
            throw VulkanError.unsupported("Vulkan 1.1 (the loader offers \(sd_vk_version_major(loaderVersion)).\(sd_vk_version_minor(loaderVersion)))")
        }
        let apiVersion = min(loaderVersion, sd_vk_api_version_1_3)
        self.apiVersion = apiVersion
        let useValidation = try validation && VulkanInstance.validationLayerAvailable()
        let layers = useValidation ? [VulkanInstance.validationLayer] : []
        let extensions = useValidation ? [VulkanInstance.debugUtils, VulkanInstance.validationFeatures] : []
        var made: VkInstance?
        try withCStrings(layers) { layerNames in
            try withCStrings(extensions) { extensionNames in
                try "streamdiffusion".withCString { appName in
                    var app = VkApplicationInfo()
                    app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
                    app.pApplicationName = appName
                    app.pEngineName = appName
                    app.apiVersion = apiVersion
                    // Under validation, also check synchronisation (missing or wrong barriers, hazards
                    // between dispatches and copies): lavapipe runs work in order and would hide them.
                    let enabled = [VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT]
                    try withUnsafePointer(to: &app) { appPointer in
                        try enabled.withUnsafeBufferPointer { enabledList in
                            var features = VkValidationFeaturesEXT()
                            features.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT
                            features.enabledValidationFeatureCount = UInt32(enabledList.count)
                            features.pEnabledValidationFeatures = enabledList.baseAddress
                            try withUnsafePointer(to: &features) { featuresPointer in
                                var info = VkInstanceCreateInfo()
                                info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                                info.pNext = useValidation ? UnsafeRawPointer(featuresPointer) : nil
                                info.pApplicationInfo = appPointer
                                info.enabledLayerCount = UInt32(layers.count)
                                info.ppEnabledLayerNames = layerNames
                                info.enabledExtensionCount = UInt32(extensions.count)
                                info.ppEnabledExtensionNames = extensionNames
                                let result = loader.createInstance(&info, nil, &made)
                                if result == VK_ERROR_INCOMPATIBLE_DRIVER {
                                    throw VulkanError.noDevice("the Vulkan loader found no driver; install one (Debian: mesa-vulkan-drivers, or the GPU vendor's)")
                                }
                                try check(result, "vkCreateInstance")
                            }
                        }
                    }
                }
            }
        }
        guard let made else { throw VulkanError.call("vkCreateInstance", result: 0) }
        handle = made
        do { functions = try InstanceFunctions(loader, made) } catch {
            if let destroy = loader.getInstanceProcAddr(made, "vkDestroyInstance") {
                unsafeBitCast(destroy, to: PFN_vkDestroyInstance.self)(made, nil)
            }
            throw error
        }
        validating = useValidation
        if useValidation, let create = functions.createDebugUtilsMessenger {
            var info = VkDebugUtilsMessengerCreateInfoEXT()
            info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
            info.messageSeverity = VkDebugUtilsMessageSeverityFlagsEXT(VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue
                | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue)
            info.messageType = VkDebugUtilsMessageTypeFlagsEXT(VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue
                | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue)
            info.pfnUserCallback = debugCallback
            info.pUserData = Unmanaged.passUnretained(validationLog).toOpaque()
            var m: VkDebugUtilsMessengerEXT?
            try check(create(made, &info, nil, &m), "vkCreateDebugUtilsMessengerEXT")
            messenger = m
        }
    }

    deinit {
        if let messenger, let destroy = functions.destroyDebugUtilsMessenger { destroy(handle, messenger, nil) }
        functions.destroyInstance(handle, nil)
    }

    func physicalDevices() throws -> [VkPhysicalDevice] {
        var count: UInt32 = 0
        try check(functions.enumeratePhysicalDevices(handle, &count, nil), "vkEnumeratePhysicalDevices")
        var devices = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        try check(functions.enumeratePhysicalDevices(handle, &count, &devices), "vkEnumeratePhysicalDevices")
        return devices.prefix(Int(count)).compactMap { $0 }
    }

    func info(_ device: VkPhysicalDevice, index: Int) throws -> VulkanDeviceInfo {
        var properties = VkPhysicalDeviceProperties()
        functions.getPhysicalDeviceProperties(device, &properties)
        var subgroup = VkPhysicalDeviceSubgroupProperties()
        subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES
        var p2 = VkPhysicalDeviceProperties2()
        p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
        var float16 = VkPhysicalDeviceShaderFloat16Int8Features()
        float16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES
        var storage16 = VkPhysicalDevice16BitStorageFeatures()
        storage16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES
        let is11 = properties.apiVersion >= sd_vk_api_version_1_1
        let extensions = try deviceExtensions(device)
        let coop = try cooperativeMatrixSupport(device, extensions: extensions, apiVersion: properties.apiVersion)
        if is11 {
            withUnsafeMutablePointer(to: &subgroup) { p2.pNext = UnsafeMutableRawPointer($0); functions.getPhysicalDeviceProperties2(device, &p2) }
            withUnsafeMutablePointer(to: &float16) { f16 in
                withUnsafeMutablePointer(to: &storage16) { s16 in
                    s16.pointee.pNext = UnsafeMutableRawPointer(f16)
                    var f2 = VkPhysicalDeviceFeatures2()
                    f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
                    f2.pNext = UnsafeMutableRawPointer(s16)
                    functions.getPhysicalDeviceFeatures2(device, &f2)
                    s16.pointee.pNext = nil
                }
            }
        }
        let limits = properties.limits
        let kind: VulkanDeviceInfo.Kind
        switch properties.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: kind = .discrete
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: kind = .integrated
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: kind = .virtual
        case VK_PHYSICAL_DEVICE_TYPE_CPU: kind = .cpu
        default: kind = .other
        }
        let v = properties.apiVersion
        return VulkanDeviceInfo(
            index: index, name: fixedString(properties.deviceName), kind: kind,
            apiVersion: "\(sd_vk_version_major(v)).\(sd_vk_version_minor(v)).\(sd_vk_version_patch(v))", apiVersionCode: v,
            vendorID: properties.vendorID, deviceID: properties.deviceID, driverVersion: properties.driverVersion,
            pipelineCacheUUID: withUnsafeBytes(of: properties.pipelineCacheUUID) { Array($0) },
            subgroupSize: is11 ? Int(subgroup.subgroupSize) : 0,
            maxSharedMemory: Int(limits.maxComputeSharedMemorySize),
            maxWorkgroupInvocations: Int(limits.maxComputeWorkGroupInvocations),
            maxWorkgroupCount: [Int(limits.maxComputeWorkGroupCount.0), Int(limits.maxComputeWorkGroupCount.1), Int(limits.maxComputeWorkGroupCount.2)],
            maxPushConstantBytes: Int(limits.maxPushConstantsSize),
            maxStorageBufferRange: Int(limits.maxStorageBufferRange),
            maxMemoryAllocationCount: Int(limits.maxMemoryAllocationCount),
            shaderFloat16: float16.shaderFloat16 != 0, storageBuffer16BitAccess: storage16.storageBuffer16BitAccess != 0,
            cooperativeMatrix: extensions.contains(Self.cooperativeMatrixExtension) || extensions.contains("VK_NV_cooperative_matrix"),
            vulkanMemoryModel: coop.memoryModel, cooperativeMatrixFeature: coop.feature, cooperativeMatrixProperties: coop.properties)
    }

    func deviceExtensions(_ device: VkPhysicalDevice) throws -> Set<String> {
        var count: UInt32 = 0
        try check(functions.enumerateDeviceExtensionProperties(device, nil, &count, nil), "vkEnumerateDeviceExtensionProperties")
        var list = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
        try check(functions.enumerateDeviceExtensionProperties(device, nil, &count, &list), "vkEnumerateDeviceExtensionProperties")
        return Set(list.prefix(Int(count)).map { fixedString($0.extensionName) })
    }
}

/// A NUL-terminated C character array imported as a tuple, as a String.
func fixedString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

/// Calls `body` with a C array of C strings that lives for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> R) rethrows -> R {
    let owned = strings.map { strdup($0) }
    defer { owned.forEach { free($0) } }
    let pointers = owned.map { UnsafePointer($0) }
    return try pointers.withUnsafeBufferPointer { try body(strings.isEmpty ? nil : $0.baseAddress) }
}
