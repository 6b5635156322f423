import CVulkan
import Foundation

/// The compute shaders: each one's storage-buffer bindings, in binding order.
enum Shader: String, CaseIterable, Sendable {
    case unary, binary, geglu, softmax, norm, attention, matmul, conv2d, convWeight = "conv_weight", resize
    case copyColumns = "copy_columns"
    /// fp16 weight storage: the packing pass and the products that read packed weights.
    case packHalf = "pack_half", matmulHalf = "matmul_half", conv2dHalf = "conv2d_half"
    /// GroupNorm over large groups in three passes: chunk statistics, their merge, the elementwise apply.
    case normStats = "norm_stats", normCombine = "norm_combine", normApply = "norm_apply"
    /// Attention with key/value tiles in shared memory, for head dimensions up to `tiledAttentionMaxHeadDim`.
    case attentionTiled = "attention_tiled"
    /// The products on cooperative matrices (gemm_coop.glsl), fp32 and fp16-packed B.
    case matmulCoop = "matmul_coop", matmulCoopHalf = "matmul_coop_half", conv2dCoop = "conv2d_coop", conv2dCoopHalf = "conv2d_coop_half"

    var bindings: Int {
        switch self {
        case .unary, .geglu, .softmax, .convWeight, .resize, .copyColumns, .packHalf, .normCombine: return 2
        case .binary, .normStats: return 3
        case .attention, .attentionTiled: return 4
        case .norm, .matmul, .conv2d, .matmulHalf, .conv2dHalf, .matmulCoop, .matmulCoopHalf, .conv2dCoop, .conv2dCoopHalf: return 5
        case .normApply: return 6
        }
    }

    /// Workgroup-shared memory the shader declares, in bytes (gemm.glsl: two 8 × 32 fp32 tiles;
    /// the reductions: 64 floats).
    var sharedBytes: Int {
        switch self {
        case .matmul, .conv2d, .matmulHalf, .conv2dHalf: return 2 * 8 * 32 * 4
        case .softmax, .norm, .normStats: return 64 * 4
        case .attentionTiled: return (16 * Shader.tiledAttentionMaxHeadDim + 16 * 64) * 4   // 14 KiB
        // At the default 16 × 16 × 16 tile (24 KiB); CooperativeMatrix.select checks the chosen tile's.
        case .matmulCoop, .matmulCoopHalf, .conv2dCoop, .conv2dCoopHalf: return CooperativeMatrix.Shape(m: 16, n: 16, k: 16).sharedBytes
        default: return 0
        }
    }

    /// attention_tiled.comp's MAXD: the largest head dimension its key tile holds.
    static let tiledAttentionMaxHeadDim = 160

    /// Shaders used only when the device has what they need (else an equivalent is used).
    var isOptional: Bool { self == .attentionTiled || usesCooperativeMatrix }

    /// Needs VK_KHR_cooperative_matrix, and the tile in specialization constants 1–3.
    var usesCooperativeMatrix: Bool { [.matmulCoop, .matmulCoopHalf, .conv2dCoop, .conv2dCoopHalf].contains(self) }

    /// The cooperative-matrix counterpart of a product shader.
    var cooperativeMatrixVariant: Shader? {
        switch self {
        case .matmul: return .matmulCoop
        case .matmulHalf: return .matmulCoopHalf
        case .conv2d: return .conv2dCoop
        case .conv2dHalf: return .conv2dCoopHalf
        default: return nil
        }
    }

    /// Invocations per workgroup of the cooperative-matrix products, and the rows and columns of C
    /// one workgroup computes for a hardware tile (gemm_coop.glsl: 4 × 4 tiles).
    static let cooperativeWorkgroupSize = 128
    static func cooperativeBlock(_ shape: CooperativeMatrix.Shape) -> (rows: Int, columns: Int) { (4 * shape.m, 4 * shape.n) }

    /// The most storage buffers a shader binds (descriptor pools are sized for it).
    static let maxBindings = Shader.allCases.map(\.bindings).max() ?? 1

    /// Invocations per workgroup (common.glsl's WG).
    static let workgroupSize = 64
    /// Bytes of push constants every pipeline layout declares (the minimum Vulkan guarantees).
    static let pushConstantBytes = 128

    /// The SPIR-V words, checked for the magic number.
    func spirv() throws -> [UInt32] {
        guard let text = ShaderBinaries.base64[rawValue], let data = Data(base64Encoded: text), data.count % 4 == 0,
              data.count >= 20 else {
            throw VulkanError.unsupported("shader \(rawValue): no valid SPIR-V in ShaderBinaries.swift (run tools/compile_shaders.sh)")
        }
        let words = data.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
        guard words[0] == 0x0723_0203 else { throw VulkanError.unsupported("shader \(rawValue): not SPIR-V") }
        return words
    }
}

/// Compute pipelines, created on first use from the embedded SPIR-V through one VkPipelineCache
/// (kept on disk between runs: `PipelineCache`), and kept for the device's life. Not thread-safe:
/// the backend's lock guards it.
final class PipelineLibrary {
    struct Pipeline {
        let pipeline: VkPipeline
        let layout: VkPipelineLayout
        let setLayout: VkDescriptorSetLayout
        let bindings: Int
    }

    let device: VulkanDevice
    let cache: PipelineCache
    private var pipelines: [Shader: Pipeline] = [:]

