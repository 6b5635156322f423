import Foundation
import Testing
import Tensors
@testable import VulkanBackend

/// The cooperative-matrix (tensor-core) path: which configuration is chosen from a device's list
/// (a pure function, checked on lists worked by hand), that lavapipe reports none, the switches,
/// and — on a device that has them — the fp16 products against the fp32 CPU backend.
@Suite struct CooperativeMatrixTests {
    typealias P = CooperativeMatrix.Property
    static func entry(_ m: Int, _ n: Int, _ k: Int, _ a: CooperativeMatrix.Component, _ c: CooperativeMatrix.Component,
                      saturating: Bool = false, scope: Int32 = CooperativeMatrix.subgroupScope) -> P {
        P(m: m, n: n, k: k, a: a, b: a, c: c, result: c, saturatingAccumulation: saturating, scope: scope)
    }

    /// What NVIDIA's driver lists on an RTX-class GPU: fp16 at 16×16×16, 16×8×16 and 16×8×8 with fp16 or
    /// fp32 accumulation, int8 at 16×8×32 and 16×16×32.
    static let nvidia: [P] = [
        entry(16, 16, 16, .float16, .float16), entry(16, 16, 16, .float16, .float32),
        entry(16, 8, 16, .float16, .float16), entry(16, 8, 16, .float16, .float32),
        entry(16, 8, 8, .float16, .float16), entry(16, 8, 8, .float16, .float32),
        entry(16, 8, 32, .other(3), .other(5)), entry(16, 16, 32, .other(3), .other(5)),
    ]
    /// RDNA3-style (AMD): everything at 16×16×16 — fp16 and bf16 with either accumulator, int8 with
    /// plain and saturating int32.
    static let amd: [P] = [
        entry(16, 16, 16, .float16, .float16), entry(16, 16, 16, .float16, .float32),
        entry(16, 16, 16, .bfloat16, .bfloat16), entry(16, 16, 16, .bfloat16, .float32),
        entry(16, 16, 16, .other(3), .other(5)), entry(16, 16, 16, .other(3), .other(5), saturating: true),
    ]

    @Test func selectsTheSquareFp32AccumulatingTile() {
        let square = CooperativeMatrix.Shape(m: 16, n: 16, k: 16)
        #expect(CooperativeMatrix.select(Self.nvidia, maxSharedMemory: 48 << 10) == square)
        #expect(CooperativeMatrix.select(Self.amd, maxSharedMemory: 64 << 10) == square)
        #expect(square.description == "16×16×16 fp16→fp32")
        // gemm_coop.glsl at 16×16×16: A 64×32 fp16 (4 KiB) + B 32×64 fp16 (4 KiB) + C 64×64 fp32 (16 KiB).
        #expect(square.sharedBytes == 24_576)
    }

    @Test func fallsBackToTheSmallestTileWithoutTheSquareOne() {
        // NVIDIA's list less 16×16×16: 16×8×16 (2,048 products) and 16×8×8 (1,024) accumulate in
        // fp32; the smaller wins. Its shared memory: A 64×16 + B 16×32 fp16, C 64×32 fp32 = 11 KiB.
        let rest = Self.nvidia.filter { !($0.m == 16 && $0.n == 16) }
        let chosen = CooperativeMatrix.select(rest, maxSharedMemory: 48 << 10)
        #expect(chosen == CooperativeMatrix.Shape(m: 16, n: 8, k: 8))
        #expect(chosen?.sharedBytes == 11_264)
    }

