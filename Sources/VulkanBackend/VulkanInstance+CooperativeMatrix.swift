import CVulkan

extension VulkanInstance {
    static let cooperativeMatrixExtension = "VK_KHR_cooperative_matrix"

    /// What one physical device offers for the cooperative-matrix shaders: the Vulkan memory model
    /// (Vulkan 1.2 feature), VK_KHR_cooperative_matrix's feature for compute shaders, and its list
    /// of configurations (read through the loader: Debian's headers predate the extension).
    func cooperativeMatrixSupport(_ device: VkPhysicalDevice, extensions: Set<String>, apiVersion: UInt32)
        throws -> (memoryModel: Bool, feature: Bool, properties: [CooperativeMatrix.Property]) {
        var memoryModel = VkPhysicalDeviceVulkanMemoryModelFeatures()
        memoryModel.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES
        var feature = sd_VkPhysicalDeviceCooperativeMatrixFeaturesKHR()
        feature.sType = sd_vk_structure_type_cooperative_matrix_features
        var stages = sd_VkPhysicalDeviceCooperativeMatrixPropertiesKHR()
        stages.sType = sd_vk_structure_type_cooperative_matrix_device_properties
        let has = extensions.contains(Self.cooperativeMatrixExtension)
        guard apiVersion >= sd_vk_api_version_1_2 else { return (false, false, []) }
        withUnsafeMutablePointer(to: &memoryModel) { model in
            withUnsafeMutablePointer(to: &feature) { coop in
                // Structures of an extension the device lacks must not be chained (validation error).
                model.pointee.pNext = has ? UnsafeMutableRawPointer(coop) : nil
                var f2 = VkPhysicalDeviceFeatures2()
                f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
                f2.pNext = UnsafeMutableRawPointer(model)
                functions.getPhysicalDeviceFeatures2(device, &f2)
                model.pointee.pNext = nil
            }
        }
        guard has else { return (memoryModel.vulkanMemoryModel != 0, false, []) }
        withUnsafeMutablePointer(to: &stages) { s in
            var p2 = VkPhysicalDeviceProperties2()
            p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
            p2.pNext = UnsafeMutableRawPointer(s)
            functions.getPhysicalDeviceProperties2(device, &p2)
        }
        let compute = VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue)
        let usable = feature.cooperativeMatrix != 0 && stages.cooperativeMatrixSupportedStages & compute != 0
        guard let pointer = loader.getInstanceProcAddr(handle, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR") else {
            throw VulkanError.missingFunction("vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
        }
        let list = unsafeBitCast(pointer, to: sd_PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR.self)
        var count: UInt32 = 0
        try check(list(device, &count, nil), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
        var entry = sd_VkCooperativeMatrixPropertiesKHR()
        entry.sType = sd_vk_structure_type_cooperative_matrix_properties
        var entries = [sd_VkCooperativeMatrixPropertiesKHR](repeating: entry, count: Int(count))
        try check(list(device, &count, &entries), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
        let properties = entries.prefix(Int(count)).map {
            CooperativeMatrix.Property(m: Int($0.MSize), n: Int($0.NSize), k: Int($0.KSize), a: .init(vulkan: $0.AType),
                                       b: .init(vulkan: $0.BType), c: .init(vulkan: $0.CType), result: .init(vulkan: $0.ResultType),
                                       saturatingAccumulation: $0.saturatingAccumulation != 0, scope: $0.scope)
        }
        return (memoryModel.vulkanMemoryModel != 0, usable, properties)
    }
}
