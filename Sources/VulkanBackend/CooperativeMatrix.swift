/// VK_KHR_cooperative_matrix (tensor cores, matrix cores): what a device reports, and which of its
/// configurations the products (matmul_coop*.comp, conv2d_coop*.comp) run on.
public enum CooperativeMatrix {
    /// VkComponentTypeKHR values the selection cares about; the rest are kept as their number.
    public enum Component: Sendable, Equatable, CustomStringConvertible {
        case float16, float32, bfloat16, other(Int32)

        public init(vulkan value: Int32) {
            switch value {
            case 0: self = .float16
            case 1: self = .float32
            case 1_000_141_000: self = .bfloat16
            default: self = .other(value)
            }
        }

        public var description: String {
            switch self {
            case .float16: return "fp16"
            case .float32: return "fp32"
            case .bfloat16: return "bf16"
            case .other(let value): return "type \(value)"
            }
        }
    }

    /// VkScopeKHR: 3 is a subgroup (the scope the shaders use), 2 a workgroup.
    public static let subgroupScope: Int32 = 3

    /// One entry of vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR.
    public struct Property: Sendable, Equatable, CustomStringConvertible {
        public var m, n, k: Int
        public var a, b, c, result: Component
        public var saturatingAccumulation: Bool
        public var scope: Int32

        public init(m: Int, n: Int, k: Int, a: Component, b: Component, c: Component, result: Component,
                    saturatingAccumulation: Bool = false, scope: Int32 = CooperativeMatrix.subgroupScope) {
            (self.m, self.n, self.k, self.a, self.b, self.c, self.result) = (m, n, k, a, b, c, result)
            (self.saturatingAccumulation, self.scope) = (saturatingAccumulation, scope)
        }

        public var description: String {
            "\(m)×\(n)×\(k) \(a)·\(b)+\(c)→\(result)" + (saturatingAccumulation ? " saturating" : "")
                + (scope == CooperativeMatrix.subgroupScope ? "" : " scope \(scope)")
        }
    }

    /// The hardware tile the shaders are specialised for (constants 1–3: TM, TN, TK).
    public struct Shape: Sendable, Equatable, CustomStringConvertible {
        public let m, n, k: Int
        public var description: String { "\(m)×\(n)×\(k) fp16→fp32" }

        /// Workgroup-shared memory gemm_coop.glsl declares for this tile: fp16 slabs of A
        /// (4m × 2k) and B (2k × 4n) and the fp32 output block (4m × 4n).
        public var sharedBytes: Int { (4 * m * 2 * k + 2 * k * 4 * n) * 2 + 4 * m * 4 * n * 4 }

        /// Whether gemm_coop.glsl can run this tile: its 2·K-wide slab divides the 128 invocations, and
        /// each invocation loads at most 32 rows of A per step (4M·2K / 128 ≤ 32, i.e. M·K ≤ 512).
        public var fitsTheShader: Bool { 128 % (2 * k) == 0 && m * k <= 512 }
    }

    /// The configuration the products use among `properties`, or nil: fp16 A and B, fp32 C and
    /// result, no saturation, subgroup scope, and a tile the shader handles (`fitsTheShader`) whose
    /// shared memory fits. 16×16×16 when offered (every current NVIDIA, AMD and Intel driver lists
    /// it), else the smallest tile (M·N·K, then M, N, K): the least shared memory and edge padding.
    public static func select(_ properties: [Property], maxSharedMemory: Int) -> Shape? {
        let usable = properties.filter {
            $0.a == .float16 && $0.b == .float16 && $0.c == .float32 && $0.result == .float32 && !$0.saturatingAccumulation
                && $0.scope == subgroupScope && $0.m > 0 && $0.n > 0 && $0.k > 0
        }.map { Shape(m: $0.m, n: $0.n, k: $0.k) }.filter { $0.fitsTheShader && $0.sharedBytes <= maxSharedMemory }
        if let square = usable.first(where: { $0.m == 16 && $0.n == 16 && $0.k == 16 }) { return square }
        return usable.min { ($0.m * $0.n * $0.k, $0.m, $0.n, $0.k) < ($1.m * $1.n * $1.k, $1.m, $1.n, $1.k) }
    }

    /// Whether the products may use cooperative matrices at all.
    public enum Mode: String, Sendable, CaseIterable {
        /// When the device offers a usable configuration (see `select`); the default.
        case automatic
        /// Never: the portable tiled shaders (for A/B timings and to rule the kernels out).
        case off
    }

    /// The environment variable that overrides `Options.cooperativeMatrix`: `off` (or `0`) forces
    /// the portable shaders, `auto` restores the default.
    public static let environmentKey = "STREAMDIFFUSION_VULKAN_COOPERATIVE_MATRIX"

    /// The mode in force: the environment's when set to a known value, else `requested`.
    public static func mode(requested: Mode, environment: [String: String]) throws(VulkanError) -> Mode {
        guard let value = environment[environmentKey]?.lowercased(), !value.isEmpty else { return requested }
        switch value {
        case "off", "0", "false", "no": return .off
        case "auto", "automatic", "1", "on": return .automatic
        default: throw VulkanError.invalidSetting("\(environmentKey)=\(value): expected off or auto")
        }
    }
}