    @Test func refusesListsWithoutAnFp16ToFp32SubgroupConfiguration() {
        #expect(CooperativeMatrix.select([], maxSharedMemory: 48 << 10) == nil)
        // fp16 accumulation only (no fp32 C/result), bf16 only (no bf16 kernel: glslang 13 has no
        // GL_EXT_bfloat16), workgroup scope, saturating: none usable.
        #expect(CooperativeMatrix.select(Self.nvidia.filter { $0.c != .float32 }, maxSharedMemory: 48 << 10) == nil)
        #expect(CooperativeMatrix.select([Self.entry(16, 16, 16, .bfloat16, .float32)], maxSharedMemory: 48 << 10) == nil)
        #expect(CooperativeMatrix.select([Self.entry(16, 16, 16, .float16, .float32, scope: 2)], maxSharedMemory: 48 << 10) == nil)
        #expect(CooperativeMatrix.select([Self.entry(16, 16, 16, .float16, .float32, saturating: true)], maxSharedMemory: 48 << 10) == nil)
        // 32×32×16 needs (128·32 + 32·128)·2 + 128·128·4 = 81,920 bytes: too much for 48 KiB, fine at 96.
        let big = [Self.entry(32, 32, 16, .float16, .float32)]
        #expect(CooperativeMatrix.select(big, maxSharedMemory: 48 << 10) == nil)
        #expect(CooperativeMatrix.select(big, maxSharedMemory: 96 << 10) == CooperativeMatrix.Shape(m: 32, n: 32, k: 16))
        // Tiles the shader cannot split over 128 invocations: a 2·24 = 48-wide K slab (128 % 48 ≠ 0),
        // and 32×16×32 (4·32·64 / 128 = 64 A rows per invocation, over 32). 16×8×8 beside them wins.
        let odd = [Self.entry(16, 16, 24, .float16, .float32), Self.entry(32, 16, 32, .float16, .float32)]
        #expect(CooperativeMatrix.select(odd, maxSharedMemory: 1 << 20) == nil)
        #expect(CooperativeMatrix.select(odd + [Self.entry(16, 8, 8, .float16, .float32)], maxSharedMemory: 1 << 20)
                == CooperativeMatrix.Shape(m: 16, n: 8, k: 8))
    }

    @Test func componentTypesReadFromVulkanValues() {
        #expect(CooperativeMatrix.Component(vulkan: 0) == .float16)
        #expect(CooperativeMatrix.Component(vulkan: 1) == .float32)
        #expect(CooperativeMatrix.Component(vulkan: 1_000_141_000) == .bfloat16)
        #expect(CooperativeMatrix.Component(vulkan: 3) == .other(3))
    }

    @Test func environmentOverridesTheOption() throws {
        let key = CooperativeMatrix.environmentKey
        #expect(try CooperativeMatrix.mode(requested: .automatic, environment: [:]) == .automatic)
        #expect(try CooperativeMatrix.mode(requested: .off, environment: [:]) == .off)
        #expect(try CooperativeMatrix.mode(requested: .automatic, environment: [key: "off"]) == .off)
        #expect(try CooperativeMatrix.mode(requested: .automatic, environment: [key: "0"]) == .off)
        #expect(try CooperativeMatrix.mode(requested: .off, environment: [key: "auto"]) == .automatic)
        #expect(throws: VulkanError.invalidSetting("\(key)=sometimes: expected off or auto")) {
            try CooperativeMatrix.mode(requested: .automatic, environment: [key: "sometimes"])
        }
    }

    static let automatic: Result<VulkanBackend, Error> = Result { try VulkanBackend(options: .init(validation: true)) }

    /// The backend uses exactly what the device offers (none on lavapipe, which has no
    /// VK_KHR_cooperative_matrix), says so in its description, and `.off` always gives none.
    @Test func backendReportsItsChoice() throws {
        let vk = try Self.automatic.get()
        let forced = ProcessInfo.processInfo.environment[CooperativeMatrix.environmentKey].map { ["off", "0", "false", "no"].contains($0.lowercased()) } ?? false
        #expect(vk.cooperativeMatrix == (forced ? nil : vk.device.cooperativeMatrixShape))
        #expect(vk.description.contains("cooperative matrix: \(vk.cooperativeMatrix.map(\.description) ?? "none")"))
        #expect(vk.device.description.contains("cooperative matrix: "))
        if vk.device.name.contains("llvmpipe") {
            #expect(!vk.device.cooperativeMatrixFeature && vk.device.cooperativeMatrixProperties.isEmpty)
            #expect(vk.cooperativeMatrix == nil && vk.description.hasSuffix("cooperative matrix: none)"))
        }
        #expect(try Backends.vulkan().cooperativeMatrix == nil)
        #expect(vk.validationMessages.isEmpty, "validation layer: \(vk.validationMessages)")
    }

    /// Set on a GPU run so that a device without a usable configuration fails instead of skipping.
    static let required = ProcessInfo.processInfo.environment["STREAMDIFFUSION_VULKAN_REQUIRE_COOPERATIVE_MATRIX"] == "1"
    static var available: Bool { ((try? automatic.get())?.cooperativeMatrix) != nil }

    @Test(.enabled(if: required, "STREAMDIFFUSION_VULKAN_REQUIRE_COOPERATIVE_MATRIX=1 not set"))
    func requiredConfigurationIsPresent() throws {
        let vk = try Self.automatic.get()
        #expect(vk.cooperativeMatrix != nil, "\(vk.device): lists \(vk.device.cooperativeMatrixProperties)")
    }

    @Test(.enabled(if: available, "the device has no VK_KHR_cooperative_matrix fp16 × fp16 → fp32 configuration (lavapipe has none): run on a GPU"))
    func productsMatchTheCPU() throws {
        try CooperativeProductChecks(vk: Self.automatic.get()).run()
    }
}