    init(device: VulkanDevice, cacheStorage: PipelineCacheStorage = .memoryOnly) throws {
        self.device = device
        let info = device.info
        let needShared = Shader.allCases.filter { !$0.isOptional }.map(\.sharedBytes).max() ?? 0
        guard info.maxSharedMemory >= needShared, info.maxWorkgroupInvocations >= Shader.workgroupSize,
              info.maxPushConstantBytes >= Shader.pushConstantBytes else {
            throw VulkanError.unsupported("\(needShared) bytes of shared memory, \(Shader.workgroupSize)-invocation workgroups and \(Shader.pushConstantBytes) bytes of push constants")
        }
        cache = try PipelineCache(device: device, storage: cacheStorage)
    }

    deinit {
        let f = device.functions, d = device.handle
        for p in pipelines.values {
            f.destroyPipeline(d, p.pipeline, nil)
            f.destroyPipelineLayout(d, p.layout, nil)
            f.destroyDescriptorSetLayout(d, p.setLayout, nil)
        }
    }

    var count: Int { pipelines.count }

    func pipeline(_ shader: Shader) throws -> Pipeline {
        if let p = pipelines[shader] { return p }
        let f = device.functions, d = device.handle
        let words = try shader.spirv()

        var moduleInfo = VkShaderModuleCreateInfo()
        moduleInfo.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
        var module: VkShaderModule?
        try words.withUnsafeBufferPointer { code in
            moduleInfo.codeSize = code.count * 4
            moduleInfo.pCode = code.baseAddress
            try check(f.createShaderModule(d, &moduleInfo, nil, &module), "vkCreateShaderModule \(shader.rawValue)")
        }
        guard let module else { throw VulkanError.call("vkCreateShaderModule", result: 0) }
        defer { f.destroyShaderModule(d, module, nil) }

        let bindings = (0..<shader.bindings).map { i -> VkDescriptorSetLayoutBinding in
            var b = VkDescriptorSetLayoutBinding()
            b.binding = UInt32(i)
            b.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
            b.descriptorCount = 1
            b.stageFlags = VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue)
            return b
        }
        var setLayout: VkDescriptorSetLayout?
        try bindings.withUnsafeBufferPointer { list in
            var info = VkDescriptorSetLayoutCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
            info.bindingCount = UInt32(list.count)
            info.pBindings = list.baseAddress
            try check(f.createDescriptorSetLayout(d, &info, nil, &setLayout), "vkCreateDescriptorSetLayout")
        }
        guard let setLayout else { throw VulkanError.call("vkCreateDescriptorSetLayout", result: 0) }

        var range = VkPushConstantRange()
        range.stageFlags = VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue)
        range.size = UInt32(Shader.pushConstantBytes)
        var layout: VkPipelineLayout?
        var setLayoutRef: VkDescriptorSetLayout? = setLayout
        let layoutResult = withUnsafePointer(to: &range) { rangePointer in
            withUnsafePointer(to: &setLayoutRef) { setPointer in
                var info = VkPipelineLayoutCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
                info.setLayoutCount = 1
                info.pSetLayouts = setPointer
                info.pushConstantRangeCount = 1
                info.pPushConstantRanges = rangePointer
                return f.createPipelineLayout(d, &info, nil, &layout)
            }
        }
        guard layoutResult == VK_SUCCESS, let layout else {
            f.destroyDescriptorSetLayout(d, setLayout, nil)
            throw VulkanError.call("vkCreatePipelineLayout", result: layoutResult.rawValue)
        }

        // Specialization constants 1–3 of the cooperative-matrix shaders: the device's tile.
        var constants: [UInt32] = []
        if shader.usesCooperativeMatrix {
            guard let shape = device.cooperativeMatrixShape else {
                f.destroyPipelineLayout(d, layout, nil)
                f.destroyDescriptorSetLayout(d, setLayout, nil)
                throw VulkanError.unsupported("\(shader.rawValue): VK_KHR_cooperative_matrix with an fp16 × fp16 → fp32 subgroup configuration")
            }
            constants = [UInt32(shape.m), UInt32(shape.n), UInt32(shape.k)]
        }
        let entries = constants.indices.map {
            VkSpecializationMapEntry(constantID: UInt32($0 + 1), offset: UInt32($0 * 4), size: 4)
        }
        var pipeline: VkPipeline?
        let result = "main".withCString { entry in
            entries.withUnsafeBufferPointer { entryList in
                constants.withUnsafeBytes { data in
                    var specialization = VkSpecializationInfo(mapEntryCount: UInt32(entryList.count), pMapEntries: entryList.baseAddress,
                                                              dataSize: data.count, pData: data.baseAddress)
                    return withUnsafePointer(to: &specialization) { specializationPointer -> VkResult in
                        var stage = VkPipelineShaderStageCreateInfo()
                        stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        stage.module = module
                        stage.pName = entry
                        stage.pSpecializationInfo = constants.isEmpty ? nil : specializationPointer
                        var info = VkComputePipelineCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        info.stage = stage
                        info.layout = layout
                        return f.createComputePipelines(d, cache.handle, 1, &info, nil, &pipeline)
                    }
                }
            }
        }
        guard result == VK_SUCCESS, let pipeline else {
            f.destroyPipelineLayout(d, layout, nil)
            f.destroyDescriptorSetLayout(d, setLayout, nil)
            throw VulkanError.call("vkCreateComputePipelines \(shader.rawValue)", result: result.rawValue)
        }
        let made = Pipeline(pipeline: pipeline, layout: layout, setLayout: setLayout, bindings: shader.bindings)
        pipelines[shader] = made
        cache.noteNewPipeline()
        return made
    }
}