/// The committed cooperative-matrix SPIR-V against what the Swift side assumes of it: the capability
/// only in the coop modules (the portable ones must run without the extension), specialization
/// constants 1–3 for TM, TN, TK (defaults 16), and 128-invocation workgroups.
@Suite struct CooperativeMatrixBinaryTests {
    /// (opcode, operands) of each instruction after the 5-word header.
    static func instructions(_ words: [UInt32]) -> [(UInt32, ArraySlice<UInt32>)] {
        var result: [(UInt32, ArraySlice<UInt32>)] = []
        var at = 5
        while at < words.count {
            let count = Int(words[at] >> 16), opcode = words[at] & 0xFFFF
            guard count > 0, at + count <= words.count else { break }
            result.append((opcode, words[(at + 1)..<(at + count)]))
            at += count
        }
        return result
    }

    static let opCapability: UInt32 = 17, opExecutionMode: UInt32 = 16, opDecorate: UInt32 = 71, opSpecConstant: UInt32 = 50
    static let cooperativeMatrixCapability: UInt32 = 6022, localSize: UInt32 = 17, specId: UInt32 = 1

    @Test func capabilityOnlyInTheCooperativeModules() throws {
        for shader in Shader.allCases {
            let capabilities = Self.instructions(try shader.spirv()).filter { $0.0 == Self.opCapability }.compactMap(\.1.first)
            #expect(capabilities.contains(Self.cooperativeMatrixCapability) == shader.usesCooperativeMatrix, "\(shader)")
        }
    }

    @Test func specializationConstantsAndWorkgroupSize() throws {
        for shader in Shader.allCases where shader.usesCooperativeMatrix {
            let code = Self.instructions(try shader.spirv())
            // SpecId decorations: target id → constant id.
            var ids: [UInt32: UInt32] = [:]
            for (op, operands) in code where op == Self.opDecorate && operands.count == 3 && operands[operands.startIndex + 1] == Self.specId {
                ids[operands[operands.startIndex]] = operands[operands.startIndex + 2]
            }
            #expect(Set(ids.values) == [1, 2, 3], "\(shader): spec ids \(ids.values.sorted())")
            // Each is an OpSpecConstant %uint 16.
            let defaults = code.filter { $0.0 == Self.opSpecConstant && ids[$0.1[$0.1.startIndex + 1]] != nil }.map { $0.1.last }
            #expect(defaults.count == 3 && defaults.allSatisfy { $0 == 16 }, "\(shader): defaults \(defaults)")
            let size = code.first { $0.0 == Self.opExecutionMode && $0.1.count >= 5 && $0.1[$0.1.startIndex + 1] == Self.localSize }
            #expect(size.map { Array($0.1.dropFirst(2)) } == [UInt32(Shader.cooperativeWorkgroupSize), 1, 1], "\(shader)")
        }
        #expect(Shader.allCases.filter(\.usesCooperativeMatrix).count == 4)
        #expect([Shader.matmul, .matmulHalf, .conv2d, .conv2dHalf].compactMap(\.cooperativeMatrixVariant)
                == [.matmulCoop, .matmulCoopHalf, .conv2dCoop, .conv2dCoopHalf])
    }
}
